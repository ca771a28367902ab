"""The admin API and the webhook intake as their users meet them: enrol, options, status,
resync, removal, poll-mode fallback; and forged or malformed notifications, which are refused
or ignored (never a 5xx, never a sync)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest

from devhost.local.stack import FUNCTION_KEY, Stack
from tests.e2e.harness import at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _post(stack: Stack, route: str, body: bytes, **params: str) -> httpx.Response:
    with httpx.Client(verify=stack.sim.ssl_context(), timeout=30) as client:
        return client.post(
            f"{stack.hosts[0].url}/api/{route}",
            content=body,
            params=params,
            headers={"Content-Type": "application/json"},
        )


def _rounds(stack: Stack) -> int:
    return int(stack.sim.control.counters()["requests_by_endpoint"].get("calendarView.delta", 0))


def test_status_list_resync_and_events_window(stack: Stack) -> None:
    """Status shows mode, subscription and last sync; list gives a health line; resync runs."""
    mb = enrol(stack)
    status = mb.status()
    assert status["status"]["mode"] == "webhook"
    assert status["status"]["subscriptionId"]
    assert status["options"]["weeksBack"] == 4
    with stack.admin() as api:
        listed = {m["userId"]: m for m in api.get("/mailboxes").json()["value"]}
        assert listed[mb.user_id]["health"] == "ok (webhook)"
        before = _rounds(stack)
        assert api.post(mb.path + "/resync").status_code == 202
        wait_for(lambda: _rounds(stack) > before, what="the resync's delta round")
        eid = mb.create({"subject": "Windowed", **at(2, 9)})
        mb.converged()
        day = at(2, 0)["start"]["dateTime"][:10]
        inside = api.get(
            mb.path + "/events", params={"start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z"}
        ).json()
        assert [e["event_id"] for e in inside["value"]] == [eid]
        bad = api.get(mb.path + "/events", params={"start": "yesterday"})
        assert bad.status_code == 400
        assert "start" in bad.json()["detail"]


def test_options_are_validated_with_clear_problems(stack: Stack) -> None:
    """Polling faster than once a minute, unknown keys and bad values: one 400 naming each."""
    mb = enrol(stack)
    with stack.admin() as api:
        response = api.put(
            mb.path, json={"mode": "poll", "pollSeconds": 30, "colour": "red", "weeksBack": 99}
        )
    assert response.status_code == 400
    detail = response.json()["detail"]
    for word in ("pollSeconds", "colour", "weeksBack", "minute"):
        assert word in detail, word
    assert mb.status()["options"]["mode"] == "webhook"  # nothing was changed


def test_poll_mode_mailbox_is_polled(stack: Stack) -> None:
    """A mailbox switched to poll mode loses its subscription and is synced by the poll timer."""
    mb = enrol(stack)
    old = mb.status()["status"]["subscriptionId"]
    with stack.admin() as api:
        assert api.put(mb.path, json={"mode": "poll", "pollSeconds": 60}).status_code == 200
    assert old not in {s["id"] for s in stack.sim.control.subscriptions()}
    assert mb.status()["status"]["mode"] == "poll"
    mb.create({"subject": "Seen by polling", **at(1, 13)})
    stack.run_function("poll_mailboxes")
    mb.converged()


def test_subscription_quota_falls_back_to_poll_mode_visibly(stack: Stack) -> None:
    """Over Graph's 1,000 subscriptions per mailbox: poll mode with the reason and code shown."""
    upn_user = enrol(stack, {"mode": "poll"})
    stack.sim.control.bulk_subscriptions(upn_user.upn, stack.env["CLIENT_ID"], 1000)
    with stack.admin() as api:
        assert api.put(upn_user.path, json={"mode": "webhook"}).status_code == 200
    status = upn_user.status()["status"]
    assert status["mode"] == "poll"
    assert "subscription refused" in status["modeReason"]
    assert status["lastErrorCode"]
    assert status["nextSubscribeAttempt"]
    upn_user.create({"subject": "Still synced", **at(1, 16)})
    stack.run_function("poll_mailboxes")
    upn_user.converged()


def test_remove_keeps_or_purges_the_mirror(stack: Stack) -> None:
    """DELETE stops syncing and deletes the subscription; purge=true also drops the events."""
    kept, purged = enrol(stack), enrol(stack)
    kept.create({"subject": "Kept", **at(1, 10)})
    kept.converged()
    with stack.admin() as api:
        sub = kept.status()["status"]["subscriptionId"]
        assert api.delete(kept.path, params={"purge": "false"}).status_code == 200
        assert sub not in {s["id"] for s in stack.sim.control.subscriptions()}
        assert kept.status()["enabled"] is False
        assert len(kept.mirror()) == 1
        assert api.delete(purged.path, params={"purge": "true"}).json()["purged"] is True
        assert api.get(purged.path).status_code == 404
        assert api.delete(purged.path, params={"purge": "maybe"}).status_code in (400, 404)


