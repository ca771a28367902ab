"""POST /calendar/getSchedule: free/busy of up to 20 mailboxes. Pure: no I/O.

Rule (https://learn.microsoft.com/graph/api/calendar-getschedule and
https://learn.microsoft.com/graph/api/resources/scheduleinformation): 1 to 20 schedules, a
period of at most 62 days (longer is 400 ErrorTimeIntervalTooBig, Graph's code), an
availabilityViewInterval of 5 to 1440 minutes (default 30). availabilityView has one digit per
interval, the busiest item overlapping it: 0 free, 1 tentative, 2 busy, 3 out of office, 4 working
elsewhere. The scheduleInformation page says working elsewhere "is set to 0 instead of 4 for
backward compatibility", but the service does send 4, so the simulator sends 4 (the harsher
reading: a client that only knows 0-3 meets the digit it must handle). Busiest means out of office
over busy over tentative over working elsewhere over free, not the larger digit. A schedule
this tenant does not know is an entry with an `error`, not a failure. Times come back in the
Prefer: outlook.timezone zone, UTC by default.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.model import Instance
from graphsim.model.calendar.store import CalendarStore
from graphsim.model.calendar.timezones import dtz_to_utc, format_local, to_zone

MAX_SCHEDULES = 20
MAX_DAYS = 62
DEFAULT_INTERVAL = 30
# workingElsewhere is 4: see the module docstring. _RANK orders the digits by busyness.
_DIGITS = {"free": 0, "workingElsewhere": 4, "unknown": 0, "tentative": 1, "busy": 2, "oof": 3}
_RANK = {0: 0, 4: 1, 1: 2, 2: 3, 3: 4}
_WORKING_HOURS = {
    "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
    "startTime": "08:00:00.0000000",
    "endTime": "17:00:00.0000000",
    "timeZone": {"name": "UTC"},
}


def _bad(code: str, message: str) -> GraphRequestError:
    return GraphRequestError(400, code, message)


def get_schedule(
    stores: dict[str, CalendarStore], body: dict[str, Any], *, time_zone: str | None = None
) -> dict[str, Any]:
    """The getSchedule answer: {"value": [scheduleInformation, ...]} in request order."""
    if not isinstance(body, dict):
        raise _bad("RequestBodyRead", "The request body must be a JSON object.")
    extra = sorted(set(body) - {"schedules", "startTime", "endTime", "availabilityViewInterval"})
    if extra:
        raise _bad("RequestBodyRead", f"The parameter '{extra[0]}' is not known by getSchedule.")
    schedules = body.get("schedules")
    if not isinstance(schedules, list) or not all(isinstance(s, str) and s for s in schedules):
        raise _bad("ErrorInvalidParameter", "schedules must be a list of SMTP addresses.")
    if not 1 <= len(schedules) <= MAX_SCHEDULES:
        raise _bad(
            "ErrorMailboxDataArrayTooBig" if schedules else "ErrorInvalidParameter",
            f"schedules must name 1 to {MAX_SCHEDULES} addresses; got {len(schedules)}. "
            "Split the request.",
        )
    if "startTime" not in body or "endTime" not in body:
        raise _bad("ErrorInvalidParameter", "startTime and endTime are required.")
    start, _ = dtz_to_utc(body["startTime"], "startTime")
    end, _ = dtz_to_utc(body["endTime"], "endTime")
    if end <= start:
        raise _bad("ErrorInvalidParameter", "endTime must be after startTime.")
    days = math.ceil((end - start) / timedelta(days=1))
    if days > MAX_DAYS:
        raise _bad(
            "ErrorTimeIntervalTooBig",
            "The requested time duration specified for FreeBusyViewOptions.TimeWindow is too "
            f"long. The allowed limit = {MAX_DAYS} days; the actual limit = {days} days.",
        )
    interval = body.get("availabilityViewInterval", DEFAULT_INTERVAL)
    if interval is None:
        interval = DEFAULT_INTERVAL
    if isinstance(interval, bool) or not isinstance(interval, int) or not 5 <= interval <= 1440:
        raise _bad(
            "ErrorInvalidParameter",
            f"availabilityViewInterval must be a whole number of minutes from 5 to 1440, "
            f"not {interval!r}.",
        )
    name = time_zone or "UTC"
    zone = to_zone(name)
    step = timedelta(minutes=interval)
    slots = math.ceil((end - start) / step)
    out = []
    for address in schedules:
        store = stores.get(address.lower())
        if store is None:
            out.append(
                {
                    "scheduleId": address,
                    "availabilityView": "",
                    "error": {
                        "message": f"Unable to resolve the mailbox '{address}'.",
                        "responseCode": "ErrorMailRecipientNotFound",
                    },
                }
            )
            continue
        records = store.instance_records(start, end)
        view = [0] * slots
        items = []
        for rec in records:
            props = rec.item.props
            digit = _DIGITS.get(props["showAs"], 0)
            first = max(0, int((rec.start - start) / step))
            last = min(slots, math.ceil((rec.end - start) / step))
            for i in range(first, max(last, first + 1) if rec.end == rec.start else last):
                view[i] = max(view[i], digit, key=_RANK.__getitem__)
            items.append(_item(rec, zone, name))
        out.append(
            {
                "scheduleId": address,
                "availabilityView": "".join(str(d) for d in view),
                "scheduleItems": items,
                "workingHours": dict(_WORKING_HOURS, timeZone={"name": name}),
            }
        )
    return {"value": out}


def _item(rec: Instance, zone: Any, name: str) -> dict[str, Any]:
    props = rec.item.props
    private = props["sensitivity"] in ("private", "confidential")
    item: dict[str, Any] = {
        "isPrivate": private,
        "status": props["showAs"],
        "start": {"dateTime": format_local(rec.start, zone), "timeZone": name},
        "end": {"dateTime": format_local(rec.end, zone), "timeZone": name},
    }
    if not private:  # Graph leaves out what a private item is about
        item["subject"] = props["subject"]
        item["location"] = props["location"].get("displayName", "")
    return item
