"""The write API on a mailbox on Exchange Server, end to end through the dev host: HTTP in,
the EWS simulator written once through exchangelib, the mirror updated before the answer, each
change once on the feed marked with its origin; a series with an occurrence edit; a stale
ChangeKey is 409 with the current version; a busy server's write finished by the queue
worker after BackOffMilliseconds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devhost.local.stack import EWS_TENANT_ID, Stack
from tests.e2e.harness import at, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _enrol(stack: Stack) -> tuple[str, str]:
    """A fresh mailbox on the simulated Exchange, enrolled: (its address, its API path)."""
    smtp = f"e2e.{uuid.uuid4().hex[:8]}@contoso.example"
    stack.ews.add_mailbox(smtp)
    with stack.admin() as api:
        answer = api.put(f"/mailboxes/{EWS_TENANT_ID}/{smtp}", json={})
    assert answer.status_code in (200, 201), answer.text
    path = f"/mailboxes/{EWS_TENANT_ID}/{answer.json()['userId']}"
    wait_for(lambda: _get(stack, path)["status"]["lastSync"], what="the first EWS round")
    return smtp, path


def _get(stack: Stack, path: str, **params: str) -> Any:
    with stack.admin() as api:
        answer = api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _post(stack: Stack, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    with stack.admin() as api:
        return api.post(path + "/writes", json=body, headers=headers)


def _mirror(stack: Stack, path: str) -> dict[str, dict[str, Any]]:
    return {e["event_id"]: e for e in _get(stack, path + "/events")["value"]}


def _view(stack: Stack, smtp: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    start, end = (now - timedelta(days=7)).isoformat(), (now + timedelta(days=60)).isoformat()
    return list(stack.ews.view(smtp, start, end))


def _feed(stack: Stack, path: str) -> list[dict[str, Any]]:
    return list(_get(stack, path + "/changes", limit="1000")["value"])


def test_single_event_create_retry_conflict_update_delete(stack: Stack) -> None:
    """201 and in Exchange and the mirror at once; the same key again answers the same write
    (one item); a stale ChangeKey is 409 with the current version; update and delete follow;
    the feed has each change once, marked with the write's key and writer; no invitations."""
    smtp, path = _enrol(stack)
    body = {"action": "create", "writer": "helpdesk", "event": {"subject": "Boiler", **at(1, 9)}}
    made = _post(stack, path, body, "ews-4711")
    assert made.status_code == 201, made.text
    write = made.json()
    assert [i["id"] for i in _view(stack, smtp)] == [write["eventId"]]
    assert _mirror(stack, path)[write["eventId"]]["change_key"] == write["changeKey"]
    again = _post(stack, path, body, "ews-4711")
    assert (again.status_code, again.json()["id"]) == (201, write["id"])
    assert len(_view(stack, smtp)) == 1

    stack.ews.update(smtp, write["eventId"], subject="Boiler (moved in Outlook)")
    stale = {
        "action": "update",
        "writer": "helpdesk",
        "eventId": write["eventId"],
        "changeKey": write["changeKey"],
        "event": {"subject": "Boiler, 2nd"},
    }
    conflict = _post(stack, path, stale, "ews-4712")
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["current"]["subject"] == "Boiler (moved in Outlook)"
    fresh = {k: v for k, v in stale.items() if k != "changeKey"}
    assert _post(stack, path, fresh, "ews-4713").status_code == 200
    assert stack.ews.item(smtp, write["eventId"])["subject"] == "Boiler, 2nd"
    assert _mirror(stack, path)[write["eventId"]]["subject"] == "Boiler, 2nd"
    gone = _post(
        stack, path, {"action": "delete", "eventId": write["eventId"], "writer": "helpdesk"}, "d"
    )
    assert gone.status_code == 200, gone.text
    assert _view(stack, smtp) == []
    assert _mirror(stack, path) == {}
    mine = [
        (c["type"], (c.get("origin") or {}).get("writeKey"))
        for c in _feed(stack, path)
        if c["eventId"] == write["eventId"]
    ]
    assert mine == [
        ("created", "ews-4711"),
        ("updated", None),  # the change made in Outlook, mirrored with the 409's answer
        ("updated", "ews-4713"),
        ("deleted", "d"),
    ]
    assert [s for s in stack.ews.sent() if s["smtp"] == smtp] == []


def test_a_series_with_an_occurrence_edit_and_a_cancel(stack: Stack) -> None:
    """A daily series is mirrored as its occurrences at once; an occurrence edit is an
    exception in Exchange and in the mirror; cancelling the series removes it everywhere."""
    smtp, path = _enrol(stack)
    when = at(1, 8)
    recurrence = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {
            "type": "numbered",
            "startDate": when["start"]["dateTime"][:10],
            "numberOfOccurrences": 3,
        },
    }
    made = _post(
        stack,
        path,
        {"action": "create", "event": {"subject": "Daily", **when, "recurrence": recurrence}},
    )
    assert made.status_code == 201, made.text
    rows = _mirror(stack, path)
    assert sorted(r["type"] for r in rows.values()) == ["occurrence"] * 3
    second = sorted(rows.values(), key=lambda r: r["start"])[1]["event_id"]
    edit = _post(
        stack, path, {"action": "update", "eventId": second, "event": {"subject": "Moved"}}
    )
    assert edit.status_code == 200, edit.text
    assert _mirror(stack, path)[second]["type"] == "exception"
    assert sorted(i["kind"] for i in _view(stack, smtp)) == [
        "Exception",
        "Occurrence",
        "Occurrence",
    ]
    master = made.json()["eventId"]
    cancel = _post(stack, path, {"action": "cancel", "eventId": master, "comment": "Off"})
    assert cancel.status_code == 200, cancel.text
    assert _view(stack, smtp) == []
    assert _mirror(stack, path) == {}


def test_a_busy_exchange_write_is_done_by_the_queue_worker(stack: Stack) -> None:
    """ErrorServerBusy with BackOffMilliseconds 1000: 202 pending; the dev host's queue worker
    tries it again after the back-off, and it is done, in Exchange and in the mirror."""
    smtp, path = _enrol(stack)
    stack.ews.knob("throttle", smtp=smtp, count=1, back_off_ms=1000)
    queued = _post(stack, path, {"action": "create", "event": {"subject": "Later", **at(2, 14)}})
    assert queued.status_code == 202, queued.text
    write = queued.json()
    assert write["retryAt"]
    assert write["error"]["code"] == "ErrorServerBusy"
    done = wait_for(
        lambda: (w := _get(stack, f"/writes/{write['id']}"))["status"] == "done" and w,
        what="the queued write done",
    )
    assert done["attempts"] == 1
    assert [i["id"] for i in _view(stack, smtp)] == [done["eventId"]]
    assert done["eventId"] in _mirror(stack, path)
