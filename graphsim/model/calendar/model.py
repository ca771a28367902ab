"""The stored calendar item and the instances it yields. Pure: no I/O.

Rule: a stored item is a single event, a series master or an exception, held as UTC
instants plus the zone names the client sent; an occurrence is never stored: it is
computed from its master (in the series' recurrence time zone, so a 09:00 Europe/Berlin
meeting stays at 09:00 local across DST) and shares the master's changeKey, so any change
to the master changes every occurrence, as in Exchange. Exceptions and cancelled
occurrences are keyed by their original start (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from graphsim.model.calendar import ids
from graphsim.model.calendar.recurrence import Rule
from graphsim.model.calendar.timezones import local_to_utc, to_zone

SINGLE, MASTER, OCCURRENCE, EXCEPTION = "singleInstance", "seriesMaster", "occurrence", "exception"


@dataclass(slots=True)
class Expansion:
    """What a master needs to place its occurrences (cached until the master changes)."""

    rule: Rule
    zone: tzinfo
    local_start: datetime  # naive wall time of the master's start in `zone`
    duration: timedelta  # wall-clock duration, so all-day days stay whole across DST


@dataclass(slots=True, eq=False)
class Item:
    """A stored single event, series master or exception."""

    id: str
    raw: bytes  # id bytes of the item, or of its master for an exception
    kind: str
    props: dict[str, Any]
    start: datetime
    end: datetime
    start_zone: str
    end_zone: str
    is_all_day: bool
    created: datetime
    modified: datetime
    change_key: str
    ical_uid: str
    recurrence: dict[str, Any] | None = None
    master: Item | None = None
    original_start: datetime | None = None
    exceptions: dict[datetime, Item] = field(default_factory=dict)
    cancelled: set[datetime] = field(default_factory=set)
    cache: dict[str, Any] | None = None  # canonical Graph JSON, cleared on every change
    expansion: Expansion | None = None

    def expand_info(self) -> Expansion:
        if self.expansion is None:
            assert self.recurrence is not None
            zone = to_zone(self.recurrence["range"]["recurrenceTimeZone"])
            local_start = self.start.astimezone(zone).replace(tzinfo=None)
            local_end = self.end.astimezone(zone).replace(tzinfo=None)
            self.expansion = Expansion(
                Rule.from_graph(self.recurrence), zone, local_start, local_end - local_start
            )
        return self.expansion


@dataclass(frozen=True, slots=True)
class Instance:
    """One entry of a calendarView: a single event, an occurrence or an exception."""

    id: str
    change_key: str
    start: datetime
    end: datetime
    kind: str
    item: Item  # the single, the exception, or (for an occurrence) the master
    original_start: datetime | None = None


def overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    """calendarView overlap: an instant event counts when it starts inside [lo, hi)."""
    if end <= start:
        return lo <= start < hi
    return start < hi and end > lo


def occurrences(master: Item, lo: datetime, hi: datetime) -> list[Instance]:
    """Occurrences and exceptions of a series overlapping [lo, hi), bounded to that window."""
    exp = master.expand_info()
    out: list[Instance] = []
    margin = exp.duration + timedelta(days=2)
    first = (lo.astimezone(exp.zone).replace(tzinfo=None) - margin).date()
    last = (hi.astimezone(exp.zone).replace(tzinfo=None) + timedelta(days=1)).date()
    wall = exp.local_start.time()
    for day in exp.rule.dates(first, last):
        local = datetime.combine(day, wall)
        start = local_to_utc(local, exp.zone)
        if start in master.cancelled or start in master.exceptions:
            continue
        end = local_to_utc(local + exp.duration, exp.zone)
        if overlaps(start, end, lo, hi):
            occ_id = ids.occurrence_id(master.raw, start)
            out.append(Instance(occ_id, master.change_key, start, end, OCCURRENCE, master, start))
    for original, exc in master.exceptions.items():
        if overlaps(exc.start, exc.end, lo, hi):
            out.append(
                Instance(exc.id, exc.change_key, exc.start, exc.end, EXCEPTION, exc, original)
            )
    return out


def occurrence_at(master: Item, original_start: datetime) -> Instance | None:
    """The unmodified occurrence that starts at `original_start`, if the pattern has one."""
    if master.recurrence is None:
        return None
    exp = master.expand_info()
    local = original_start.astimezone(exp.zone).replace(tzinfo=None)
    day = local.date()
    for found in exp.rule.dates(day, day):
        wall = datetime.combine(found, exp.local_start.time())
        if local_to_utc(wall, exp.zone) == original_start:
            end = local_to_utc(wall + exp.duration, exp.zone)
            occ_id = ids.occurrence_id(master.raw, original_start)
            return Instance(
                occ_id, master.change_key, original_start, end, OCCURRENCE, master, original_start
            )
    return None


def single_instance(item: Item) -> Instance:
    return Instance(
        item.id, item.change_key, item.start, item.end, item.kind, item, item.original_start
    )


def utc(value: datetime, name: str) -> datetime:
    """Check that a time given by the caller is aware, and bring it to UTC."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime (UTC), got {value!r}")
    return value.astimezone(UTC)
