"""Pure: the read API's view of mirrored events, and the ranges it is asked for.

Rules:
- A range is `start`/`end` query text: a plain date is midnight in the mailbox's zone, a
  date-time with an offset is that instant, one without is UTC (as Graph's calendarView reads
  it). Neither: today in the mailbox's zone. One of them: one day from (or up to) it. `end`
  must be after `start` and the span at most MAX_DAYS (Graph's getSchedule limit); years
  outside Table Storage's 1601-9998 are refused. Every refusal is an InputError naming the
  parameter.
- All-day events float: Graph writes them midnight to midnight in whatever zone was asked,
  so their instants are recomputed from the stored dates (`all_day_start_date`, end exclusive)
  at midnight in the mailbox's zone *now*, not as stored (the zone option may have changed).
  The Table query is widened by QUERY_SLACK so such events are found, then filtered exactly.
- An agenda item is camelCase JSON: `start`/`end` are UTC instants, `timeZone` the event's IANA
  zone (the organizer's original zone; the mailbox's zone for all-day events), and all-day
  events carry `startDate`/`endDate` (end exclusive) as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from shared.core.times import iso_utc
from shared.core.zones import iana_zone_name
from shared.errors import InputError

MAX_DAYS = 62
QUERY_SLACK = timedelta(days=1)  # covers any zone's offset from the stored all-day midnights
MIN_YEAR, MAX_YEAR = 1601, 9998
# The stored properties an agenda item is made of (the query selects only these: no bodies).
COLUMNS = (
    "event_id",
    "subject",
    "start",
    "end",
    "start_time_zone",
    "original_start_time_zone",
    "is_all_day",
    "all_day_start_date",
    "all_day_end_date",
    "show_as",
    "sensitivity",
    "series_master_id",
    "type",
    "ical_uid",
    "location",
    "organizer_name",
    "organizer_address",
    "is_cancelled",
)


@dataclass(frozen=True)
class Range:
    start: datetime
    end: datetime

    @property
    def query(self) -> tuple[datetime, datetime]:
        """The bounds of the Table query: the range widened for floating all-day events."""
        return self.start - QUERY_SLACK, self.end + QUERY_SLACK


def _moment(name: str, text: str, zone: tzinfo) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(0), zone)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        if not MIN_YEAR <= moment.year <= MAX_YEAR:
            raise ValueError("year")
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InputError(
            f"{name}={text!r} is not an ISO 8601 date or date-time between years "
            f"{MIN_YEAR} and {MAX_YEAR} (e.g. 2026-11-21 or 2026-11-21T09:00:00Z)"
        ) from None


def local_day(now: datetime, zone: tzinfo) -> Range:
    """Today in `zone`: local midnight to the next local midnight, as UTC instants."""
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return Range(start.astimezone(UTC), end.astimezone(UTC))


def parse_range(start: str | None, end: str | None, *, now: datetime, zone: tzinfo) -> Range:
    """The range asked for (see the module docstring), or InputError naming the parameter."""
    if not start and not end:
        return local_day(now, zone)
    first = _moment("start", start, zone) if start else None
    last = _moment("end", end, zone) if end else None
    if first is None:
        assert last is not None
        first = last - timedelta(days=1)
    if last is None:
        last = first + timedelta(days=1)
    if last <= first:
        raise InputError(f"end={end!r} must be after start={start!r}")
    if last - first > timedelta(days=MAX_DAYS):
        days = (last - first) / timedelta(days=1)
        raise InputError(f"end: the range is {days:g} days; the limit is {MAX_DAYS} days")
    return Range(first, last)


def place(row: Mapping[str, Any], zone: tzinfo) -> tuple[datetime, datetime]:
    """The UTC instants of a mirrored event; all-day events at midnight in `zone`."""
    if row.get("is_all_day") and row.get("all_day_start_date") and row.get("all_day_end_date"):
        first = date.fromisoformat(str(row["all_day_start_date"]))
        last = date.fromisoformat(str(row["all_day_end_date"]))
        return (
            datetime.combine(first, time(0), zone).astimezone(UTC),
            datetime.combine(last, time(0), zone).astimezone(UTC),
        )
    return _utc(row["start"]), _utc(row["end"])


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise InputError(f"a mirrored event has no usable time: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value)


def agenda_item(row: Mapping[str, Any], zone: tzinfo, zone_name: str) -> dict[str, Any]:
    """One mirrored row as the read API shows it (see the module docstring)."""
    start, end = place(row, zone)
    all_day = bool(row.get("is_all_day"))
    event_zone = zone_name
    if not all_day:
        event_zone = (
            iana_zone_name(_text(row, "original_start_time_zone"))
            or iana_zone_name(_text(row, "start_time_zone"))
            or zone_name
        )
    organizer = None
    if _text(row, "organizer_name") or _text(row, "organizer_address"):
        organizer = {
            "name": _text(row, "organizer_name"),
            "address": _text(row, "organizer_address"),
        }
    item: dict[str, Any] = {
        "id": _text(row, "event_id"),
        "subject": _text(row, "subject"),
        "start": iso_utc(start),
        "end": iso_utc(end),
        "timeZone": event_zone,
        "isAllDay": all_day,
        "startDate": _text(row, "all_day_start_date") if all_day else None,
        "endDate": _text(row, "all_day_end_date") if all_day else None,
        "showAs": _text(row, "show_as") or "unknown",
        "sensitivity": _text(row, "sensitivity") or "normal",
        "type": _text(row, "type") or "singleInstance",
        "seriesMasterId": _text(row, "series_master_id") or None,
        "iCalUId": _text(row, "ical_uid") or None,
        "location": _text(row, "location"),
        "organizer": organizer,
        "isCancelled": bool(row.get("is_cancelled")),
    }
    return item


def agenda(
    rows: Iterable[Mapping[str, Any]], window: Range, zone: tzinfo, zone_name: str
) -> list[dict[str, Any]]:
    """The rows overlapping `window` once placed, as agenda items sorted by start (then end,
    then id, so that the order, and so the ETag, is stable)."""
    items = []
    for row in rows:
        if row.get("type") == "seriesMaster":
            continue  # the series itself: its occurrences and exceptions are the appointments
        start, end = place(row, zone)
        if start < window.end and (end > window.start or (start == end == window.start)):
            items.append(agenda_item(row, zone, zone_name))
    return sorted(items, key=lambda i: (i["start"], i["end"], i["id"]))
