"""Recurrence expansion: every pattern and range type, DST, all-day series, exceptions,
cancellations and pattern changes, through the CalendarStore's calendarView."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.recurrence import Rule, normalize
from graphsim.model.calendar.store import CalendarStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def _series(
    pattern: dict[str, Any],
    rng: dict[str, Any],
    *,
    start: str = "2026-01-05T09:00:00",
    end: str = "2026-01-05T10:00:00",
    zone: str = "UTC",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "subject": "series",
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        "recurrence": {"pattern": pattern, "range": rng},
        **extra,
    }


def _starts(store: CalendarStore, lo: datetime, hi: datetime) -> list[str]:
    return [i["start"]["dateTime"][:16] for i in store.instances(lo, hi)]


NO_END = {"type": "noEnd", "startDate": "2026-01-05"}

PATTERN_CASES = [
    pytest.param(
        {"type": "daily", "interval": 2},
        NO_END,
        ["2026-01-05", "2026-01-07", "2026-01-09", "2026-01-11"],
        id="daily-interval-2",
    ),
    pytest.param(
        {"type": "weekly", "daysOfWeek": ["monday", "thursday"]},
        NO_END,
        ["2026-01-05", "2026-01-08", "2026-01-12"],
        id="weekly-two-days",
    ),
    pytest.param(
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["sunday", "tuesday"],
            "firstDayOfWeek": "monday",
        },
        NO_END,
        # Week of Mon 5 Jan: Tue 6, Sun 11; skip week of 12 Jan; week of 19 Jan: Tue 20.
        ["2026-01-06", "2026-01-11", "2026-01-20"],
        id="weekly-interval-2-first-day-monday",
    ),
    pytest.param(
        {"type": "absoluteMonthly", "dayOfMonth": 31},
        NO_END,
        ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"],
        id="absolute-monthly-31st",
    ),
    pytest.param(
        {"type": "relativeMonthly", "daysOfWeek": ["friday"], "index": "last"},
        NO_END,
        ["2026-01-30", "2026-02-27", "2026-03-27"],
        id="relative-monthly-last-friday",
    ),
    pytest.param(
        {"type": "relativeMonthly", "daysOfWeek": ["tuesday"], "index": "second", "interval": 2},
        NO_END,
        ["2026-01-13", "2026-03-10", "2026-05-12"],
        id="relative-monthly-every-2nd",
    ),
    pytest.param(
        {"type": "absoluteYearly", "month": 2, "dayOfMonth": 29},
        NO_END,
        ["2026-02-28", "2027-02-28", "2028-02-29"],
        id="absolute-yearly-leap-day",
    ),
    pytest.param(
        {"type": "relativeYearly", "month": 11, "daysOfWeek": ["thursday"], "index": "fourth"},
        NO_END,
        ["2026-11-26", "2027-11-25"],
        id="relative-yearly-thanksgiving",
    ),
    pytest.param(
        {"type": "daily"},
        {"type": "endDate", "startDate": "2026-01-05", "endDate": "2026-01-07"},
        ["2026-01-05", "2026-01-06", "2026-01-07"],
        id="range-end-date-inclusive",
    ),
    pytest.param(
        {"type": "weekly", "daysOfWeek": ["monday", "friday"]},
        {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 3},
        ["2026-01-05", "2026-01-09", "2026-01-12"],
        id="range-numbered",
    ),
]


@pytest.mark.parametrize(("pattern", "rng", "expected"), PATTERN_CASES)
def test_pattern_and_range_types_expand_to_the_documented_dates(
    pattern: dict[str, Any], rng: dict[str, Any], expected: list[str]
) -> None:
    """Each pattern type and range type yields exactly the dates Outlook would schedule."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(_series(pattern, rng), NOW)
    got = [s[:10] for s in _starts(store, _utc(2026, 1, 1), _utc(2028, 12, 31))]
    assert got[: len(expected)] == expected
    assert all(s.endswith("09:00") for s in _starts(store, _utc(2026, 1, 1), _utc(2026, 6, 1)))


def test_numbered_range_counts_cancelled_occurrences() -> None:
    """A cancelled occurrence still uses one of numberOfOccurrences (it is not replaced)."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(
        _series(
            {"type": "daily"},
            {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 3},
        ),
        NOW,
    )
    first = store.instances(_utc(2026, 1, 1), _utc(2026, 2, 1))[0]
    store.delete(first["id"], NOW)
    assert [s[:10] for s in _starts(store, _utc(2026, 1, 1), _utc(2026, 2, 1))] == [
        "2026-01-06",
        "2026-01-07",
    ]


def test_no_end_series_expands_only_over_the_window() -> None:
    """A noEnd series far in the past still answers a far-future window quickly and exactly."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(_series({"type": "daily"}, NO_END), NOW)
    got = _starts(store, _utc(2400, 3, 1), _utc(2400, 3, 3))
    assert got == ["2400-03-01T09:00", "2400-03-02T09:00"]


