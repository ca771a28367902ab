"""calendarView/delta over HTTPS with httpx: paging, tokens, removals, expiry and replays."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from simworld import World

from graphsim import schema

pytestmark = pytest.mark.integration

WINDOW = {"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2028-01-01T00:00:00Z"}


def delta_url(world: World) -> str:
    return f"users/{world.user_id}/calendarView/delta"


def follow(graph: httpx.Client, first: httpx.Response) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks to the deltaLink: (items, deltaLink, pages)."""
    response, items, pages = first, [], 0
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert ("@odata.nextLink" in page) != ("@odata.deltaLink" in page), (
            "exactly one link per page"
        )
        items += page["value"]
        if "@odata.deltaLink" in page:
            return items, page["@odata.deltaLink"], pages
        response = graph.get(page["@odata.nextLink"])


def one(world: World, subject: str, day: str, hour: int = 9) -> dict[str, Any]:
    body = {
        "subject": subject,
        "start": {"dateTime": f"{day}T{hour:02d}:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{day}T{hour:02d}:30:00", "timeZone": "UTC"},
    }
    return world.sim.control.create_event(world.upn, body)


@pytest.mark.slow
def test_httpx_pages_a_10000_event_delta(world: World) -> None:
    """A 10,000-event window pages out fully, every item a valid Graph event, then goes quiet."""
    world.sim.control.bulk_events(world.upn, 10_000, "2027-01-01T06:00:00Z", step_minutes=45)
    graph = world.graph(Prefer="odata.maxpagesize=500")
    items, delta_link, pages = follow(graph, graph.get(delta_url(world), params=WINDOW))
    assert len(items) == len({i["id"] for i in items}) == 10_000
    assert pages >= 20
    problems = [p for item in items for p in schema.validate("event", item)]
    assert problems == []
    assert "$deltatoken=" in delta_link
    quiet, _, _ = follow(graph, graph.get(delta_link))
    assert quiet == []


def test_changes_and_removals_since_the_delta_link(world: World) -> None:
    """Resuming reports created and updated events, and @removed for deleted AND moved-out ones."""
    keep = one(world, "keep", "2027-02-01")
    edit = one(world, "edit", "2027-02-02")
    drop = one(world, "drop", "2027-02-03")
    move = one(world, "move", "2027-02-04")
    graph = world.graph(Prefer='IdType="ImmutableId"')  # the control API's ids
    _, delta_link, _ = follow(graph, graph.get(delta_url(world), params=WINDOW))
    control = world.sim.control
    control.update_event(world.upn, edit["id"], {"subject": "edited"})
    control.delete_event(world.upn, drop["id"])
    control.update_event(
        world.upn,
        move["id"],
        {
            "start": {"dateTime": "2029-01-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2029-01-01T10:00:00", "timeZone": "UTC"},
        },
    )
    added = one(world, "added", "2027-02-05")
    items, _, _ = follow(graph, graph.get(delta_link))
    by_id = {i["id"]: i for i in items}
    assert keep["id"] not in by_id
    assert by_id[edit["id"]]["subject"] == "edited"
    assert by_id[added["id"]]["subject"] == "added"
    assert by_id[drop["id"]] == {"id": drop["id"], "@removed": {"reason": "deleted"}}
    assert by_id[move["id"]]["@removed"] == {"reason": "deleted"}


@pytest.mark.parametrize("immutable", [True, False], ids=["immutable ids", "rest ids"])
def test_a_moved_event_keeps_only_its_immutable_id(world: World, immutable: bool) -> None:
    """After a move, an immutable-id delta reports the same id updated; a REST-id delta reports
    the old REST id removed and the event under a new id; get follows the header likewise."""
    event = one(world, "moved", "2027-02-01")
    graph = world.graph(Prefer='IdType="ImmutableId"') if immutable else world.graph()
    first, delta_link, _ = follow(graph, graph.get(delta_url(world), params=WINDOW))
    [before] = [i["id"] for i in first if i["subject"] == "moved"]
    world.sim.control.move_event(world.upn, event["id"])
    items, _, _ = follow(graph, graph.get(delta_link))
    current = graph.get(f"users/{world.user_id}/events/{quote(before, safe='')}")
    if immutable:
        assert before == event["id"]
        assert [(i["id"], i["subject"]) for i in items] == [(before, "moved")]
        assert current.status_code == 200
        assert current.json()["id"] == before
    else:
        assert before.startswith("AAMkA")
        assert before != event["id"]
        removed = [i["id"] for i in items if "@removed" in i]
        [after] = [i["id"] for i in items if "@removed" not in i]
        assert removed == [before]
        assert after not in (before, event["id"])
        assert current.status_code == 404


