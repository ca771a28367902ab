"""Calendars as part of a mailbox's identity: handles, keys, messages, picking Graph's calendar,
the listing fallback's pages, and the Graph requests of another calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.core import graph
from shared.core.calendars import parse_handle, pick_calendar, slug, split_ref
from shared.core.feed import ChangeEvent
from shared.core.listing import LISTING_LINK, PAGE_SIZE, is_refusal, listing_pages
from shared.core.messages import decode_sync_request
from shared.core.model import MailboxKey, SyncRequest, Trigger, Window
from shared.core.webhooks import Filter, WorkItem, decode_work_item
from shared.errors import InputError, NotFoundError

T, U = "tenant", "3f2a"
CAL_ID = "AAMkAGI2+abc/def=="
LISTED: list[dict[str, Any]] = [
    {"id": "default-id", "name": "Calendar", "isDefaultCalendar": True},
    {"id": CAL_ID, "name": "Team Projects", "isDefaultCalendar": False},
    {"id": "other", "name": "Birthdays", "isDefaultCalendar": False},
]


def test_default_calendar_keys_are_unchanged() -> None:
    """The default calendar's partition and label are what they were before calendars."""
    key = MailboxKey(T, U)
    assert (key.partition, key.label, key.calendar_name) == (f"{T}_{U}", U, "calendar")
    assert MailboxKey.from_label(T, U) == key
    assert key.mailbox == key


def test_another_calendar_has_its_own_partition_and_label() -> None:
    """A handle makes a partition and a mailbox RowKey of its own, read back by from_label."""
    key = MailboxKey(T, U, "projects")
    assert (key.partition, key.label) == (f"{T}_{U}:projects", f"{U}:projects")
    assert key.partition != MailboxKey(T, U).partition
    assert MailboxKey.from_label(T, key.label) == key
    assert key.mailbox == MailboxKey(T, U)
    assert key.calendar_name == "projects"


@pytest.mark.parametrize(
    ("user", "calendar", "expected"),
    [
        ("alice@contoso.com", None, ("alice@contoso.com", "")),
        ("alice@contoso.com:room-1", None, ("alice@contoso.com", "room-1")),
        ("alice@contoso.com", "Room-1", ("alice@contoso.com", "room-1")),
        ("alice@contoso.com:room-1", "room-1", ("alice@contoso.com", "room-1")),
        ("alice@contoso.com", "", ("alice@contoso.com", "")),
    ],
)
def test_split_ref(user: str, calendar: str | None, expected: tuple[str, str]) -> None:
    """`user:handle` and the calendar parameter both name the calendar, lower-cased."""
    assert split_ref(user, calendar) == expected


@pytest.mark.parametrize(
    ("user", "calendar", "fragment"),
    [
        ("a:one", "two", "name the calendar once"),
        ("a:", None, "after ':'"),
        ("a", "calendar", "default calendar"),
        ("a", "has/slash", "not a calendar handle"),
        ("a", "x" * 41, "not a calendar handle"),
        ("a", "-lead", "not a calendar handle"),
    ],
)
def test_split_ref_refuses(user: str, calendar: str | None, fragment: str) -> None:
    """A bad handle, or a calendar named twice differently, is an InputError saying so."""
    with pytest.raises(InputError, match=fragment):
        split_ref(user, calendar)


def test_parse_handle_of_nothing_is_the_default() -> None:
    """No handle (None, blank) is the default calendar."""
    assert parse_handle(None) == parse_handle("  ") == ""


@pytest.mark.parametrize(
    ("body", "handle", "expected"),
    [
        ({"calendarId": CAL_ID}, "x", CAL_ID),
        ({"calendarName": "team projects"}, "x", CAL_ID),
        ({}, "team-projects", CAL_ID),
        ({}, "birthdays", "other"),
    ],
)
def test_pick_calendar(body: dict[str, Any], handle: str, expected: str) -> None:
    """By calendarId exactly, by calendarName case-insensitively, else by the handle's slug."""
    assert pick_calendar(LISTED, body, handle)["id"] == expected


def test_pick_calendar_refusals() -> None:
    """No match is a NotFoundError listing the calendars; a blank or non-string id a 400."""
    with pytest.raises(NotFoundError, match="'Team Projects'"):
        pick_calendar(LISTED, {"calendarName": "Nope"}, "nope")
    with pytest.raises(InputError, match="calendarId must be"):
        pick_calendar(LISTED, {"calendarId": 3}, "x")
    twins = [*LISTED, {"id": "again", "name": "BIRTHDAYS"}]
    with pytest.raises(InputError, match="2 calendars match"):
        pick_calendar(twins, {"calendarName": "birthdays"}, "x")


def test_slug() -> None:
    """A calendar's name suggests its handle."""
    assert slug("  Team Projects (2027)! ") == "team-projects-2027"


