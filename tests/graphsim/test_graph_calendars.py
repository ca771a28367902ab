"""More calendars than the default one, and room mailboxes, over HTTPS: listing, events,
calendarView, delta (and its refusal knob), subscriptions that hear one calendar only."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import pytest
from simworld import Receiver, World

from graphsim import schema
from graphsim.client import ControlError
from graphsim.testing import token_for

pytestmark = pytest.mark.integration

WINDOW = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-03-01T00:00:00Z"}


def event(subject: str, day: int = 10) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"2027-01-{day:02d}T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"2027-01-{day:02d}T10:00:00", "timeZone": "UTC"},
    }


def cal(calendar_id: str) -> str:
    return f"calendars/{quote(calendar_id, safe='')}"


def subjects(world: World, rest: str) -> list[str]:
    got = world.graph().get(f"users/{world.user_id}/{rest}", params={**WINDOW, "$top": "100"})
    assert got.status_code == 200, got.text
    return sorted(e["subject"] for e in got.json()["value"])


def test_calendars_list_the_default_and_the_others(world: World) -> None:
    """GET /calendars lists the default calendar first, then the others with owner and canEdit;
    each validates as a Graph calendar and GET /calendars/{id} answers it."""
    projects = world.sim.control.add_calendar(world.upn, "Projects")
    world.sim.control.add_calendar(world.upn, "Read only", can_edit=False)
    listed = world.graph().get(f"users/{world.user_id}/calendars").json()["value"]
    assert [c["name"] for c in listed] == ["Calendar", "Projects", "Read only"]
    assert [c["isDefaultCalendar"] for c in listed] == [True, False, False]
    assert [c["canEdit"] for c in listed] == [True, True, False]
    assert {c["owner"]["address"] for c in listed} == {world.upn}
    for doc in listed:
        assert schema.validate("calendar", doc) == [], doc
    assert projects.endswith("=")  # shaped like Exchange's ids: a path needs it encoded
    one = world.graph().get(f"users/{world.user_id}/{cal(projects)}").json()
    assert one["id"] == projects
    assert one["name"] == "Projects"
    missing = world.graph().get(f"users/{world.user_id}/{cal(projects[:-4] + 'AAA=')}")
    assert missing.status_code == 404


def test_events_live_in_their_calendar(world: World) -> None:
    """An event created in a calendar shows in its calendarView only; /users/{id}/events lists
    the default calendar; /users/{id}/events/{id} reaches an event of any calendar."""
    projects = world.sim.control.add_calendar(world.upn, "Projects")
    graph = world.graph()
    made = graph.post(f"users/{world.user_id}/{cal(projects)}/events", json=event("In projects"))
    assert made.status_code == 201, made.text
    world.sim.control.create_event(world.upn, event("In default", 11))
    world.sim.control.create_event(world.upn, event("Also projects", 12), calendar="Projects")
    assert subjects(world, f"{cal(projects)}/calendarView") == ["Also projects", "In projects"]
    assert subjects(world, "calendarView") == ["In default"]
    assert subjects(world, "events") == ["In default"]
    by_id = graph.get(f"users/{world.user_id}/events/{quote(made.json()['id'], safe='')}")
    assert by_id.status_code == 200
    assert by_id.json()["subject"] == "In projects"
    wrong = graph.get(
        f"users/{world.user_id}/calendar/events/{quote(made.json()['id'], safe='')}",
    )
    assert wrong.status_code == 200  # Exchange finds an item by id in any folder of the mailbox


def test_read_only_calendar_refuses_writes(world: World) -> None:
    """A calendar whose canEdit is false answers 403 to a create."""
    shared = world.sim.control.add_calendar(world.upn, "Shared with me", can_edit=False)
    got = world.graph().post(f"users/{world.user_id}/{cal(shared)}/events", json=event("x"))
    assert got.status_code == 403
    assert got.json()["error"]["code"] == "ErrorAccessDenied"


def _delta(world: World, calendar_id: str) -> tuple[list[str], str]:
    graph = world.graph(Prefer="odata.maxpagesize=50")
    got = graph.get(f"users/{world.user_id}/{cal(calendar_id)}/calendarView/delta", params=WINDOW)
    assert got.status_code == 200, got.text
    found = [e["subject"] for e in got.json()["value"]]
    body = got.json()
    while "@odata.nextLink" in body:
        body = graph.get(body["@odata.nextLink"]).json()
        found += [e["subject"] for e in body["value"]]
    return sorted(found), body["@odata.deltaLink"]


def test_delta_of_another_calendar_and_its_refusal(world: World) -> None:
    """calendarView/delta of a calendar follows that calendar alone; with the
    calendar_delta_refused knob it answers 400 for a non-default calendar (the default one
    still answers)."""
    projects = world.sim.control.add_calendar(world.upn, "Projects")
    world.sim.control.create_event(world.upn, event("P1"), calendar=projects)
    world.sim.control.create_event(world.upn, event("D1", 11))
    found, link = _delta(world, projects)
    assert found == ["P1"]
    world.sim.control.create_event(world.upn, event("P2", 12), calendar=projects)
    world.sim.control.create_event(world.upn, event("D2", 13))
    later = world.graph().get(link).json()
    assert [e["subject"] for e in later["value"]] == ["P2"]
    world.sim.control.knobs(calendar_delta_refused=True)
    refused = world.graph().get(
        f"users/{world.user_id}/{cal(projects)}/calendarView/delta", params=WINDOW
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "ErrorInvalidRequest"
    assert world.graph().get(later["@odata.deltaLink"]).status_code == 400
    default = world.graph().get(f"users/{world.user_id}/calendarView/delta", params=WINDOW)
    assert default.status_code == 200


def test_subscription_on_a_calendar_hears_that_calendar_only(
    world: World, receiver: Receiver
) -> None:
    """users/{id}/calendars/{id}/events notifies changes of that calendar, naming it in the
    resource; users/{id}/events hears the default calendar only."""
    projects = world.sim.control.add_calendar(world.upn, "Projects")
    now = dt.datetime.fromisoformat(world.sim.control.now().replace("Z", "+00:00"))
    expiry = (now + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    subs = {}
    for name, resource in (
        ("default", f"users/{world.user_id}/events"),
        ("projects", f"users/{world.user_id}/{cal(projects)}/events"),
    ):
        made = world.graph().post(
            "subscriptions",
            json={
                "changeType": "created,updated,deleted",
                "notificationUrl": receiver.url,
                "resource": resource,
                "expirationDateTime": expiry,
                "clientState": name,
            },
        )
        assert made.status_code == 201, made.text
        subs[made.json()["id"]] = name
    world.sim.control.create_event(world.upn, event("P1"), calendar=projects)
    items = receiver.wait_items(1)
    world.sim.control.create_event(world.upn, event("D1", 11))
    items = receiver.wait_items(2)
    assert [i["clientState"] for i in items] == ["projects", "default"]
    assert f"/Calendars/{projects}/Events/" in items[0]["resource"]
    assert "/Calendars/" not in items[1]["resource"]


def test_rooms_are_mailboxes_and_places(world: World) -> None:
    """A room mailbox is a user with a calendar like any other, and GET
    /places/microsoft.graph.room lists the tenant's rooms (not equipment) with Place.Read.All."""
    seeded = world.sim.control.seed(
        users=[
            {"tenant": world.tenant_id, "upn": f"room1@{world.domain}", "kind": "room"},
            {"tenant": world.tenant_id, "upn": f"beamer@{world.domain}", "kind": "equipment"},
        ]
    )
    room_id = seeded["users"][f"room1@{world.domain}"]
    made = world.graph().post(f"users/room1@{world.domain}/events", json=event("Standup"))
    assert made.status_code == 201, made.text
    view = world.graph().get(f"users/{room_id}/calendarView", params=WINDOW).json()["value"]
    assert [e["subject"] for e in view] == ["Standup"]
    assert world.graph().get("places/microsoft.graph.room").status_code == 403
    client_id, secret = world.new_app(["Place.Read.All"])
    token = token_for(world.sim, world.tenant_id, client_id, secret)
    rooms = world.graph(token).get("places/microsoft.graph.room").json()["value"]
    assert [r["emailAddress"] for r in rooms] == [f"room1@{world.domain}"]
    assert rooms[0]["id"] == room_id


def test_seed_makes_calendars_and_bad_names_are_refused(world: World) -> None:
    """/_sim/seed makes a user's calendars (their ids answered); a second calendar of the same
    name is refused as Exchange refuses it; an unknown user kind is refused."""
    upn = f"carol@{world.domain}"
    seeded = world.sim.control.seed(
        users=[{"tenant": world.tenant_id, "upn": upn, "calendars": ["Holidays", "Team"]}]
    )
    ids = seeded["calendars"][upn]
    user_id = seeded["users"][upn]
    listed = world.graph().get(f"users/{user_id}/calendars").json()["value"]
    assert {c["name"]: c["id"] for c in listed if not c["isDefaultCalendar"]} == ids
    with pytest.raises(ControlError, match="already exists"):
        world.sim.control.add_calendar(upn, "team")
    with pytest.raises(ControlError, match="kind"):
        world.sim.control.seed(users=[{"tenant": world.tenant_id, "upn": "x@y.z", "kind": "bus"}])
