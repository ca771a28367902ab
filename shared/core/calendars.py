"""Pure: which calendar of a mailbox a request means, and which of Graph's calendars an
enrolment picks.

Rules:
- A mirrored calendar is a mailbox's default calendar (handle "") or another calendar of it
  (shared with the user, a secondary calendar) named by a handle: 1-40 of `a-z 0-9 -`, starting
  with a letter or digit, lower-cased; "calendar" is the default calendar's name in the feed and
  cannot be a handle. A handle is key-safe: it goes into Table keys, queue messages and routes
  as it is, while the calendar's Graph id (holding '/', '+', '=') stays on the mailbox row.
- A request names a calendar by `user:handle` where it names the user (routes, the `now` list),
  or by the `calendar` query parameter of the mailbox routes; naming it both ways differently
  is an error.
- Enrolment picks a calendar from Graph's `GET users/{id}/calendars` by `calendarId` (exact) or
  `calendarName` (case-insensitive), else by a name whose slug is the handle; none or two
  matches are errors that list what the mailbox has.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from shared.core.model import CALENDAR_HANDLE, CALENDAR_SEPARATOR, DEFAULT_CALENDAR_NAME
from shared.errors import InputError, NotFoundError

ENROL_KEYS = ("calendarId", "calendarName")  # enrolment body keys beside the options


def parse_handle(text: str | None) -> str:
    """A calendar handle from a request ("" = the default calendar); InputError when invalid."""
    handle = (text or "").strip().lower()
    if not handle:
        return ""
    if handle == DEFAULT_CALENDAR_NAME:
        raise InputError(
            "calendar='calendar' names the default calendar: leave the calendar out for it"
        )
    if not CALENDAR_HANDLE.match(handle):
        raise InputError(
            f"calendar={handle[:60]!r} is not a calendar handle: use 1-40 of a-z, 0-9 and '-', "
            "starting with a letter or digit (e.g. calendar=room-display)"
        )
    return handle


def split_ref(user: str, calendar: str | None = None) -> tuple[str, str]:
    """(user, handle) from `user` or `user:handle` and an optional `calendar` parameter."""
    name, sep, inline = user.strip().partition(CALENDAR_SEPARATOR)
    handle = parse_handle(inline) if sep else ""
    given = parse_handle(calendar)
    if given and handle and given != handle:
        raise InputError(
            f"the mailbox is named as {user!r} and calendar={calendar!r}: name the calendar once"
        )
    if sep and not handle:
        raise InputError(f"{user!r}: put a calendar handle after ':' or leave the ':' out")
    return name, handle or given


def slug(name: str) -> str:
    """The handle a calendar name suggests ("Team Projects" -> "team-projects")."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]


def pick_calendar(
    listed: Sequence[Mapping[str, Any]], body: Mapping[str, Any], handle: str
) -> Mapping[str, Any]:
    """The calendar of Graph's list that the enrolment body (or the handle) means."""
    calendar_id, name = body.get("calendarId"), body.get("calendarName")
    for key, value in (("calendarId", calendar_id), ("calendarName", name)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InputError(f"{key} must be a non-empty string (from GET .../calendars)")
    if isinstance(calendar_id, str):
        found = [c for c in listed if c.get("id") == calendar_id]
        what = f"calendarId {calendar_id[:60]!r}"
    elif isinstance(name, str):
        found = [c for c in listed if str(c.get("name", "")).lower() == name.strip().lower()]
        what = f"calendarName {name[:60]!r}"
    else:
        found = [c for c in listed if slug(str(c.get("name", ""))) == handle]
        what = f"a calendar named like {handle!r}"
    names = ", ".join(repr(str(c.get("name", ""))) for c in listed) or "none"
    if not found:
        raise NotFoundError(
            f"the mailbox has no calendar with {what} (its calendars: {names}); give calendarId "
            "or calendarName in the body (GET .../calendars lists them)"
        )
    if len(found) > 1:
        raise InputError(f"{len(found)} calendars match {what}: give its calendarId instead")
    return found[0]
