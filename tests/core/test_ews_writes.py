"""core.ews_writes: a planned Graph body in EWS's terms, and the invitation and cancel choices."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from shared.core.ews_writes import (
    SEND_TO_ALL,
    SEND_TO_NONE,
    EwsRecurrence,
    plan_cancel,
    plan_ews_write,
    plan_invitations,
)
from shared.core.writes import ORIGIN_PROPERTY
from shared.errors import InputError


def test_a_timed_event_keeps_its_zone_and_every_field() -> None:
    """Start and end are instants in their zone (Windows names as IANA), showAs is the
    LegacyFreeBusyStatus, the origin marker its own field."""
    write = plan_ews_write(
        {
            "subject": "Review",
            "body": {"contentType": "html", "content": "<b>x</b>"},
            "start": {"dateTime": "2026-12-02T09:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2026-12-02T10:00:00", "timeZone": "Europe/Berlin"},
            "showAs": "workingElsewhere",
            "sensitivity": "private",
            "importance": "high",
            "isReminderOn": True,
            "reminderMinutesBeforeStart": 30,
            "location": {"displayName": "Room 1"},
            "singleValueExtendedProperties": [{"id": ORIGIN_PROPERTY, "value": "calsync;w"}],
        }
    )
    v = write.values
    assert write.zone == "Europe/Berlin"
    assert v["start"].isoformat() == "2026-12-02T09:00:00+01:00"
    assert (v["legacy_free_busy_status"], v["sensitivity"], v["importance"]) == (
        "WorkingElsewhere",
        "Private",
        "High",
    )
    assert (v["body"], v["location"], v["origin"]) == (("<b>x</b>", True), "Room 1", "calsync;w")
    assert (v["reminder_is_set"], v["reminder_minutes_before_start"]) == (True, 30)


def test_an_update_sets_only_what_it_names() -> None:
    """An update's fields are exactly the body's (nothing defaulted)."""
    assert plan_ews_write({"subject": "Renamed"}).fields == ("subject",)


def test_all_day_events_are_their_local_dates() -> None:
    """An all-day event's start and end are dates, not instants."""
    v = plan_ews_write(
        {
            "isAllDay": True,
            "start": {"dateTime": "2026-12-02T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-04T00:00:00", "timeZone": "UTC"},
        }
    ).values
    assert (v["start"], v["end"]) == (date(2026, 12, 2), date(2026, 12, 4))
    assert not isinstance(v["start"], datetime)


@pytest.mark.parametrize(
    ("recurrence", "expected"),
    [
        (
            {
                "pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "friday"]},
                "range": {"type": "numbered", "startDate": "2026-12-07", "numberOfOccurrences": 4},
            },
            EwsRecurrence("weekly", 2, date(2026, 12, 7), (0, 4), 4, None),
        ),
        (
            {
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "endDate", "startDate": "2026-12-07", "endDate": "2026-12-09"},
            },
            EwsRecurrence("daily", 1, date(2026, 12, 7), (), None, date(2026, 12, 9)),
        ),
        (
            {
                "pattern": {"type": "daily", "interval": 3},
                "range": {"type": "noEnd", "startDate": "2026-12-07"},
            },
            EwsRecurrence("daily", 3, date(2026, 12, 7)),
        ),
        (None, None),
    ],
)
def test_recurrences(recurrence: object, expected: EwsRecurrence | None) -> None:
    """Daily and weekly patterns with each kind of range; null makes the event single."""
    assert plan_ews_write({"recurrence": recurrence}).values["recurrence"] == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            {"type": "absoluteMonthly", "interval": 2, "dayOfMonth": 31},
            EwsRecurrence("absoluteMonthly", 2, date(2026, 12, 3), day_of_month=31),
        ),
        (
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
            EwsRecurrence("relativeMonthly", 1, date(2026, 12, 3), (4,), week_index="Last"),
        ),
        (
            {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 3, "month": 12},
            EwsRecurrence("absoluteYearly", 1, date(2026, 12, 3), day_of_month=3, month=12),
        ),
        (
            {"type": "relativeYearly", "daysOfWeek": ["monday"], "index": "first", "month": 1},
            EwsRecurrence(
                "relativeYearly", 1, date(2026, 12, 3), (0,), week_index="First", month=1
            ),
        ),
    ],
)
def test_monthly_and_yearly_patterns(pattern: dict[str, object], expected: EwsRecurrence) -> None:
    """Absolute and relative monthly and yearly patterns keep their day, index and month."""
    body = {
        "recurrence": {"pattern": pattern, "range": {"type": "noEnd", "startDate": "2026-12-03"}}
    }
    assert plan_ews_write(body).values["recurrence"] == expected


@pytest.mark.parametrize(
    ("pattern", "field"),
    [
        ({"type": "absoluteMonthly", "interval": 1}, "dayOfMonth"),
        ({"type": "relativeMonthly", "daysOfWeek": ["monday", "friday"]}, "daysOfWeek"),
        ({"type": "relativeMonthly", "daysOfWeek": ["monday"], "index": "fifth"}, "index"),
        ({"type": "absoluteYearly", "dayOfMonth": 3}, "month"),
        ({"type": "absoluteYearly", "interval": 2, "dayOfMonth": 3, "month": 1}, "interval"),
    ],
)
def test_patterns_exchange_cannot_take_are_refused_naming_the_field(
    pattern: dict[str, object], field: str
) -> None:
    """A missing day or month, two days for a relative pattern, a yearly interval: a 400 that
    names the field."""
    body = {
        "recurrence": {"pattern": pattern, "range": {"type": "noEnd", "startDate": "2026-12-03"}}
    }
    with pytest.raises(InputError, match=rf"^event\.recurrence\.pattern\.{field}"):
        plan_ews_write(body)


def test_an_unknown_zone_is_refused_naming_the_field() -> None:
    """A zone Exchange does not know is a 400 naming start.timeZone."""
    with pytest.raises(InputError, match=r"^event\.start\.timeZone"):
        plan_ews_write({"start": {"dateTime": "2026-12-02T09:00:00", "timeZone": "Mars/Base"}})


@pytest.mark.parametrize(
    ("body", "is_meeting", "send"),
    [
        ({"subject": "x"}, False, SEND_TO_NONE),
        ({"attendees": []}, False, SEND_TO_NONE),
        (
            {"attendees": [{"emailAddress": {"address": "bob@x.example"}, "type": "required"}]},
            False,
            SEND_TO_ALL,
        ),
        ({"subject": "x"}, True, SEND_TO_ALL),
    ],
)
def test_invitations_only_with_attendees(
    body: dict[str, object], is_meeting: bool, send: str
) -> None:
    """Nobody is told anything unless the event has attendees (given now, or already)."""
    assert plan_invitations(plan_ews_write(body), is_meeting) == send


def test_cancel_is_for_meetings_and_delete_for_appointments() -> None:
    """A meeting is cancelled (its attendees told); an appointment is deleted."""
    assert (plan_cancel(True), plan_cancel(False)) == ("cancel", "delete")
