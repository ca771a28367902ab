"""`calsync writes ...` and `calsync feed` against the dev host, as an operator runs them: an
event made from flags (zone, body, recurrence from a file) and from a JSON file, retried with
the same idempotency key, changed, shown, cancelled and deleted; the mailbox's and the
tenant's change feed read once, after a cursor and followed; bad input in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devhost.local.stack import FUNCTION_KEY, Stack
from tests.e2e.harness import at, enrol

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def calsync(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    base = [sys.executable, "-m", "calsync_cli", "--url", stack.hosts[0].url, "--key"]
    base += [FUNCTION_KEY, "--ca", stack.sim.ca_pem_path]
    return subprocess.run([*base, *args], input=stdin, capture_output=True, text=True, check=False)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _drained(stack: Stack, cursor: str | None) -> str:
    """The tenant feed's cursor past every change it holds now."""
    with stack.admin() as api:
        while True:
            params = {"limit": "1000"} | ({"after": cursor} if cursor else {})
            page = api.get(f"/tenants/{stack.tenant_id}/changes", params=params).json()
            cursor = page["next"]
            if not page["more"]:
                return str(cursor)


def test_writes_from_flags_and_files_then_the_feed(stack: Stack, tmp_path: Path) -> None:
    """create (flags, a Berlin time, a recurrence file, an idempotency key) twice makes one
    series; create from a JSON file with an attendee; update, show, cancel, delete; the feed
    shows each as a change written by its writer, the tenant feed after a cursor too."""
    mb = enrol(stack)
    tenant, user = stack.tenant_id, mb.user_id
    day = at(2, 0)["start"]["dateTime"][:10]
    rule = tmp_path / "recurrence.json"
    rule.write_text(
        json.dumps(
            {
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "numbered", "startDate": day, "numberOfOccurrences": 2},
            }
        )
    )
    start = _drained(stack, None)
    args = ["writes", "create", tenant, user, "--subject", "Stand-up", "--body", "Daily"]
    args += ["--start", f"{day}T09:00", "--end", f"{day}T09:15", "--time-zone", "Europe/Berlin"]
    args += ["--recurrence", str(rule), "--idempotency-key", "standup-1", "--writer", "ops"]
    made = _json(calsync(stack, *args, "-o", "json"))
    assert (made["status"], made["writer"]) == ("done", "ops")
    again = _json(calsync(stack, *args, "-o", "json"))
    assert again["id"] == made["id"]
    series = [e for e in stack.sim.control.list_events(mb.upn) if e["subject"] == "Stand-up"]
    assert len({e.get("seriesMasterId") or e["id"] for e in series}) == 1
    assert made["event"]["start"]["dateTime"].startswith(f"{day}T08:00")  # 09:00 in Berlin

    meeting = tmp_path / "meeting.json"
    meeting.write_text(json.dumps({"subject": "Review", **at(3, 13)}))
    review = _json(
        calsync(
            stack,
            "writes",
            "create",
            tenant,
            user,
            "--event",
            str(meeting),
            "--attendee",
            "guest@fabrikam.example:optional",
            "-o",
            "json",
        )
    )
    assert review["event"]["attendees"][0]["type"] == "optional"
    update = ["writes", "update", tenant, user, review["eventId"], "--subject", "Review (moved)"]
    changed = _json(calsync(stack, *update, "-o", "json"))
    assert changed["event"]["subject"] == "Review (moved)"
    shown = calsync(stack, "writes", "show", changed["id"])
    assert shown.returncode == 0, shown.stderr
    assert "done" in shown.stdout
    assert "Review (moved)" in shown.stdout
    cancel = ["writes", "cancel", tenant, user, review["eventId"], "--comment", "Sorry"]
    assert _json(calsync(stack, *cancel, "--yes", "-o", "json"))["status"] == "done"
    kept = calsync(stack, "writes", "delete", tenant, user, made["eventId"], stdin="n\n")
    assert kept.returncode == 1
    gone = calsync(stack, "writes", "delete", tenant, user, made["eventId"], "--yes", "-o", "json")
    assert _json(gone)["status"] == "done"
    assert mb.mirror() == {}
    mb.converged()

    page = _json(calsync(stack, "feed", tenant, user, "-o", "json", "--limit", "1000"))
    writers = {(c["type"], (c.get("origin") or {}).get("writer")) for c in page["value"]}
    assert {("created", "ops"), ("created", "calsync"), ("updated", "calsync")} <= writers
    assert ("deleted", "calsync") in writers
    table = calsync(stack, "feed", tenant, user, "--after", page["value"][0]["sequence"])
    assert table.returncode == 0, table.stderr
    assert "Review (moved)" in table.stdout
    assert table.stdout.strip().splitlines()[-1].startswith("next: ")
    followed = calsync(stack, "feed", tenant, user, "--follow", "--polls", "2", "-o", "json")
    assert followed.returncode == 0, followed.stderr
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert [c["id"] for c in lines][: page["count"]] == [c["id"] for c in page["value"]]
    after = ["--after", start, "--limit", "1000", "-o", "json"]
    tenant_page = _json(calsync(stack, "feed", tenant, *after))
    assert {c["id"] for c in tenant_page["value"]} >= {c["id"] for c in page["value"]}
    assert {c["mailboxId"] for c in tenant_page["value"]} >= {user}


def test_bad_write_input_is_one_line_naming_the_field(stack: Stack, tmp_path: Path) -> None:
    """A time that is none, an end before the start (the API's 400 naming event.end), a JSON
    file that is no object, an unknown write and a bad tenant cursor: one line, exit 1."""
    mb = enrol(stack)
    tenant, user = stack.tenant_id, mb.user_id
    bad = calsync(stack, "writes", "create", tenant, user, "--start", "soon", "--end", "later")
    assert bad.returncode == 1
    assert "--start 'soon'" in bad.stderr
    args = ["--start", "2030-01-01T10:00", "--end", "2030-01-01T09:00", "--time-zone", "UTC"]
    backwards = calsync(stack, "writes", "create", tenant, user, "--subject", "x", *args)
    assert backwards.returncode == 1
    assert "400: event.end" in backwards.stderr
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    not_object = calsync(stack, "writes", "create", tenant, user, "--event", str(listed))
    assert "one JSON object" in not_object.stderr
    unknown = calsync(stack, "writes", "show", "0" * 32)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("Error: 404")
    cursor = calsync(stack, "feed", tenant, "--after", "not-a-cursor")
    assert cursor.returncode == 1
    assert "after:" in cursor.stderr
    for done in (bad, backwards, not_object, unknown, cursor):
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
