"""Graph v1.0 users, calendars, events and calendarView over HTTPS, checked against the schema."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from simworld import World

from graphsim import schema

pytestmark = pytest.mark.integration

WINDOW = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-03-01T00:00:00Z"}


def event(subject: str, start: str, end: str, zone: str = "UTC", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


def valid(doc: dict[str, Any], type_name: str = "event") -> dict[str, Any]:
    problems = schema.validate(type_name, doc)
    assert problems == [], problems
    return doc


def path(world: World, rest: str = "") -> str:
    return f"users/{world.user_id}{rest}"


def eid(event_id: str) -> str:
    """Graph ids contain '/', '+' and '=': one path segment needs them percent-encoded."""
    return quote(event_id, safe="")


def view(world: World, **window: str) -> list[dict[str, Any]]:
    graph = world.graph()
    response = graph.get(path(world, "/calendarView"), params={**WINDOW, **window, "$top": "500"})
    assert response.status_code == 200, response.text
    return [valid(e) for e in response.json()["value"]]


def test_user_by_id_and_by_upn(world: World) -> None:
    """GET /users/{id} and /users/{upn} answer the same user."""
    graph = world.graph()
    by_id = graph.get(f"users/{world.user_id}").json()
    by_upn = graph.get(f"users/{world.upn}").json()
    assert by_id["id"] == by_upn["id"] == world.user_id
    assert by_upn["userPrincipalName"] == world.upn


def test_default_calendar_and_calendars(world: World) -> None:
    """The mailbox has one calendar, its default; it validates as a Graph calendar."""
    graph = world.graph()
    default = valid(graph.get(path(world, "/calendar")).json(), "calendar")
    listed = graph.get(path(world, "/calendars")).json()["value"]
    assert [c["id"] for c in listed] == [default["id"]]
    assert default["isDefaultCalendar"] is True
    by_id = graph.get(path(world, f"/calendars/{eid(default['id'])}")).json()
    assert by_id["id"] == default["id"]


def test_create_get_update_delete_with_etags(world: World) -> None:
    """CRUD: 201 on create, changeKey and @odata.etag change on every update, 404 after delete."""
    graph = world.graph()
    body = event(
        "Planning",
        "2027-01-10T09:00:00",
        "2027-01-10T10:00:00",
        body={"contentType": "html", "content": "<p>Agenda: <b>budget</b></p>"},
        sensitivity="private",
        showAs="tentative",
        isReminderOn=True,
        reminderMinutesBeforeStart=30,
        attendees=[{"emailAddress": {"address": "x@example.com", "name": "X"}, "type": "required"}],
    )
    created = graph.post(path(world, "/events"), json=body)
    assert created.status_code == 201, created.text
    doc = valid(created.json())
    assert doc["type"] == "singleInstance"
    assert (doc["sensitivity"], doc["showAs"], doc["reminderMinutesBeforeStart"]) == (
        "private",
        "tentative",
        30,
    )
    assert doc["attendees"][0]["emailAddress"]["address"] == "x@example.com"
    assert doc["@odata.etag"] == f'W/"{doc["changeKey"]}"'
    got = valid(graph.get(path(world, f"/events/{eid(doc['id'])}")).json())
    assert got["changeKey"] == doc["changeKey"]
    patched = graph.patch(path(world, f"/events/{eid(doc['id'])}"), json={"subject": "Planning v2"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["changeKey"] != doc["changeKey"]
    assert patched.json()["@odata.etag"] != doc["@odata.etag"]
    assert graph.delete(path(world, f"/events/{eid(doc['id'])}")).status_code == 204
    gone = graph.get(path(world, f"/events/{eid(doc['id'])}"))
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ErrorItemNotFound"


def test_stale_if_match_is_412(world: World) -> None:
    """PATCH with an If-Match of an older etag is 412; the current etag succeeds."""
    graph = world.graph()
    doc = graph.post(
        path(world, "/events"), json=event("A", "2027-01-11T09:00:00", "2027-01-11T09:30:00")
    ).json()
    url = path(world, f"/events/{eid(doc['id'])}")
    fresh = graph.patch(url, json={"subject": "B"}, headers={"If-Match": doc["@odata.etag"]})
    assert fresh.status_code == 200
    stale = graph.patch(url, json={"subject": "C"}, headers={"If-Match": doc["@odata.etag"]})
    assert stale.status_code == 412
    assert "innerError" in stale.json()["error"]


def test_transaction_id_refuses_a_repeated_post(world: World) -> None:
    """A second POST with the same transactionId is 409 ErrorDuplicateTransactionId; one event."""
    graph = world.graph()
    body = event("Once", "2027-01-12T09:00:00", "2027-01-12T09:30:00", transactionId="tx-42")
    first = graph.post(path(world, "/events"), json=body).json()
    second = graph.post(path(world, "/events"), json=body)
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "ErrorDuplicateTransactionId"
    listed = graph.get(path(world, "/events"), params={"$top": "100"}).json()["value"]
    assert [e["id"] for e in listed].count(first["id"]) == 1
    assert [e["transactionId"] for e in listed].count("tx-42") == 1


PROP = "String {4f1c5e2a-8b3d-4c6e-9a7f-2d5b8e1c0a93} Name calsyncOrigin"
EXPAND = f"singleValueExtendedProperties($filter=id eq '{PROP}')"


def test_extended_property_expanded_and_filtered(world: World) -> None:
    """An extended property set by POST is absent unless $expand'ed (event, calendarView), and
    $filter by it on /events finds exactly the events carrying that value."""
    graph = world.graph()
    marker = [{"id": PROP, "value": "calsync;writer=w;write=1"}]
    body = event("Marked", "2027-01-13T09:00:00", "2027-01-13T09:30:00")
    made = graph.post(
        path(world, "/events"), json={**body, "singleValueExtendedProperties": marker}
    )
    assert made.status_code == 201
    assert "singleValueExtendedProperties" not in made.json()
    plain = graph.post(path(world, "/events"), json=event("Plain", *body_times(body))).json()
    one = graph.get(path(world, f"/events/{eid(made.json()['id'])}"), params={"$expand": EXPAND})
    assert one.json()["singleValueExtendedProperties"] == marker
    bare = graph.get(path(world, f"/events/{eid(plain['id'])}"), params={"$expand": EXPAND})
    assert "singleValueExtendedProperties" not in bare.json()
    value = marker[0]["value"]
    wanted = f"singleValueExtendedProperties/any(ep: ep/id eq '{PROP}' and ep/value eq '{value}')"
    found = graph.get(path(world, "/events"), params={"$filter": wanted, "$expand": EXPAND})
    assert [e["id"] for e in found.json()["value"]] == [made.json()["id"]]
    listed = graph.get(path(world, "/calendarView"), params={**WINDOW, "$expand": EXPAND})
    marked = [e for e in listed.json()["value"] if "singleValueExtendedProperties" in e]
    assert [e["id"] for e in marked] == [made.json()["id"]]
    other = graph.get(path(world, "/events"), params={"$filter": "subject eq 'x'"})
    assert other.status_code == 400


def body_times(body: dict[str, Any]) -> tuple[str, str]:
    return body["start"]["dateTime"], body["end"]["dateTime"]


def test_prefer_timezone_and_text_body(world: World) -> None:
    """Prefer outlook.timezone converts start/end; outlook.body-content-type=text strips HTML."""
    graph = world.graph(
        Prefer='outlook.timezone="Pacific Standard Time", outlook.body-content-type="text"'
    )
    body = event(
        "TZ",
        "2027-01-13T17:00:00",
        "2027-01-13T18:00:00",
        body={"contentType": "html", "content": "<p>Hello <i>there</i></p>"},
    )
    doc = valid(graph.post(path(world, "/events"), json=body).json())
    assert doc["start"] == {
        "dateTime": "2027-01-13T09:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    assert doc["body"]["contentType"] == "text"
    assert "<" not in doc["body"]["content"]
    plain = world.graph().get(path(world, f"/events/{eid(doc['id'])}")).json()
    assert plain["start"]["timeZone"] == "UTC"
    assert plain["body"]["contentType"] == "html"


@pytest.mark.parametrize(
    ("pattern", "rng", "expected"),
    [
        ({"type": "daily", "interval": 2}, {"type": "numbered", "numberOfOccurrences": 3}, 3),
        (
            {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"]},
            {"type": "endDate", "endDate": "2027-01-21"},
            6,
        ),
        ({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}, {"type": "noEnd"}, 2),
        (
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
            {"type": "numbered", "numberOfOccurrences": 5},
            2,
        ),
        (
            {"type": "absoluteYearly", "interval": 1, "month": 1, "dayOfMonth": 4},
            {"type": "noEnd"},
            1,
        ),
    ],
)
def test_recurring_series_expand_into_occurrences(
    world: World, pattern: dict[str, Any], rng: dict[str, Any], expected: int
) -> None:
    """calendarView expands each pattern and range type into occurrences (no series master)."""
    body = event(
        "Series",
        "2027-01-04T08:00:00",
        "2027-01-04T08:30:00",
        recurrence={"pattern": pattern, "range": {"startDate": "2027-01-04", **rng}},
    )
    master = world.graph().post(path(world, "/events"), json=body)
    assert master.status_code == 201, master.text
    assert valid(master.json())["type"] == "seriesMaster"
    occurrences = view(world)
    assert len(occurrences) == expected
    assert {o["type"] for o in occurrences} == {"occurrence"}
    assert {o["seriesMasterId"] for o in occurrences} == {master.json()["id"]}


def test_edited_occurrence_becomes_exception_and_cancelled_one_disappears(world: World) -> None:
    """Editing an occurrence makes an exception; deleting one removes it from calendarView."""
    graph = world.graph()
    body = event(
        "Daily",
        "2027-01-04T08:00:00",
        "2027-01-04T08:15:00",
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2027-01-04", "numberOfOccurrences": 4},
        },
    )
    master = graph.post(path(world, "/events"), json=body).json()
    first, second, *_ = view(world)
    edited = graph.patch(path(world, f"/events/{eid(first['id'])}"), json={"subject": "Moved"})
    assert edited.status_code == 200, edited.text
    assert graph.delete(path(world, f"/events/{eid(second['id'])}")).status_code == 204
    after = view(world)
    assert len(after) == 3
    by_id = {e["id"]: e for e in after}
    assert by_id[first["id"]]["type"] == "exception"
    assert by_id[first["id"]]["subject"] == "Moved"
    assert second["id"] not in by_id
    instances = graph.get(path(world, f"/events/{eid(master['id'])}/instances"), params=WINDOW)
    assert instances.status_code == 200
    assert len(instances.json()["value"]) == 3


def test_all_day_event(world: World) -> None:
    """An all-day event spans whole days and says isAllDay."""
    body = event("Holiday", "2027-01-15T00:00:00", "2027-01-16T00:00:00", isAllDay=True)
    doc = valid(world.graph().post(path(world, "/events"), json=body).json())
    assert doc["isAllDay"] is True
    assert [e["subject"] for e in view(world)] == ["Holiday"]


def test_cancel_removes_the_event(world: World) -> None:
    """POST /events/{id}/cancel answers 202 and the meeting leaves the organizer's calendar."""
    graph = world.graph()
    doc = graph.post(
        path(world, "/events"), json=event("Call", "2027-01-18T09:00:00", "2027-01-18T09:30:00")
    ).json()
    response = graph.post(
        path(world, f"/events/{eid(doc['id'])}/cancel"), json={"Comment": "sorry"}
    )
    assert response.status_code == 202
    assert view(world) == []


