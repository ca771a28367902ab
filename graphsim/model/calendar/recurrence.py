"""Recurrence patterns and ranges: validate, normalise, expand to local dates. Pure: no I/O.

Rule: a series expands lazily, only over the dates asked for (a noEnd series never
expands forever), in the series' own time zone, from range.startDate on. Patterns
(resources/recurrencepattern): daily, weekly (daysOfWeek, firstDayOfWeek), absoluteMonthly
(dayOfMonth), relativeMonthly (daysOfWeek + index), absoluteYearly (month + dayOfMonth),
relativeYearly (month + daysOfWeek + index); all with interval. Ranges
(resources/recurrencerange): endDate, noEnd, numbered. A dayOfMonth past a month's end
falls on its last day, as Outlook schedules "day 31 of every month".
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.timezones import parse_date, to_zone

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PATTERN_TYPES = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
RANGE_TYPES = ("endDate", "noEnd", "numbered")
INDEXES = ("first", "second", "third", "fourth", "last")
_NO_DATE = "0001-01-01"  # what Graph answers for an unused endDate/startDate
_MAX_PERIODS = 200_000  # a guard, far beyond any real series inside a sync window


def _bad(message: str) -> GraphRequestError:
    return GraphRequestError(400, "ErrorInvalidRequest", message)


def _int(obj: dict[str, Any], key: str, where: str, lo: int, hi: int, default: int) -> int:
    value = obj.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(f"{where}.{key} must be a whole number from {lo} to {hi}, not {value!r}.")
    return value


def _enum(obj: dict[str, Any], key: str, where: str, members: tuple[str, ...], default: str) -> str:
    value = obj.get(key) or default
    if value not in members:
        raise _bad(f"{where}.{key} must be one of {', '.join(members)}, not {value!r}.")
    return str(value)


def _only(obj: object, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _bad(f"{where} must be an object.")
    for key in obj:
        if key not in allowed and not key.startswith("@odata."):
            raise GraphRequestError(
                400,
                "RequestBodyRead",
                f"The property '{key}' does not exist on {where}; "
                f"allowed: {', '.join(sorted(allowed))}.",
            )
    return obj


def normalize(value: object, default_zone: str) -> dict[str, Any]:
    """Check a patternedRecurrence and return it the way Graph answers it (every field set)."""
    rec = _only(value, {"pattern", "range"}, "recurrence")
    pat = _only(
        rec.get("pattern"),
        {"type", "interval", "month", "dayOfMonth", "daysOfWeek", "firstDayOfWeek", "index"},
        "recurrence.pattern",
    )
    rng = _only(
        rec.get("range"),
        {"type", "startDate", "endDate", "numberOfOccurrences", "recurrenceTimeZone"},
        "recurrence.range",
    )
    ptype = _enum(pat, "type", "recurrence.pattern", PATTERN_TYPES, "")
    days = pat.get("daysOfWeek") or []
    if not isinstance(days, list) or any(d not in DAYS for d in days):
        raise _bad(f"recurrence.pattern.daysOfWeek must be a list of {', '.join(DAYS)}.")
    if ptype in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        raise _bad(f"recurrence.pattern.daysOfWeek is required for a {ptype} pattern.")
    needs_day = ptype in ("absoluteMonthly", "absoluteYearly")
    needs_month = ptype in ("absoluteYearly", "relativeYearly")
    pattern = {
        "type": ptype,
        "interval": _int(pat, "interval", "recurrence.pattern", 1, 999, 1),
        "month": _int(pat, "month", "recurrence.pattern", 1 if needs_month else 0, 12, 0),
        "dayOfMonth": _int(pat, "dayOfMonth", "recurrence.pattern", 1 if needs_day else 0, 31, 0),
        "daysOfWeek": [d for d in DAYS if d in days] if ptype != "daily" else [],
        "firstDayOfWeek": _enum(pat, "firstDayOfWeek", "recurrence.pattern", DAYS, "sunday"),
        "index": _enum(pat, "index", "recurrence.pattern", INDEXES, "first"),
    }
    rtype = _enum(rng, "type", "recurrence.range", RANGE_TYPES, "")
    start = parse_date(rng.get("startDate"), "recurrence.range.startDate")
    end_text = _NO_DATE
    if rtype == "endDate":
        end = parse_date(rng.get("endDate"), "recurrence.range.endDate")
        if end < start:
            raise _bad("recurrence.range.endDate must not be before recurrence.range.startDate.")
        end_text = end.isoformat()
    count = 0
    if rtype == "numbered":
        count = _int(rng, "numberOfOccurrences", "recurrence.range", 1, 999, 0)
    zone = rng.get("recurrenceTimeZone") or default_zone
    to_zone(zone)
    return {
        "pattern": pattern,
        "range": {
            "type": rtype,
            "startDate": start.isoformat(),
            "endDate": end_text,
            "recurrenceTimeZone": zone,
            "numberOfOccurrences": count,
        },
    }


@dataclass(frozen=True, slots=True)
class Rule:
    """A normalised recurrence, ready to expand."""

    ptype: str
    interval: int
    month: int
    day_of_month: int
    weekdays: tuple[int, ...]
    first_day: int
    index: int
    start: date
    end: date | None
    count: int | None

    @classmethod
    def from_graph(cls, rec: dict[str, Any]) -> Rule:
        p, r = rec["pattern"], rec["range"]
        return cls(
            ptype=p["type"],
            interval=p["interval"],
            month=p["month"],
            day_of_month=p["dayOfMonth"],
            weekdays=tuple(DAYS.index(d) for d in p["daysOfWeek"]),
            first_day=DAYS.index(p["firstDayOfWeek"]),
            index=INDEXES.index(p["index"]),
            start=date.fromisoformat(r["startDate"]),
            end=date.fromisoformat(r["endDate"]) if r["type"] == "endDate" else None,
            count=r["numberOfOccurrences"] if r["type"] == "numbered" else None,
        )

    def dates(self, lo: date, hi: date) -> Iterator[date]:
        """Occurrence dates in [lo, hi], ascending, honouring the range."""
        seen = 0
        first = 0 if self.count is not None else max(0, self._period_of(lo) - 1)
        for period in range(first, first + _MAX_PERIODS):
            for day in self._period_dates(period):
                if day < self.start:
                    continue
                if self.end is not None and day > self.end:
                    return
                seen += 1
                if self.count is not None and seen > self.count:
                    return
                if day > hi:
                    return
                if day >= lo:
                    yield day

    def _period_of(self, day: date) -> int:
        """Index of the period (day, week, month, year group) that holds `day`."""
        if self.ptype == "daily":
            return (day - self.start).days // self.interval
        if self.ptype == "weekly":
            return ((day - self._week0()).days // 7) // self.interval
        if self.ptype in ("absoluteMonthly", "relativeMonthly"):
            months = (day.year - self.start.year) * 12 + day.month - self.start.month
            return months // self.interval
        return (day.year - self.start.year) // self.interval

    def _week0(self) -> date:
        return self.start - timedelta(days=(self.start.weekday() - self.first_day) % 7)

    def _period_dates(self, period: int) -> list[date]:
        step = period * self.interval
        if self.ptype == "daily":
            return [self.start + timedelta(days=step)]
        if self.ptype == "weekly":
            week = self._week0() + timedelta(days=7 * step)
            offsets = sorted((d - self.first_day) % 7 for d in self.weekdays)
            return [week + timedelta(days=o) for o in offsets]
        if self.ptype in ("absoluteMonthly", "relativeMonthly"):
            months = self.start.year * 12 + self.start.month - 1 + step
            year, month = divmod(months, 12)
            return [self._in_month(year, month + 1)]
        return [self._in_month(self.start.year + step, self.month)]

    def _in_month(self, year: int, month: int) -> date:
        last = calendar.monthrange(year, month)[1]
        if self.ptype in ("absoluteMonthly", "absoluteYearly"):
            return date(year, month, min(self.day_of_month, last))
        matching = [
            date(year, month, d)
            for d in range(1, last + 1)
            if date(year, month, d).weekday() in self.weekdays
        ]
        return matching[-1] if self.index == 4 else matching[self.index]
