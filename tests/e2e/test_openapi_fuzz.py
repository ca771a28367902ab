"""schemathesis against the running dev host (with the function key): generated requests for
every operation of shared/openapi.json find no 5xx and no answer the document does not
describe (status, content type, body schema). Bounded: a few dozen examples per operation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devhost.local.stack import FUNCTION_KEY, Stack
from shared.services.apidoc import openapi_document
from tests.e2e.harness import at, enrol

# The whole document fuzzed takes minutes on a loaded 2-core machine: a longer bound than the
# suite's 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def _schemathesis(stack: Stack, workdir: Path, *extra: str, config: Path | None = None) -> str:
    """Run the CLI in `workdir`, so that its cache (.schemathesis/) never lands in the tree."""
    cli = Path(sys.executable).with_name("schemathesis")
    head = [str(cli)] + (["--config-file", str(config)] if config else [])
    run = subprocess.run(
        [
            *head,
            "run",
            str(ROOT / "shared" / "openapi.json"),
            "--url",
            f"{stack.hosts[0].url}/api",
            "--header",
            f"x-functions-key: {FUNCTION_KEY}",
            "--tls-verify",
            stack.sim.ca_pem_path,
            "--checks",
            CHECKS,
            "--mode",
            "positive",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--workers",
            "2",
            "--request-timeout",
            "10",
            "--no-color",
            "--generation-database",
            "none",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,  # a bound against a hang; a loaded 2-core machine needs minutes
        check=False,
        cwd=workdir,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    return run.stdout


def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(stack: Stack, tmp_path: Path) -> None:
    """Positive examples and fuzzing, 25 per operation, seed fixed: every check passes."""
    out = _schemathesis(stack, tmp_path)
    operations = sum(
        m in ("get", "put", "post", "delete")
        for item in openapi_document()["paths"].values()
        for m in item
    )
    assert f"Tested: {operations}" in out, out[-3000:]


def test_schemathesis_reads_of_an_enrolled_mailbox(stack: Stack, tmp_path: Path) -> None:
    """The mailbox reads with the path of a real mailbox (events today and all day) and
    generated start/end/interval/If-None-Match, and the tenant feed of its tenant with
    generated cursors and limits: no 5xx, every answer as documented."""
    mb = enrol(stack, {"timeZone": "Asia/Tokyo"})
    mb.create({"subject": "Busy", **at(0, 9)})
    day = at(1, 0)["start"]["dateTime"][:10]
    nxt = at(2, 0)["start"]["dateTime"][:10]
    mb.create(
        {
            "subject": "Away",
            "isAllDay": True,
            "showAs": "oof",
            "start": {"dateTime": f"{day}T00:00:00", "timeZone": "Tokyo Standard Time"},
            "end": {"dateTime": f"{nxt}T00:00:00", "timeZone": "Tokyo Standard Time"},
        }
    )
    mb.converged()
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[parameters]\n"path.tenant" = "{stack.tenant_id}"\n"path.user" = "{mb.user_id}"\n'
    )
    out = _schemathesis(
        stack,
        tmp_path,
        "--include-path-regex",
        r"^/mailboxes/\{tenant\}/\{user\}/(events|agenda|freebusy)$",
        config=config,
    )
    assert "Tested: 3" in out, out[-3000:]
    assert "mostly rejected" not in out, out[-3000:]  # the real mailbox was used
    # The tenant feed of the real tenant: generated cursors are rejected (400 naming `after`),
    # as they should be; the cursor-less reads and limits answer pages.
    out = _schemathesis(
        stack, tmp_path, "--include-path-regex", r"^/tenants/\{tenant\}/changes$", config=config
    )
    assert "Tested: 1" in out, out[-3000:]
