"""The operations log end to end: Graph's notifications received by the dev host and the Graph
calls of the round they cause are listed by `calsync logs` (and GET /api/log) for the mailbox,
with no secret in them; a bad parameter is a 400 naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from devhost.local.stack import FUNCTION_KEY, Stack
from tests.e2e.harness import at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _logs(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    base = [sys.executable, "-m", "calsync_cli", "--url", stack.hosts[0].url]
    base += ["--key", FUNCTION_KEY, "--ca", stack.sim.ca_pem_path, "logs"]
    return subprocess.run([*base, *args], capture_output=True, text=True, check=False)


def test_cli_logs_show_a_notification_and_its_round(stack: Stack) -> None:
    """A change in Outlook: its notification POST (in) and the delta calls (out) are listed."""
    mb = enrol(stack)
    mb.create({"subject": "Logged end to end", **at(3, 9)})
    mb.converged()
    args = ("--tenant", stack.tenant_id, "--user", mb.user_id, "-o", "json")

    def both() -> list[dict[str, Any]] | None:
        done = _logs(stack, *args)
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)["value"]
        kinds = {(r["direction"], r.get("kind")) for r in rows}
        return rows if {("in", "notifications"), ("out", "delta")} <= kinds else None

    rows = wait_for(both, timeout=20, what="the POST and the round in the log")
    posted = next(r for r in rows if r["direction"] == "in")
    assert posted["status"] == 202
    assert posted["queued"] >= 1
    called = next(r for r in rows if r.get("kind") == "delta")
    assert called["requestId"]
    assert called["clientRequestId"]
    table = _logs(stack, "--tenant", stack.tenant_id, "--user", mb.user_id, "--direction", "in")
    assert table.returncode == 0, table.stderr
    assert "/api/notifications" in table.stdout
    text = json.dumps(rows)
    for secret in (stack.env["SECRET_GRAPH_CLIENT_SECRET"], FUNCTION_KEY, "Bearer", "code="):
        assert secret not in text


def test_bad_log_parameters_are_400_naming_them(stack: Stack) -> None:
    """direction=up and a user without its tenant are refused by name."""
    with stack.admin() as api:
        bad = api.get("/log", params={"direction": "up"})
        assert bad.status_code == 400
        assert "direction" in bad.json()["detail"]
        assert "tenant" in api.get("/log", params={"user": "x"}).json()["detail"]
    refused = _logs(stack, "--user", "x")
    assert refused.returncode != 0
    assert "--tenant" in refused.stderr


def test_raw_graph_calls_are_logged_with_their_caller(stack: Stack) -> None:
    """POST .../graph answered by Graph and one refused (403) are both in GET /api/log and in
    `calsync logs` with the caller, method, path and status; never the function key."""
    mb = enrol(stack)
    with stack.admin() as api:
        made = api.post(
            mb.path + "/graph",
            json={"method": "GET", "path": f"/users/{mb.upn}/calendars", "caller": "flow-42"},
        )
        assert made.status_code == 200, made.text
        refused = api.post(
            mb.path + "/graph",
            json={"method": "GET", "path": "/users/someone-else/events", "caller": "flow-43"},
        )
        assert refused.status_code == 403, refused.text

    def both() -> dict[str, dict[str, Any]] | None:
        done = _logs(stack, "--tenant", stack.tenant_id, "--user", mb.user_id, "-o", "json")
        assert done.returncode == 0, done.stderr
        rows = [r for r in json.loads(done.stdout)["value"] if r.get("kind") == "raw"]
        found = {str(r.get("caller")): r for r in rows}
        return found if {"flow-42", "flow-43"} <= found.keys() else None

    found = wait_for(both, timeout=20, what="both raw calls in the log")
    assert (found["flow-42"]["status"], found["flow-42"]["method"]) == (200, "GET")
    assert found["flow-42"]["path"] == f"users/{mb.user_id}/calendars"
    assert (found["flow-43"]["status"], found["flow-43"]["error"]) == (403, "forbidden")
    assert FUNCTION_KEY not in json.dumps(found)
    table = _logs(stack, "--tenant", stack.tenant_id, "--user", mb.user_id, "--direction", "out")
    assert "flow-42" in table.stdout
    assert "flow-43" in table.stdout