def test_list_pages_with_next_link(world: World) -> None:
    """Lists page with $top and @odata.nextLink ($skip) until the last page."""
    world.sim.control.bulk_events(world.upn, 7, "2027-01-05T08:00:00Z")
    graph = world.graph()
    url: str | None = graph.get(
        path(world, "/calendarView"), params={**WINDOW, "$top": "3"}
    ).url.__str__()
    seen: list[str] = []
    while url:
        page = graph.get(url).json()
        seen += [e["id"] for e in page["value"]]
        url = page.get("@odata.nextLink")
    assert len(seen) == len(set(seen)) == 7


@pytest.mark.parametrize(
    ("rest", "params", "code"),
    [
        ("/calendarView", {"$frobnicate": "1", **WINDOW}, "BadRequest"),
        ("/calendarView", {}, "ErrorInvalidParameter"),
        (
            "/calendarView",
            {"startDateTime": "yesterday", "endDateTime": "today"},
            "ErrorInvalidParameter",
        ),
        ("/nonsense", {}, "BadRequest"),
    ],
)
def test_bad_query_is_400_with_graph_error(
    world: World, rest: str, params: dict[str, str], code: str
) -> None:
    """An unknown $option, a missing or malformed window, an unknown segment: 400, Graph's body."""
    response = world.graph().get(path(world, rest), params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert response.headers["request-id"] == error["innerError"]["request-id"]


def test_malformed_body_is_400(world: World) -> None:
    """A body that is not JSON, or an event property Graph does not have, is 400."""
    graph = world.graph()
    broken = graph.post(
        path(world, "/events"), content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    unknown = graph.post(path(world, "/events"), json={"subjekt": "typo"})
    assert unknown.status_code == 400


def test_client_request_id_is_echoed(world: World) -> None:
    """client-request-id from the caller comes back, next to a fresh request-id."""
    response = world.graph().get(path(world, "/calendar"), headers={"client-request-id": "abc-123"})
    assert response.headers["client-request-id"] == "abc-123"
    assert response.headers["request-id"]


def test_me_is_refused_for_app_tokens(world: World) -> None:
    """/me needs a delegated token: an app token gets 400."""
    response = world.graph().get("me/events")
    assert response.status_code == 400
    assert "delegated" in response.json()["error"]["message"]


def test_get_schedule(world: World) -> None:
    """getSchedule answers scheduleInformation with availabilityView digits per interval."""
    graph = world.graph()
    graph.post(
        path(world, "/events"),
        json=event("Busy", "2027-01-20T09:00:00", "2027-01-20T10:00:00", showAs="busy"),
    )
    response = graph.post(
        path(world, "/calendar/getSchedule"),
        json={
            "schedules": [world.upn],
            "startTime": {"dateTime": "2027-01-20T08:00:00", "timeZone": "UTC"},
            "endTime": {"dateTime": "2027-01-20T11:00:00", "timeZone": "UTC"},
            "availabilityViewInterval": 60,
        },
    )
    assert response.status_code == 200, response.text
    info = valid(response.json()["value"][0], "scheduleInformation")
    assert info["availabilityView"] == "020"


def test_get_schedule_refuses_over_20_schedules(world: World) -> None:
    """getSchedule takes at most 20 schedules per request: 21 is a 400."""
    response = world.graph().post(
        path(world, "/calendar/getSchedule"),
        json={
            "schedules": [f"u{i}@{world.domain}" for i in range(21)],
            "startTime": {"dateTime": "2027-01-20T08:00:00", "timeZone": "UTC"},
            "endTime": {"dateTime": "2027-01-20T11:00:00", "timeZone": "UTC"},
        },
    )
    assert response.status_code == 400
