"""Every calendar of a mailbox, end to end through the dev host: a secondary calendar and a room's
calendar enrolled beside a default one are each mirrored equal to Graph field by field, their
notifications reach their own mirror only, writes land in the chosen calendar, removing one
leaves the others intact, and a Graph that refuses calendarView delta for a secondary calendar
is followed by listing (deletions included)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devhost.local.stack import Stack
from tests.e2e.harness import Mailbox, at, enrol, enrol_calendar, enrol_room, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def delta_refused(stack: Stack) -> Iterator[None]:
    """Graph refuses calendarView delta of non-default calendars during the test."""
    stack.sim.control.knobs(calendar_delta_refused=True)
    try:
        yield
    finally:
        stack.sim.control.knobs(calendar_delta_refused=False)


def _api(mb: Mailbox, method: str, suffix: str = "", **kwargs: Any) -> httpx.Response:
    with mb.stack.admin() as api:
        params = kwargs.pop("params", mb.params)
        return api.request(method, mb.path + suffix, params=params, **kwargs)


def _changes(mb: Mailbox) -> list[dict[str, Any]]:
    response = _api(mb, "GET", "/changes", params={**mb.params, "limit": "500"})
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


def _subscriptions_of(stack: Stack, user_id: str) -> list[str]:
    return sorted(
        s["resource"] for s in stack.sim.control.subscriptions() if user_id in s["resource"]
    )


def test_secondary_and_room_calendars_beside_the_default_one(stack: Stack) -> None:
    """Default, secondary and room calendars: each mirror equals its Graph calendar, each has
    its own subscription, a change notifies its own calendar's round only, and the feed, the
    status and the read API name the calendar."""
    default = enrol(stack)
    default.create({"subject": "Own meeting", **at(1, 9)})
    secondary = enrol_calendar(stack, default, "Team Projects", "projects")
    room = enrol_room(stack)
    for mb in (default, secondary, room):
        mb.converged()
    assert _subscriptions_of(stack, default.user_id) == sorted(
        [
            f"users/{default.user_id}/events",
            f"users/{default.user_id}/calendars/{_quoted(secondary.calendar_id)}/events",
        ]
    )
    assert _subscriptions_of(stack, room.user_id) == [f"users/{room.user_id}/events"]
    ids = {s["id"] for s in stack.sim.control.subscriptions()}
    stack.run_function("renew_subscriptions")  # reconcile: no calendar's subscription is an orphan
    assert ids <= {s["id"] for s in stack.sim.control.subscriptions()}
    shown = secondary.status()
    assert (shown["calendar"], shown["calendarName"]) == ("projects", "Team Projects")
    assert shown["status"]["deltaRefused"] is False
    assert shown["calendarGraphId"] == secondary.calendar_id
    assert default.status()["calendar"] == "calendar"

    before = default.status()["status"]["lastNotification"]
    planning = secondary.create({"subject": "Sprint planning", **at(2, 10)})
    booked = room.create({"subject": "Booked room", **at(1, 11)})
    secondary.converged()
    room.converged()
    assert planning in secondary.mirror()
    assert planning not in default.mirror()
    assert booked not in default.mirror() | secondary.mirror()
    assert default.status()["status"]["lastNotification"] == before  # no round was asked
    assert secondary.status()["status"]["lastNotification"]
    assert {c["calendarId"] for c in _changes(secondary)} == {"projects"}
    assert planning not in {c["eventId"] for c in _changes(default)}
    assert {c["calendarId"] for c in _changes(default)} == {"calendar"}

    agenda = _api(
        secondary, "GET", "/agenda", params={**secondary.params, "start": _days(0), "end": _days(7)}
    )
    assert agenda.status_code == 200, agenda.text
    assert agenda.json()["calendar"] == "projects"
    assert [i["id"] for i in agenda.json()["value"]] == [planning]
    busy = _api(secondary, "GET", "/freebusy", params={**secondary.params, "start": _days(2)})
    assert busy.status_code == 200, busy.text
    assert [i["subject"] for i in busy.json()["scheduleItems"]] == ["Sprint planning"]
    live = _api(
        secondary, "GET", "/live", params={**secondary.params, "end": _days(7), "start": _days(0)}
    )
    assert live.status_code == 200, live.text
    assert [e["id"] for e in live.json()["value"]] == [planning]  # Graph's, of this calendar
    with stack.admin() as api:
        now = api.post(
            "/now",
            json={
                "mailboxes": [
                    {"tenantId": stack.tenant_id, "user": f"{default.upn}:projects"},
                    {"tenantId": stack.tenant_id, "user": default.upn, "calendar": "projects"},
                    {"tenantId": stack.tenant_id, "user": default.upn},
                ]
            },
        )
    assert now.status_code == 200, now.text
    assert [e["calendar"] for e in now.json()["value"]] == ["projects", "projects", "calendar"]
    listed = {(m["userId"], m["calendar"]) for m in _listed(stack)}
    assert {(default.user_id, "calendar"), (default.user_id, "projects")} <= listed


def _quoted(calendar_id: str) -> str:
    return quote(calendar_id, safe="")


def _days(n: int) -> str:
    return (datetime.now(UTC) + timedelta(days=n)).strftime("%Y-%m-%d")


def _listed(stack: Stack) -> list[dict[str, Any]]:
    with stack.admin() as api:
        response = api.get("/mailboxes")
        assert response.status_code == 200, response.text
        return list(response.json()["value"])


def test_writes_land_in_the_chosen_calendar_and_removal_keeps_the_others(stack: Stack) -> None:
    """A write to the secondary calendar and one to the room are in Graph's calendar and the
    mirror at once (not in the default calendar); removing the secondary calendar drops its
    subscription and mirror and leaves the default calendar and the room syncing."""
    default = enrol(stack)
    secondary = enrol_calendar(stack, default, "Side projects", "side")
    room = enrol_room(stack)
    for mb, subject in ((secondary, "Written to side"), (room, "Room booked by helpdesk")):
        body = {"action": "create", "writer": "helpdesk", "event": {"subject": subject, **at(1, 9)}}
        made = _api(mb, "POST", "/writes", json=body)
        assert made.status_code == 201, made.text
        event_id = made.json()["eventId"]
        assert made.json()["calendar"] == (mb.calendar or "calendar")
        assert mb.mirror()[event_id]["subject"] == subject
        in_graph = stack.sim.control.list_events(mb.upn, calendar=mb.calendar_id)
        assert [e["id"] for e in in_graph] == [event_id]
    assert stack.sim.control.list_events(default.upn) == []
    for mb in (default, secondary, room):
        mb.converged()

    removed = _api(secondary, "DELETE", params={**secondary.params, "purge": "true"})
    assert removed.status_code == 200, removed.text
    assert (removed.json()["calendar"], removed.json()["eventsPurged"]) == ("side", 1)
    assert _subscriptions_of(stack, default.user_id) == [f"users/{default.user_id}/events"]
    assert _api(secondary, "GET").status_code == 404
    kept = default.create({"subject": "Still mirrored", **at(3, 9)})
    room.create({"subject": "Room still mirrored", **at(3, 10)})
    default.converged()
    room.converged()
    assert kept in default.mirror()


def test_refused_delta_is_followed_by_listing(stack: Stack, delta_refused: None) -> None:
    """With calendarView delta of secondary calendars refused, the secondary calendar's mirror
    still follows creates, updates and a deletion (each round lists and diffs), while the
    default calendar keeps using delta."""
    default = enrol(stack)
    first = default.create({"subject": "Default event", **at(1, 8)})
    secondary = enrol_calendar(stack, default, "Listed", "listed")
    keep = secondary.create({"subject": "Keep", **at(1, 9)})
    gone = secondary.create({"subject": "To be deleted", **at(2, 9)})
    secondary.converged()
    secondary.update(keep, {"subject": "Keep (moved)", **at(1, 15)})
    secondary.delete(gone)
    secondary.converged()
    assert gone not in secondary.mirror()
    assert secondary.mirror()[keep]["subject"] == "Keep (moved)"
    kinds = [c["type"] for c in _changes(secondary) if c["eventId"] == gone]
    assert kinds == ["created", "deleted"]
    assert "full" in secondary.status()["status"]["lastSyncResult"]
    assert secondary.status()["status"]["deltaRefused"] is True
    default.converged()
    assert first in default.mirror()
    assert "delta" in default.status()["status"]["lastSyncResult"]


def test_bad_calendar_requests_are_4xx(stack: Stack) -> None:
    """An invalid handle, an unknown calendar name and a calendarId without a handle are 400 or
    404 naming what is wrong; so is a calendar not enrolled."""
    default = enrol(stack)
    with stack.admin() as api:
        base = f"/mailboxes/{stack.tenant_id}/{default.upn}"
        bad = api.put(base, params={"calendar": "Not/A/Handle"}, json={})
        assert bad.status_code == 400
        assert "handle" in bad.json()["detail"]
        unknown = api.put(base, params={"calendar": "nope"}, json={"calendarName": "Nope"})
        assert unknown.status_code == 404
        assert "Calendar" in unknown.json()["detail"]
        orphan = api.put(base, json={"calendarId": "AAMk="})
        assert orphan.status_code == 400
        missing = api.get(base, params={"calendar": "never"})
        assert missing.status_code == 404
        twice = api.get(f"{base}:one", params={"calendar": "two"})
        assert twice.status_code == 400


def test_lifecycle_events_of_a_calendar_act_on_that_calendar(stack: Stack) -> None:
    """subscriptionRemoved for the secondary calendar's subscription makes a new one for that
    calendar (the default's stays); reauthorizationRequired resumes it, and its changes reach
    its mirror again; enrolling the handle again for another calendar is refused."""
    default = enrol(stack)
    secondary = enrol_calendar(stack, default, "Lifecycle", "life")
    kept = default.status()["status"]["subscriptionId"]
    old = secondary.status()["status"]["subscriptionId"]
    assert stack.sim.control.lifecycle(old, "subscriptionRemoved")
    renewed = wait_for(
        lambda: (
            (secondary.status()["status"]["subscriptionId"] or old) != old
            and secondary.status()["status"]["subscriptionId"]
        ),
        what="a new subscription of the secondary calendar",
    )
    assert default.status()["status"]["subscriptionId"] == kept
    assert _subscriptions_of(stack, default.user_id) == sorted(
        [
            f"users/{default.user_id}/events",
            f"users/{default.user_id}/calendars/{_quoted(secondary.calendar_id)}/events",
        ]
    )
    assert stack.sim.control.lifecycle(renewed, "reauthorizationRequired")
    wait_for(
        lambda: (
            not any(s["id"] == renewed and s["paused"] for s in stack.sim.control.subscriptions())
        ),
        what="the reauthorization",
    )
    after = secondary.create({"subject": "After the lifecycle", **at(1, 12)})
    secondary.converged()
    assert after in secondary.mirror()
    assert after not in default.mirror()

    stack.sim.control.add_calendar(default.upn, "Another")
    with stack.admin() as api:
        clash = api.put(
            f"/mailboxes/{stack.tenant_id}/{default.upn}:life", json={"calendarName": "Another"}
        )
    assert clash.status_code == 400, clash.text
    assert "remove it first" in clash.json()["detail"]
