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

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(stack: Stack) -> None:
    """Positive examples and fuzzing, 25 per operation, seed fixed: every check passes."""
    cli = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [
            str(cli),
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
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    operations = sum(
        m in ("get", "put", "post", "delete")
        for item in openapi_document()["paths"].values()
        for m in item
    )
    assert f"Tested: {operations}" in run.stdout, run.stdout[-3000:]
