"""Pure: a write's Graph body (core.writes.plan_graph_body) in EWS's terms, and the EWS
choices a write makes.

Rules:
- The same write options and origin marker as Graph's: the body arrives already planned, and
  becomes the CalendarItem fields EWS takes (`EwsWrite`, plain values the adapter hands
  exchangelib): a start or end in its own zone (IANA or Windows name), an all-day event as
  the dates of its local midnights, showAs as LegacyFreeBusyStatus, the origin marker as the
  extended property of the same GUID namespace and name.
- Recurrence: every Graph pattern (daily, weekly, absolute and relative monthly and yearly)
  with a numbered, end-date or no-end range; a relative pattern names one day (EWS's
  RelativeMonthly/RelativeYearlyRecurrence take one), a field Graph requires for the pattern
  and left out is a 400 naming it, before any EWS call.
- Invitations (SendMeetingInvitations / ...OrCancellations): SendToNone unless the event has
  attendees (the caller sent them now, or the meeting already has them): then
  SendToAllAndSaveCopy, as Graph invites and updates the attendees of a meeting.
- Cancel: a meeting (it has attendees) is cancelled with CancelCalendarItem, the comment as
  the cancellation's body, which also removes it from the organizer's calendar; an
  appointment without attendees has nobody to tell and is deleted (DeleteItem, SendToNone),
  since Exchange refuses CancelCalendarItem on it.
- Conflicts: an update sends the mirror's (or the caller's) ChangeKey with
  ConflictResolution NeverOverwrite; without one (a series master is not mirrored), the
  item's current ChangeKey, read just before, as Graph's update without If-Match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from shared.core.zones import iana_zone_name, resolve_zone
from shared.errors import InputError

SEND_TO_NONE = "SendToNone"
SEND_TO_ALL = "SendToAllAndSaveCopy"
_SHOW_AS = {
    "free": "Free",
    "tentative": "Tentative",
    "busy": "Busy",
    "oof": "OOF",
    "workingElsewhere": "WorkingElsewhere",
    "unknown": "NoData",
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class EwsRecurrence:
    """A pattern (Graph's type; days as 0 = Monday) from `start`, for `count` occurrences,
    until `end` (inclusive) or without end; the monthly and yearly ones on `day_of_month`, or
    on the `week_index`-th (First ... Last) `weekdays[0]`, in `month` (1-12) for yearly."""

    pattern: str  # daily | weekly | absoluteMonthly | relativeMonthly | absolute/relativeYearly
    interval: int
    start: date
    weekdays: tuple[int, ...] = ()
    count: int | None = None
    end: date | None = None
    day_of_month: int = 0
    week_index: str = ""  # First | Second | Third | Fourth | Last
    month: int = 0


@dataclass(frozen=True)
class EwsWrite:
    """The CalendarItem fields a create sets, or an update changes (only those in `fields`)."""

    values: Mapping[str, Any] = field(default_factory=dict)
    zone: str = ""  # the IANA name of the start's zone, when start or end is set
    end_zone: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.values)


def _moment(value: Any, path: str, *, all_day: bool) -> tuple[datetime | date, str]:
    """(the instant, or for an all-day event its local date; the IANA zone name)."""
    if not isinstance(value, Mapping) or not value.get("dateTime"):
        raise InputError(f"{path}: a dateTimeTimeZone ({{dateTime, timeZone}}) is required")
    zone_name = str(value.get("timeZone") or "UTC")
    iana = iana_zone_name(zone_name)
    zone = resolve_zone(zone_name)
    if zone is None or iana is None:
        raise InputError(f"{path}.timeZone: {zone_name!r} is not a time zone Exchange knows")
    text = str(value["dateTime"])
    try:
        wall = datetime.fromisoformat(text[:19])
    except ValueError:
        raise InputError(f"{path}.dateTime: {text!r} is not a date and time") from None
    if all_day:
        return wall.date(), iana
    return wall.replace(tzinfo=zone), iana


_INDEXES = {"first": "First", "second": "Second", "third": "Third", "fourth": "Fourth"}
_INDEXES["last"] = "Last"
_PATTERNS = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)


def _whole(pattern: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = pattern.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(
            f"event.recurrence.pattern.{name}: a {pattern.get('type')} pattern needs a whole "
            f"number from {low} to {high} (got {value!r})"
        )
    return value


def _recurrence(value: Any) -> EwsRecurrence | None:
    if value is None:
        return None
    pattern, rng = value.get("pattern") or {}, value.get("range") or {}
    kind = str(pattern.get("type") or "")
    if kind not in _PATTERNS:
        raise InputError(f"event.recurrence.pattern.type: {kind!r} is not a Graph pattern")
    days = tuple(_WEEKDAYS.index(str(d).lower()) for d in pattern.get("daysOfWeek") or ())
    if kind == "weekly" and not days:
        raise InputError("event.recurrence.pattern.daysOfWeek: a weekly pattern needs days")
    day_of_month = month = 0
    week_index = ""
    if kind.startswith("absolute"):
        day_of_month = _whole(pattern, "dayOfMonth", 1, 31)
    if kind.startswith("relative"):
        if len(days) != 1:
            raise InputError(
                f"event.recurrence.pattern.daysOfWeek: a {kind} pattern on Exchange Server "
                "names exactly one day"
            )
        index = str(pattern.get("index") or "first").lower()
        if index not in _INDEXES:
            raise InputError(
                "event.recurrence.pattern.index: must be one of first, second, third, fourth, "
                f"last (got {index!r})"
            )
        week_index = _INDEXES[index]
    if kind.endswith("Yearly"):
        month = _whole(pattern, "month", 1, 12)
    start = date.fromisoformat(str(rng.get("startDate")))
    range_type = str(rng.get("type") or "")
    count = int(rng["numberOfOccurrences"]) if range_type == "numbered" else None
    end = date.fromisoformat(str(rng["endDate"])) if range_type == "endDate" else None
    interval = int(pattern.get("interval") or 1)
    if kind.endswith("Yearly") and interval != 1:
        raise InputError(
            "event.recurrence.pattern.interval: a yearly pattern on Exchange Server recurs "
            "every year (EWS's yearly recurrences have no interval); give 1"
        )
    return EwsRecurrence(kind, interval, start, days, count, end, day_of_month, week_index, month)


def plan_ews_write(body: Mapping[str, Any]) -> EwsWrite:
    """The EWS fields of a planned Graph body (create or update); InputError for what EWS
    writes cannot take."""
    values: dict[str, Any] = {}
    zone = end_zone = ""
    all_day = bool(body.get("isAllDay"))
    if "isAllDay" in body:
        values["is_all_day"] = all_day
    if "subject" in body:
        values["subject"] = str(body["subject"] or "")
    if "body" in body:
        part = body["body"] or {}
        values["body"] = (str(part.get("content") or ""), part.get("contentType") == "html")
    for name in ("start", "end"):
        if name in body:
            moment, iana = _moment(body[name], f"event.{name}", all_day=all_day)
            values[name] = moment
            if name == "start":
                zone = iana
            else:
                end_zone = iana
    if "location" in body:
        values["location"] = str((body["location"] or {}).get("displayName") or "")
    if "sensitivity" in body:
        values["sensitivity"] = str(body["sensitivity"]).capitalize()
    if "showAs" in body:
        values["legacy_free_busy_status"] = _SHOW_AS[str(body["showAs"])]
    if "importance" in body:
        values["importance"] = str(body["importance"]).capitalize()
    if "categories" in body:
        values["categories"] = tuple(str(c) for c in body["categories"] or ())
    if "isReminderOn" in body:
        values["reminder_is_set"] = bool(body["isReminderOn"])
    if "reminderMinutesBeforeStart" in body:
        values["reminder_minutes_before_start"] = int(body["reminderMinutesBeforeStart"])
    if "attendees" in body:
        people: list[tuple[str, str, str]] = []
        for a in body["attendees"] or ():
            email = a.get("emailAddress") or {}
            people.append(
                (str(email.get("name") or ""), str(email["address"]), str(a.get("type") or ""))
            )
        values["attendees"] = tuple(people)
    if "recurrence" in body:
        values["recurrence"] = _recurrence(body["recurrence"])
    for prop in body.get("singleValueExtendedProperties") or ():
        values["origin"] = str(prop.get("value") or "")
    return EwsWrite(values, zone, end_zone or zone)


def plan_invitations(write: EwsWrite, is_meeting: bool) -> str:
    """SendMeetingInvitations(OrCancellations): nobody is told unless there are attendees."""
    return SEND_TO_ALL if write.values.get("attendees") or is_meeting else SEND_TO_NONE


def plan_cancel(is_meeting: bool) -> str:
    """How a cancel is done on EWS: `cancel` (CancelCalendarItem) or `delete`."""
    return "cancel" if is_meeting else "delete"