def test_weekly_berlin_meeting_stays_at_nine_local_across_dst() -> None:
    """A 09:00 Europe/Berlin weekly meeting is 08:00Z in winter and 07:00Z after 29 March."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(
        _series(
            {"type": "weekly", "daysOfWeek": ["monday"]},
            {"type": "noEnd", "startDate": "2026-03-16"},
            start="2026-03-16T09:00:00",
            end="2026-03-16T10:00:00",
            zone="W. Europe Standard Time",
        ),
        NOW,
    )
    got = _starts(store, _utc(2026, 3, 16), _utc(2026, 4, 7))
    assert got == ["2026-03-16T08:00", "2026-03-23T08:00", "2026-03-30T07:00", "2026-04-06T07:00"]


def test_all_day_series_spans_whole_local_days_across_dst() -> None:
    """An all-day daily series covers each local day, 23 hours long on the DST day."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(
        _series(
            {"type": "daily"},
            {"type": "numbered", "startDate": "2026-03-28", "numberOfOccurrences": 3},
            start="2026-03-28T00:00:00",
            end="2026-03-29T00:00:00",
            zone="Europe/Berlin",
            isAllDay=True,
        ),
        NOW,
    )
    records = store.instance_records(_utc(2026, 3, 1), _utc(2026, 4, 30))
    assert [(r.end - r.start).total_seconds() / 3600 for r in records] == [24, 23, 24]
    docs = store.instances(_utc(2026, 3, 1), _utc(2026, 4, 30))
    assert [d["start"]["dateTime"] for d in docs] == [
        "2026-03-28T00:00:00.0000000",
        "2026-03-29T00:00:00.0000000",
        "2026-03-30T00:00:00.0000000",
    ]
    assert all(d["isAllDay"] and d["type"] == "occurrence" for d in docs)


def test_updating_an_occurrence_makes_an_exception_with_the_same_id() -> None:
    """PATCH on an occurrence turns it into type exception, same id, moved time honoured."""
    store = CalendarStore("u@contoso.com", seed=1)
    master = store.create(_series({"type": "daily"}, NO_END), NOW)
    occ = store.instances(_utc(2026, 1, 6), _utc(2026, 1, 7))[0]
    changed = store.update(
        occ["id"],
        {
            "subject": "moved",
            "start": {"dateTime": "2026-01-06T15:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-01-06T16:00:00", "timeZone": "UTC"},
        },
        NOW,
    )
    assert (changed["id"], changed["type"], changed["seriesMasterId"]) == (
        occ["id"],
        "exception",
        master["id"],
    )
    assert changed["originalStart"] == "2026-01-06T09:00:00Z"
    day = store.instances(_utc(2026, 1, 6), _utc(2026, 1, 7))
    assert [(d["id"], d["subject"], d["start"]["dateTime"][11:16]) for d in day] == [
        (occ["id"], "moved", "15:00")
    ]
    assert store.get(occ["id"])["type"] == "exception"


def test_deleting_an_occurrence_cancels_only_that_one() -> None:
    """A deleted occurrence disappears from calendarView and is 404; its neighbours stay."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(_series({"type": "daily"}, NO_END), NOW)
    before = store.instances(_utc(2026, 1, 5), _utc(2026, 1, 8))
    store.delete(before[1]["id"], NOW)
    after = store.instances(_utc(2026, 1, 5), _utc(2026, 1, 8))
    assert [d["id"] for d in after] == [before[0]["id"], before[2]["id"]]
    with pytest.raises(GraphRequestError) as err:
        store.get(before[1]["id"])
    assert err.value.status == 404


def test_deleting_an_exception_removes_it_for_good() -> None:
    """An exception deleted by its id is gone from calendarView, not reborn as an occurrence."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(_series({"type": "daily"}, NO_END), NOW)
    occ = store.instances(_utc(2026, 1, 6), _utc(2026, 1, 7))[0]
    store.update(occ["id"], {"subject": "special"}, NOW)
    store.delete(occ["id"], NOW)
    assert store.instances(_utc(2026, 1, 6), _utc(2026, 1, 7)) == []


def test_pattern_change_drops_exceptions_off_the_new_pattern() -> None:
    """Daily -> Mondays only: a Tuesday exception disappears, a Monday one stays."""
    store = CalendarStore("u@contoso.com", seed=1)
    master = store.create(_series({"type": "daily"}, NO_END), NOW)
    mon, tue = store.instances(_utc(2026, 1, 5), _utc(2026, 1, 7))
    store.update(mon["id"], {"subject": "monday special"}, NOW)
    store.update(tue["id"], {"subject": "tuesday special"}, NOW)
    store.update(
        master["id"],
        {"recurrence": {"pattern": {"type": "weekly", "daysOfWeek": ["monday"]}, "range": NO_END}},
        NOW,
    )
    got = [
        (d["start"]["dateTime"][:10], d["subject"])
        for d in store.instances(_utc(2026, 1, 5), _utc(2026, 1, 20))
    ]
    assert got == [
        ("2026-01-05", "monday special"),
        ("2026-01-12", "series"),
        ("2026-01-19", "series"),
    ]
    with pytest.raises(GraphRequestError):
        store.get(tue["id"])