def test_sync_request_carries_the_calendar() -> None:
    """A queue message names the calendar; an old one (no field) is the default calendar."""
    new = decode_sync_request({"tenant_id": T, "user_id": U, "trigger": "poll", "calendar": "p"})
    assert new == SyncRequest(T, U, Trigger.POLL, calendar="p")
    assert new.mailbox == MailboxKey(T, U, "p")
    old = decode_sync_request({"tenant_id": T, "user_id": U, "trigger": "poll"})
    assert old.mailbox == MailboxKey(T, U)
    with pytest.raises(InputError, match="calendar"):
        decode_sync_request({"tenant_id": T, "user_id": U, "trigger": "poll", "calendar": "a/b"})


def test_work_item_round_trip_keeps_the_calendar() -> None:
    """A delivery work item of another calendar names it; the default's JSON is as before."""
    item = WorkItem("s", T, U, "projects")
    assert decode_work_item(item.to_json()) == item
    assert "calendar" not in WorkItem("s", T, U).to_json()
    with pytest.raises(InputError, match="calendar"):
        decode_work_item({**item.to_json(), "calendar": "Bad Handle"})


def test_change_event_partition_follows_its_calendar() -> None:
    """A change of another calendar lives in that calendar's partition."""
    at = datetime(2027, 1, 1, tzinfo=UTC)
    change = ChangeEvent("id", 0, "created", T, U, "e", at, calendar_id="projects")
    assert change.partition == MailboxKey(T, U, "projects").partition
    assert ChangeEvent("id", 0, "created", T, U, "e", at).partition == MailboxKey(T, U).partition


@pytest.mark.parametrize(
    ("status", "default", "refused"),
    [
        (400, False, True),
        (501, False, True),
        (404, False, True),
        (400, True, False),
        (410, False, False),
        (429, False, False),
        (403, False, False),
        (503, False, False),
        (None, False, False),
    ],
)
def test_is_refusal(status: int | None, default: bool, refused: bool) -> None:
    """Only a non-default calendar's 400/404/405/501 is a refusal of delta."""
    assert is_refusal(status, default_calendar=default) is refused


def test_listing_pages() -> None:
    """A listing becomes pages of PAGE_SIZE items, the last carrying LISTING_LINK; no items is
    one empty last page (the diff then deletes everything)."""
    events = [{"id": f"e{i}", "subject": str(i)} for i in range(PAGE_SIZE + 5)]
    pages = list(listing_pages(events))
    assert [len(p.items) for p in pages] == [PAGE_SIZE, 5]
    assert pages[0].delta_link is None
    assert pages[0].next_link
    assert pages[-1].delta_link == LISTING_LINK
    assert pages[-1].items[-1].event == events[-1]
    empty = list(listing_pages([]))
    assert len(empty) == 1
    assert empty[0].items == ()
    assert empty[0].delta_link == LISTING_LINK


def test_requests_of_another_calendar() -> None:
    """Delta, calendarView, create and the subscription resource address the calendar by its
    percent-encoded Graph id; without one they are the default calendar's."""
    key = MailboxKey(T, U, "projects")
    window = Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))
    base = f"users/{U}/calendars/AAMkAGI2%2Babc%2Fdef%3D%3D"
    assert graph.delta_start(key, window, body_type="html", calendar_id=CAL_ID).path == (
        f"{base}/calendarView/delta"
    )
    assert graph.calendar_view_live(key, window, body_type="html", calendar_id=CAL_ID).path == (
        f"{base}/calendarView"
    )
    made = graph.event_create(key, {}, transaction_id="t", body_type="html", calendar_id=CAL_ID)
    assert made.path == f"{base}/events"
    assert graph.events_resource(key, CAL_ID) == f"{base}/events"
    assert graph.events_resource(key) == f"users/{U}/events"
    assert graph.delta_start(key, window, body_type="html").path == f"users/{U}/calendarView/delta"


@pytest.mark.parametrize(
    ("entries", "calendar", "matched"),
    [
        ((U,), "calendar", True),
        ((U,), "projects", True),
        ((f"{U}:projects",), "projects", True),
        ((f"{U}:projects",), "calendar", False),
        ((f"{U}:calendar",), "calendar", True),
        (("someone-else",), "projects", False),
    ],
)
def test_webhook_filter_by_calendar(entries: tuple[str, ...], calendar: str, matched: bool) -> None:
    """A filter's "user" takes every calendar of the user, "user:handle" that calendar only."""
    at = datetime(2027, 1, 1, tzinfo=UTC)
    change = ChangeEvent("id", 0, "created", T, U, "e", at, calendar_id=calendar)
    assert Filter(mailboxes=entries).matches(change) is matched