def test_window_is_required(world: World) -> None:
    """The first delta request without startDateTime/endDateTime is 400."""
    response = world.graph().get(delta_url(world))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ErrorInvalidParameter"


@pytest.mark.parametrize("option", ["$select", "$filter", "$orderby", "$expand", "$top"])
def test_query_options_are_refused(world: World, option: str) -> None:
    """calendarView/delta supports no $select, $filter, $orderby, $expand or $top: 400."""
    response = world.graph().get(delta_url(world), params={**WINDOW, option: "subject"})
    assert response.status_code == 400
    assert option in response.json()["error"]["message"]


def test_maxpagesize_bounds_pages(world: World) -> None:
    """Prefer: odata.maxpagesize=N caps each page at N and is echoed in Preference-Applied."""
    world.sim.control.bulk_events(world.upn, 12, "2027-03-01T08:00:00Z")
    graph = world.graph(Prefer="odata.maxpagesize=5")
    first = graph.get(delta_url(world), params=WINDOW)
    assert "odata.maxpagesize=5" in first.headers["Preference-Applied"]
    items, _, pages = follow(graph, first)
    assert len(items) == 12
    assert pages >= 3


def test_prefer_timezone_applies_to_delta_items(world: World) -> None:
    """Items come in the zone asked by Prefer: outlook.timezone (UTC when absent)."""
    one(world, "tz", "2027-04-01", hour=16)
    graph = world.graph(Prefer='outlook.timezone="Eastern Standard Time"')
    items, _, _ = follow(graph, graph.get(delta_url(world), params=WINDOW))
    assert items[0]["start"] == {
        "dateTime": "2027-04-01T12:00:00.0000000",
        "timeZone": "Eastern Standard Time",
    }


def test_expired_delta_token_is_410_sync_state_not_found(world: World) -> None:
    """A delta token expired on command answers 410 Gone, code SyncStateNotFound."""
    one(world, "x", "2027-05-01")
    graph = world.graph()
    _, delta_link, _ = follow(graph, graph.get(delta_url(world), params=WINDOW))
    assert world.sim.control.expire_delta(world.upn) >= 1
    response = graph.get(delta_link)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "SyncStateNotFound"


def test_delta_token_expires_by_age(world: World) -> None:
    """With delta_token_max_age_s set, a token older than that (virtual clock) is 410."""
    world.sim.control.knobs(delta_token_max_age_s=600)
    graph = world.graph()
    _, delta_link, _ = follow(graph, graph.get(delta_url(world), params=WINDOW))
    assert graph.get(delta_link).status_code == 200
    world.sim.control.advance(601)
    response = world.graph().get(delta_link)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "SyncStateNotFound"


def test_unknown_token_is_410(world: World) -> None:
    """A made-up $deltatoken is an unknown sync state: 410."""
    response = world.graph().get(delta_url(world), params={"$deltatoken": quote("nope")})
    assert response.status_code == 410


def test_replays_repeat_items(world: World) -> None:
    """With delta_replay_rate, some items come more than once (Graph's documented replays)."""
    world.sim.control.knobs(delta_replay_rate=0.5)
    world.sim.control.bulk_events(world.upn, 40, "2027-06-01T08:00:00Z")
    graph = world.graph(Prefer="odata.maxpagesize=100")
    items, _, _ = follow(graph, graph.get(delta_url(world), params=WINDOW))
    assert len({i["id"] for i in items}) == 40
    assert len(items) > 40


def test_empty_pages_can_occur(world: World) -> None:
    """With delta_empty_page_rate some pages have an empty value and a nextLink; none is lost."""
    world.sim.control.knobs(delta_empty_page_rate=0.5)
    world.sim.control.bulk_events(world.upn, 30, "2027-07-01T08:00:00Z")
    graph = world.graph(Prefer="odata.maxpagesize=5")
    response = graph.get(delta_url(world), params=WINDOW)
    pages: list[list[dict[str, Any]]] = []
    while True:
        page = response.json()
        pages.append(page["value"])
        if "@odata.deltaLink" in page:
            break
        response = graph.get(page["@odata.nextLink"])
    assert [] in pages[:-1]
    assert len({i["id"] for p in pages for i in p}) == 30


def test_function_call_form_delta_parens_pages_the_same(world: World) -> None:
    """`calendarView/delta()` (the form the msgraph-sdk sends, which Graph accepts) pages the
    same window as `calendarView/delta`."""
    one(world, "Parens", "2027-03-01")
    graph = world.graph()
    items, delta_link, _ = follow(graph, graph.get(delta_url(world) + "()", params=WINDOW))
    assert [i["subject"] for i in items] == ["Parens"]
    assert "/calendarView/delta()?$deltatoken=" in delta_link