def test_unknown_tenant_and_user_get_problem_bodies(stack: Stack) -> None:
    """Enrolling outside TENANT_IDS or a user Graph doesn't know: 400/404 with a problem body."""
    with stack.admin() as api:
        other = api.put("/mailboxes/00000000-0000-0000-0000-000000000000/x@y.example", json={})
        assert other.status_code == 400
        assert "TENANT_IDS" in other.json()["detail"]
        ghost = api.put(f"/mailboxes/{stack.tenant_id}/ghost@contoso.example", json={})
        assert ghost.status_code == 404
        assert ghost.headers["content-type"].startswith("application/problem+json")
        bad = api.put(f"/mailboxes/{stack.tenant_id}/someone@contoso.example", content=b"{no")
        assert bad.status_code == 400


def test_validation_handshake_echoes_the_decoded_token_as_plain_text(stack: Stack) -> None:
    """validationToken: 200, text/plain, the decoded token and nothing else; unsafe text → 400."""
    token = "Validation: Testing client application reachability for subscription Request-Id: 1"
    ok = _post(stack, "notifications", b"", validationToken=token)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("text/plain")
    assert ok.text == token
    bad = _post(stack, "notifications", b"", validationToken="<script>alert(1)</script>")
    assert bad.status_code == 400


def test_forged_and_malformed_notifications_trigger_nothing(stack: Stack) -> None:
    """Wrong clientState, unknown subscription, bad JSON, oversized body: 202/4xx, no sync."""
    mb = enrol(stack)
    mb.converged()
    sub = mb.status()["status"]["subscriptionId"]
    item = {
        "subscriptionId": sub,
        "clientState": "forged",
        "changeType": "updated",
        "tenantId": stack.tenant_id,
        "resource": f"Users/{mb.user_id}/Events/x",
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "resourceData": {"id": "x", "@odata.type": "#Microsoft.Graph.Event"},
    }
    unknown = dict(item, subscriptionId="00000000-1111-2222-3333-444444444444")
    before = _rounds(stack)
    answers = [
        _post(stack, "notifications", json.dumps({"value": [item]}).encode()).status_code,
        _post(stack, "notifications", json.dumps({"value": [unknown]}).encode()).status_code,
        _post(stack, "notifications", b"{not json").status_code,
        _post(stack, "notifications", b'{"value": 3}').status_code,
        _post(stack, "notifications", b"x" * 1_100_000).status_code,
        _post(
            stack,
            "lifecycle",
            json.dumps({"value": [dict(item, lifecycleEvent="missed")]}).encode(),
        ).status_code,
    ]
    assert answers[:2] == [202, 202]
    assert all(400 <= a < 500 for a in answers[2:5]), answers
    assert answers[5] == 202
    wait_for(lambda: mb.status()["status"]["lastSync"], what="status")  # host still answering
    assert _rounds(stack) == before, "a forged notification triggered a sync"


def test_cli_enrols_and_lists(stack: Stack) -> None:
    """The operator CLI drives the admin API: enrol by UPN, then list shows its health."""
    upn = "cli-user@contoso.example"
    stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": upn}])
    base = [
        sys.executable,
        "-m",
        "calsync_cli",
        "--url",
        stack.hosts[0].url,
        "--key",
        FUNCTION_KEY,
        "--ca",
        stack.sim.ca_pem_path,
    ]
    enrolled = subprocess.run(
        [*base, "enrol", stack.tenant_id, upn, "--weeks-ahead", "8", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(enrolled.stdout)["options"]["weeksAhead"] == 8
    listed = subprocess.run([*base, "list"], capture_output=True, text=True, check=True)
    assert upn in listed.stdout
    refused = subprocess.run(
        [*base, "enrol", stack.tenant_id, upn, "--poll-seconds", "5"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "pollSeconds" in refused.stderr


def test_cli_test_connection_reports_steps_and_exit_code(stack: Stack) -> None:
    """`calsync test-connection` against the dev host: a table of passed steps and exit 0 for a
    real mailbox; JSON and exit 1 for a user Graph does not know."""
    mb = enrol(stack)
    base = [sys.executable, "-m", "calsync_cli", "--url", stack.hosts[0].url]
    base += ["--key", FUNCTION_KEY, "--ca", stack.sim.ca_pem_path, "test-connection"]
    good = subprocess.run(
        [*base, stack.tenant_id, "--mailbox", mb.upn], capture_output=True, text=True, check=False
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"│ ok\s+│ settings\s+│", good.stdout), good.stdout
    assert good.stdout.strip().endswith("passed")
    bad = subprocess.run(
        [*base, stack.tenant_id, "--mailbox", "ghost@contoso.example", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    steps = {s["name"]: s for s in json.loads(bad.stdout)["steps"]}
    assert steps["mailbox"]["cause"] == "no such user in this tenant"
    assert stack.env["SECRET_GRAPH_CLIENT_SECRET"] not in good.stdout + bad.stdout
