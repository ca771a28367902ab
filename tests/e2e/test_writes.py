"""The write API end to end through the dev host: HTTP in, Graph (the simulator) written once,
the mirror updated before the answer; a retry with the same Idempotency-Key, a stale changeKey,
a throttled write finished by the queue worker, a series with an occurrence edit, delete and
cancel; bad input and an unknown mailbox. After each, the mirror equals Graph."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devhost.local.stack import Stack
from tests.e2e.harness import Mailbox, at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _post(mb: Mailbox, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    with mb.stack.admin() as api:
        return api.post(mb.path + "/writes", json=body, headers=headers)


def _write(mb: Mailbox, path: str) -> dict[str, Any]:
    with mb.stack.admin() as api:
        response = api.get(path)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def test_create_retry_conflict_and_update_through_the_host(stack: Stack) -> None:
    """201 with the event, in the mirror at once; the same key again: the same write, one event
    in Graph; a stale changeKey: 409 with the current version; then the update goes through."""
    mb = enrol(stack)
    body = {
        "action": "create",
        "writer": "helpdesk",
        "event": {"subject": "Fix printer", **at(1, 9)},
    }
    made = _post(mb, body, "ticket-4711")
    assert made.status_code == 201, made.text
    write = made.json()
    assert write["status"] == "done"
    assert mb.mirror()[write["eventId"]]["subject"] == "Fix printer"
    again = _post(mb, body, "ticket-4711")
    assert (again.status_code, again.json()["id"]) == (201, write["id"])
    assert [e["id"] for e in stack.sim.control.list_events(mb.upn)] == [write["eventId"]]
    assert _write(mb, made.headers["Location"].removeprefix("/api"))["status"] == "done"

    mb.update(write["eventId"], {"subject": "Fix printer (moved by the technician)"})
    stale = {
        "action": "update",
        "eventId": write["eventId"],
        "changeKey": write["changeKey"],
        "event": {"subject": "Fix printer, 2nd floor"},
    }
    conflict = _post(mb, stale)
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["current"]["subject"] == "Fix printer (moved by the technician)"
    fresh = {k: v for k, v in stale.items() if k != "changeKey"}  # the mirror's, now current
    assert _post(mb, fresh).status_code == 200
    assert mb.mirror()[write["eventId"]]["subject"] == "Fix printer, 2nd floor"
    mb.converged()


def test_a_throttled_write_is_done_by_the_queue_worker(stack: Stack) -> None:
    """Graph answers 429 with Retry-After 1: 202 pending; the dev host's queue worker retries
    it after the delay and GET /api/writes/{id} shows it done, in Graph and in the mirror."""
    mb = enrol(stack)
    stack.sim.control.fault(
        429, count=1, method="POST", path_contains="/events", mailbox=mb.user_id, retry_after_s=1
    )
    queued = _post(mb, {"action": "create", "event": {"subject": "Later", **at(2, 14)}}, "q-1")
    assert queued.status_code == 202, queued.text
    path = f"/writes/{queued.json()['id']}"
    done = wait_for(
        lambda: (w := _write(mb, path))["status"] == "done" and w, what="the queued write done"
    )
    assert done["attempts"] == 1
    assert done["eventId"] in mb.mirror()
    mb.converged()


def test_series_occurrence_edit_delete_and_cancel(stack: Stack) -> None:
    """A daily series is mirrored as its instances; an occurrence edit becomes an exception;
    cancel removes one occurrence and delete the whole series, in Graph and the mirror."""
    mb = enrol(stack)
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
        mb, {"action": "create", "event": {"subject": "Rounds", **when, "recurrence": recurrence}}
    )
    assert made.status_code == 201, made.text
    master_id = made.json()["eventId"]
    mirrored = mb.mirror()
    assert mirrored[master_id]["type"] == "seriesMaster"  # the series itself, with its pattern
    rows = sorted(
        (r for r in mirrored.values() if r["type"] != "seriesMaster"), key=lambda r: r["start"]
    )
    assert [r["type"] for r in rows] == ["occurrence"] * 3
    edit = {
        "action": "update",
        "eventId": rows[1]["event_id"],
        "event": {"subject": "Rounds (late)"},
    }
    assert _post(mb, edit).status_code == 200
    assert mb.mirror()[rows[1]["event_id"]]["type"] == "exception"
    assert _post(mb, {"action": "cancel", "eventId": rows[0]["event_id"]}).status_code == 200
    assert rows[0]["event_id"] not in mb.mirror()
    mb.converged()
    assert _post(mb, {"action": "delete", "eventId": master_id}).status_code == 200
    assert mb.mirror() == {}
    mb.converged()


def test_bad_input_is_400_naming_the_field_and_unknown_mailbox_is_404(stack: Stack) -> None:
    """A write Graph would refuse is a 400 whose detail starts with the field; a mailbox that
    is not enrolled is 404; an unknown write id is 404."""
    mb = enrol(stack)
    bad = _post(mb, {"action": "create", "event": {"subject": "x", **at(1, 9), "colour": "red"}})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("event.colour")
    backwards = {"start": at(1, 10)["start"], "end": at(1, 9)["end"]}
    late = _post(mb, {"action": "create", "event": backwards})
    assert late.status_code == 400
    assert late.json()["detail"].startswith("event.end")
    with stack.admin() as api:
        gone = api.post(
            f"/mailboxes/{stack.tenant_id}/nobody@contoso.example/writes",
            json={"action": "delete", "eventId": "x"},
        )
        assert gone.status_code == 404
        assert api.get(f"/writes/{'0' * 32}").status_code == 404
