"""The read API's ranges and agenda items: floating all-day events placed in the mailbox's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.core.agenda import Range, agenda, agenda_item, local_day, parse_range, place
from shared.core.freebusy import now_of
from shared.errors import InputError

TOKYO, LA = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # Dec 2 05:00 in Tokyo, Dec 1 12:00 in LA


def _all_day(first: str, last: str, **extra: Any) -> dict[str, Any]:
    # As normalised for a UTC mailbox: stored instants are UTC midnights.
    return {
        "event_id": "a",
        "is_all_day": True,
        "all_day_start_date": first,
        "all_day_end_date": last,
        "start": datetime.fromisoformat(first).replace(tzinfo=UTC),
        "end": datetime.fromisoformat(last).replace(tzinfo=UTC),
        "show_as": "oof",
        "start_time_zone": "UTC",
        **extra,
    }


@pytest.mark.parametrize(
    ("zone", "first", "last", "start", "end"),
    [
        (TOKYO, "2026-12-02", "2026-12-03", "2026-12-01T15:00:00Z", "2026-12-02T15:00:00Z"),
        (LA, "2026-12-01", "2026-12-02", "2026-12-01T08:00:00Z", "2026-12-02T08:00:00Z"),
        (UTC, "2026-12-01", "2026-12-04", "2026-12-01T00:00:00Z", "2026-12-04T00:00:00Z"),
        # a DST change inside a multi-day event: each midnight at its own offset
        (LA, "2026-11-01", "2026-11-02", "2026-11-01T07:00:00Z", "2026-11-02T08:00:00Z"),
    ],
)
def test_all_day_events_float_to_the_mailbox_zone(
    zone: Any, first: str, last: str, start: str, end: str
) -> None:
    """An all-day event runs from local midnight to local midnight of the mailbox's zone,
    whatever instants were stored."""
    item = agenda_item(_all_day(first, last), zone, str(zone))
    assert (item["start"], item["end"]) == (start, end)
    assert (item["startDate"], item["endDate"], item["isAllDay"]) == (first, last, True)
    assert item["timeZone"] == str(zone)


def test_timed_events_keep_their_instant_and_report_the_organizer_zone() -> None:
    """A timed event keeps its UTC instants; timeZone is the IANA name of its original zone."""
    row = {
        "event_id": "t",
        "start": datetime(2026, 12, 1, 9, tzinfo=UTC),
        "end": datetime(2026, 12, 1, 10, tzinfo=UTC),
        "original_start_time_zone": "Pacific Standard Time",
        "start_time_zone": "UTC",
        "series_master_id": "",
        "ical_uid": "uid-1",
        "organizer_name": "Ann",
        "organizer_address": "ann@example.com",
    }
    item = agenda_item(row, TOKYO, "Asia/Tokyo")
    assert item["start"] == "2026-12-01T09:00:00Z"
    assert item["timeZone"] == "America/Los_Angeles"
    assert item["startDate"] is None
    assert item["seriesMasterId"] is None
    assert item["iCalUId"] == "uid-1"
    assert item["organizer"] == {"name": "Ann", "address": "ann@example.com"}
    assert (item["showAs"], item["sensitivity"]) == ("unknown", "normal")


@pytest.mark.parametrize(
    ("zone", "wanted"),
    [(TOKYO, ["b"]), (LA, ["a"])],
)
def test_today_picks_the_all_day_event_of_the_local_day(zone: Any, wanted: list[str]) -> None:
    """At the same instant Tokyo is on Dec 2 and Los Angeles on Dec 1: each sees its own day."""
    rows = [
        _all_day("2026-12-01", "2026-12-02", event_id="a"),
        _all_day("2026-12-02", "2026-12-03", event_id="b"),
    ]
    assert [i["id"] for i in agenda(rows, local_day(NOW, zone), zone, str(zone))] == wanted


@pytest.mark.parametrize(
    ("start", "end", "zone", "expected"),
    [
        (None, None, TOKYO, ("2026-12-01T15:00:00+00:00", "2026-12-02T15:00:00+00:00")),
        (None, None, LA, ("2026-12-01T08:00:00+00:00", "2026-12-02T08:00:00+00:00")),
        ("2026-12-05", None, UTC, ("2026-12-05T00:00:00+00:00", "2026-12-06T00:00:00+00:00")),
        (
            None,
            "2026-12-05T00:00Z",
            UTC,
            ("2026-12-04T00:00:00+00:00", "2026-12-05T00:00:00+00:00"),
        ),
        (
            "2026-12-05T09:00",
            "2026-12-05T11:00+01:00",
            LA,
            ("2026-12-05T09:00:00+00:00", "2026-12-05T10:00:00+00:00"),
        ),
    ],
)
def test_ranges(start: str | None, end: str | None, zone: Any, expected: tuple[str, str]) -> None:
    """Defaults to today in the mailbox zone; a plain date is local midnight; one bound: a day."""
    got = parse_range(start, end, now=NOW, zone=zone)
    assert (got.start.isoformat(), got.end.isoformat()) == expected


@pytest.mark.parametrize(
    ("start", "end", "named"),
    [
        ("yesterday", None, "start"),
        (None, "2026-13-01", "end"),
        ("2026-12-02", "2026-12-01", "end"),
        ("2026-12-01T10:00Z", "2026-12-01T10:00Z", "end"),
        ("2026-01-01", "2026-03-05", "end"),  # 63 days
        ("0001-01-01T00:00:00Z", None, "start"),
        ("9999-12-31", None, "start"),
    ],
)
def test_bad_ranges_name_the_parameter(start: str | None, end: str | None, named: str) -> None:
    """A bad bound, an end not after the start or more than 62 days: InputError naming it."""
    with pytest.raises(InputError) as caught:
        parse_range(start, end, now=NOW, zone=UTC)
    assert caught.value.message.startswith(named), caught.value.message


def test_62_days_is_allowed_and_slack_covers_floating_events() -> None:
    """Exactly 62 days passes; the Table query is widened a day each side."""
    got = parse_range("2026-01-01", "2026-03-04", now=NOW, zone=UTC)
    assert got.query == (datetime(2025, 12, 31, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
    assert place({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}, UTC)[0] == (
        datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert Range(got.start, got.end) == got


@pytest.mark.parametrize(("zone", "status"), [(TOKYO, "free"), (LA, "oof")])
def test_now_sees_the_all_day_event_of_the_local_day(zone: Any, status: str) -> None:
    """An all-day oof on Dec 1: at 20:00 UTC it is Dec 1 in Los Angeles (oof), Dec 2 in Tokyo."""
    rows = [_all_day("2026-12-01", "2026-12-02")]
    window = local_day(NOW, zone)
    assert now_of(agenda(rows, window, zone, str(zone)), NOW, window.end)["status"] == status
