"""The `calsync` CLI against the dev host, as an operator runs it: CSV enrolment with a
progress bar, confirmation of destructive commands, resync with --wait, health and version,
tables for people and JSON for scripts, and one-line errors that say what to do."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from devhost.local.stack import FUNCTION_KEY, Stack
from tests.e2e.harness import enrol

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def calsync(
    stack: Stack, *args: str, stdin: str = "", key: str = FUNCTION_KEY
) -> subprocess.CompletedProcess[str]:
    base = [sys.executable, "-m", "calsync_cli", "--url", stack.hosts[0].url, "--key", key]
    base += ["--ca", stack.sim.ca_pem_path]
    return subprocess.run([*base, *args], input=stdin, capture_output=True, text=True, check=False)


def test_csv_import_enrols_each_row_and_names_the_bad_ones(stack: Stack, tmp_path: Path) -> None:
    """Two good rows and one with a bad option: two enrolled, the third named, exit 1."""
    upns = [f"csv-{uuid.uuid4().hex[:8]}@contoso.example" for _ in range(3)]
    stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": u} for u in upns])
    sheet = tmp_path / "mailboxes.csv"
    sheet.write_text(
        "tenantId,user,weeksAhead,pollSeconds\n"
        f"{stack.tenant_id},{upns[0]},8,\n"
        f"{stack.tenant_id},{upns[1]},,\n"
        f"{stack.tenant_id},{upns[2]},,5\n"
    )
    done = calsync(stack, "mailboxes", "import", str(sheet), "-o", "json")
    assert done.returncode == 1, done.stderr
    results = {r["user"]: r["result"] for r in json.loads(done.stdout)}
    assert results[upns[0]] == results[upns[1]] == "enrolled"
    assert "pollSeconds" in results[upns[2]]
    listed = calsync(stack, "list")
    assert upns[0] in listed.stdout
    assert "health" in listed.stdout.splitlines()[1] + listed.stdout.splitlines()[0]


def test_csv_with_an_unknown_column_is_refused_before_any_call(
    stack: Stack, tmp_path: Path
) -> None:
    """A header naming an unknown column: one line naming it and the known ones, exit 1."""
    sheet = tmp_path / "bad.csv"
    sheet.write_text("tenantId,user,colour\nt,u,red\n")
    done = calsync(stack, "import", str(sheet))
    assert done.returncode == 1
    assert "unknown column(s) colour" in done.stderr
    assert "Traceback" not in done.stderr


def test_remove_asks_first(stack: Stack) -> None:
    """`remove` without --yes asks; answering no aborts and keeps the mailbox; --yes removes."""
    mb = enrol(stack)
    kept = calsync(stack, "remove", stack.tenant_id, mb.user_id, stdin="n\n")
    assert kept.returncode == 1
    assert mb.status()["enabled"] is True
    gone = calsync(stack, "remove", stack.tenant_id, mb.user_id, "--yes", "-o", "json")
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["userId"] == mb.user_id
    assert mb.status()["enabled"] is False


def test_resync_waits_for_the_round(stack: Stack) -> None:
    """`resync --wait` returns once the mailbox's full round has run, with its result."""
    mb = enrol(stack, events=0)
    mb.create(
        {
            "subject": "Counted by the resync",
            "start": {"dateTime": "2030-01-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-01T09:30:00", "timeZone": "UTC"},
        }
    )
    done = calsync(stack, "resync", stack.tenant_id, mb.user_id, "--wait", "-o", "json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["result"].startswith("ok (full")


def test_health_version_and_errors(stack: Stack) -> None:
    """health and version answer; a wrong key and an unreachable URL are one-line errors."""
    assert json.loads(calsync(stack, "health", "-o", "json").stdout)["service"] == "calsync"
    versions = json.loads(calsync(stack, "version", "-o", "json").stdout)
    assert versions["cli"] == versions["app"]
    refused = calsync(stack, "list", key="wrong-key")
    assert refused.returncode == 1
    assert "function key was refused" in refused.stderr
    down = subprocess.run(
        [sys.executable, "-m", "calsync_cli", "--url", "http://127.0.0.1:9", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert down.returncode == 1
    assert "cannot connect" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1


def test_enrol_and_list_another_calendar(stack: Stack) -> None:
    """`calsync enrol TENANT user:handle --calendar-name N` enrols that calendar; `calsync list`
    shows it as user:handle beside the user's default calendar; status names it."""
    mb = enrol(stack)
    stack.sim.control.add_calendar(mb.upn, "Front desk")
    done = calsync(
        stack,
        "enrol",
        stack.tenant_id,
        f"{mb.upn}:desk",
        "--calendar-name",
        "Front desk",
        "-o",
        "json",
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["calendar"], shown["calendarName"]) == ("desk", "Front desk")
    listed = calsync(stack, "list").stdout
    assert f"{mb.upn}:desk" in listed
    assert calsync(stack, "status", stack.tenant_id, f"{mb.upn}:desk").returncode == 0
