"""Pure: free/busy from agenda items, by Graph's getSchedule rule, and a mailbox's "now".

Rule (https://learn.microsoft.com/graph/api/calendar-getschedule,
https://learn.microsoft.com/graph/api/resources/scheduleinformation): availabilityView has one
digit per interval from `start`, the last interval cut at `end`: 0 free, 1 tentative, 2 busy,
3 out of office, 4 working elsewhere, the *busiest* item overlapping the interval, where busiest
means oof > busy > tentative > workingElsewhere > free (not the larger digit). An item of zero
length marks the interval it starts in. Unknown or absent showAs counts as free; cancelled
events are not on the schedule. The simulator implements the same rule
(graphsim/model/calendar/schedule.py); a test compares the two.

"Now" of a mailbox: its status is the busiest showAs of the events covering `now` (start <=
now < end; free when none), the current appointment is the busiest of those (earliest start on
a tie), the next one is the first starting after `now` and before the end of today.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.core.model import CALENDAR_HANDLE, CALENDAR_SEPARATOR
from shared.core.times import parse_iso
from shared.errors import InputError

DIGITS = {"free": 0, "tentative": 1, "busy": 2, "oof": 3, "workingElsewhere": 4}
RANK = {"free": 0, "workingElsewhere": 1, "tentative": 2, "busy": 3, "oof": 4}
DEFAULT_INTERVAL = 30
MIN_INTERVAL, MAX_INTERVAL = 5, 1440


def status_of(show_as: str) -> str:
    """The free/busy status of a showAs value: Graph's five, anything else free."""
    return show_as if show_as in RANK else "free"


def busiest(statuses: Iterable[str]) -> str:
    """The busiest of these statuses (free for none)."""
    return max((status_of(s) for s in statuses), key=RANK.__getitem__, default="free")


def parse_interval(text: str | None) -> int:
    """`interval` in minutes (default 30), or InputError naming it."""
    if text is None or text == "":
        return DEFAULT_INTERVAL
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise InputError(
            f"interval={text!r} must be a whole number of minutes from {MIN_INTERVAL} "
            f"to {MAX_INTERVAL}"
        )
    return value


def _span(item: Mapping[str, Any]) -> tuple[datetime, datetime]:
    start, end = parse_iso(item["start"]), parse_iso(item["end"])
    if start is None or end is None:
        raise InputError(f"agenda item {item.get('id')!r} has no usable start/end")
    return start, end


def _scheduled(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [i for i in items if not i.get("isCancelled")]


def availability_view(
    items: Iterable[Mapping[str, Any]], start: datetime, end: datetime, interval: int
) -> str:
    """One digit per interval of [start, end): the busiest item overlapping it."""
    step = timedelta(minutes=interval)
    slots = math.ceil((end - start) / step)
    view = ["free"] * slots
    for item in _scheduled(items):
        first_at, last_at = _span(item)
        first = max(0, int((first_at - start) / step))
        last = min(slots, math.ceil((last_at - start) / step))
        if first_at == last_at:
            last = min(slots, first + 1)
        for i in range(first, last):
            view[i] = busiest((view[i], str(item.get("showAs", ""))))
    return "".join(str(DIGITS[s]) for s in view)


def schedule_items(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The items as getSchedule lists them (UTC instants); a private item hides what it is."""
    out = []
    for item in _scheduled(items):
        private = item.get("sensitivity") in ("private", "confidential")
        entry: dict[str, Any] = {
            "id": item["id"],
            "status": status_of(str(item.get("showAs", ""))),
            "start": item["start"],
            "end": item["end"],
            "isAllDay": bool(item.get("isAllDay")),
            "isPrivate": private,
        }
        if not private:
            entry["subject"] = item.get("subject", "")
            entry["location"] = item.get("location", "")
        out.append(entry)
    return out


def now_of(items: Sequence[Mapping[str, Any]], now: datetime, day_end: datetime) -> dict[str, Any]:
    """{"status", "current", "next"} of one mailbox at `now` (see the module docstring)."""
    covering, upcoming = [], []
    for item in _scheduled(items):
        start, end = _span(item)
        if start <= now < end:
            covering.append((start, item))
        elif now < start < day_end:
            upcoming.append((start, item))
    current = None
    if covering:
        covering.sort(key=lambda p: (-RANK[status_of(str(p[1].get("showAs", "")))], p[0]))
        current = covering[0][1]
    upcoming.sort(key=lambda p: (p[0], str(p[1].get("id", ""))))
    return {
        "status": busiest(str(i.get("showAs", "")) for _, i in covering),
        "current": dict(current) if current else None,
        "next": dict(upcoming[0][1]) if upcoming else None,
    }


MAX_NOW_MAILBOXES = 500


def parse_now_request(body: Any) -> list[tuple[str, str]]:
    """(tenantId, user) of each mailbox of a POST /api/now body, or InputError naming the
    parameter: {"mailboxes": [{"tenantId": ..., "user": ...}, ...]}, 1 to MAX_NOW_MAILBOXES.
    A calendar other than the default one is `"user": "<id or UPN>:<handle>"`, or the entry's
    `"calendar": "<handle>"` (then `user` is "user:handle" here)."""
    if not isinstance(body, dict) or not isinstance(body.get("mailboxes"), list):
        raise InputError('mailboxes: send {"mailboxes": [{"tenantId": ..., "user": ...}, ...]}')
    listed = body["mailboxes"]
    if not 1 <= len(listed) <= MAX_NOW_MAILBOXES:
        raise InputError(
            f"mailboxes: {len(listed)} given; send 1 to {MAX_NOW_MAILBOXES} per call "
            "(split the request)"
        )
    out = []
    for i, entry in enumerate(listed):
        tenant = entry.get("tenantId") if isinstance(entry, dict) else None
        user = entry.get("user") if isinstance(entry, dict) else None
        if not isinstance(tenant, str) or not tenant or not isinstance(user, str) or not user:
            raise InputError(f"mailboxes[{i}]: needs tenantId and user, both non-empty strings")
        calendar = entry.get("calendar")  # another calendar: "user:handle", or calendar=handle
        if calendar is not None:
            if not isinstance(calendar, str) or not CALENDAR_HANDLE.match(calendar.lower()):
                raise InputError(f"mailboxes[{i}]: calendar must be a calendar handle")
            user = f"{user}{CALENDAR_SEPARATOR}{calendar.lower()}"
        out.append((tenant, user))
    return out