def test_removing_recurrence_turns_a_master_into_a_single() -> None:
    """PATCH recurrence null: the master becomes a singleInstance and occurrences go."""
    store = CalendarStore("u@contoso.com", seed=1)
    master = store.create(_series({"type": "daily"}, NO_END), NOW)
    single = store.update(master["id"], {"recurrence": None}, NOW)
    assert (single["type"], single["recurrence"]) == ("singleInstance", None)
    assert len(store.instances(_utc(2026, 1, 1), _utc(2026, 2, 1))) == 1


def test_master_update_changes_every_occurrence_change_key() -> None:
    """Changing the master's subject gives all its occurrences a new changeKey and subject."""
    store = CalendarStore("u@contoso.com", seed=1)
    master = store.create(_series({"type": "daily"}, NO_END), NOW)
    before = store.snapshot(_utc(2026, 1, 5), _utc(2026, 1, 8))
    store.update(master["id"], {"subject": "renamed"}, NOW)
    after = store.snapshot(_utc(2026, 1, 5), _utc(2026, 1, 8))
    assert before.keys() == after.keys()
    assert all(before[k] != after[k] for k in before)
    assert {d["subject"] for d in store.instances(_utc(2026, 1, 5), _utc(2026, 1, 8))} == {
        "renamed"
    }


def test_list_events_has_masters_and_calendar_view_has_no_masters() -> None:
    """/events lists the series master; calendarView lists occurrences only."""
    store = CalendarStore("u@contoso.com", seed=1)
    master = store.create(_series({"type": "daily"}, NO_END), NOW)
    assert [e["type"] for e in store.list_events()] == ["seriesMaster"]
    assert master["recurrence"]["pattern"]["type"] == "daily"
    view = store.instances(_utc(2026, 1, 5), _utc(2026, 1, 7))
    assert {d["type"] for d in view} == {"occurrence"}
    assert {d["seriesMasterId"] for d in view} == {master["id"]}
    assert len({d["iCalUId"] for d in view}) == 2


BAD_RECURRENCES = [
    pytest.param(
        {"pattern": {"type": "weekly"}, "range": NO_END}, "daysOfWeek", id="weekly-without-days"
    ),
    pytest.param(
        {"pattern": {"type": "absoluteMonthly"}, "range": NO_END},
        "dayOfMonth",
        id="monthly-without-day",
    ),
    pytest.param(
        {"pattern": {"type": "hourly"}, "range": NO_END}, "pattern.type", id="unknown-pattern"
    ),
    pytest.param(
        {"pattern": {"type": "daily", "interval": 0}, "range": NO_END},
        "interval",
        id="zero-interval",
    ),
    pytest.param(
        {"pattern": {"type": "daily"}, "range": {"type": "endDate", "startDate": "2026-01-05"}},
        "endDate",
        id="end-date-missing",
    ),
    pytest.param(
        {"pattern": {"type": "daily"}, "range": {"type": "numbered", "startDate": "2026-01-05"}},
        "numberOfOccurrences",
        id="numbered-no-count",
    ),
    pytest.param(
        {"pattern": {"type": "daily"}, "range": {"type": "noEnd"}}, "startDate", id="no-start-date"
    ),
    pytest.param(
        {"pattern": {"type": "daily", "every": 2}, "range": NO_END}, "every", id="unknown-property"
    ),
]


@pytest.mark.parametrize(("recurrence", "named"), BAD_RECURRENCES)
def test_bad_recurrences_are_400_naming_the_field(recurrence: dict[str, Any], named: str) -> None:
    """An invalid recurrence is a 400 whose message names the offending field."""
    with pytest.raises(GraphRequestError) as err:
        normalize(recurrence, "UTC")
    assert err.value.status == 400
    assert named in err.value.message


def test_rule_jumps_straight_to_a_late_window() -> None:
    """Rule.dates over a window 100 years out yields the right dates without a long walk."""
    rule = Rule.from_graph(
        normalize({"pattern": {"type": "daily", "interval": 3}, "range": NO_END}, "UTC")
    )
    got = list(rule.dates(date(2126, 1, 1), date(2126, 1, 10)))
    assert got
    assert all((d - date(2026, 1, 5)).days % 3 == 0 for d in got)
    assert got == [d for d in got if date(2126, 1, 1) <= d <= date(2126, 1, 10)]
