"""How a create or PATCH body changes a stored item, and the rules the result must meet. Pure.

Rule: properties merge into the item, then the whole event is checked: it ends no earlier
than it starts; an all-day event starts and ends at midnight in its own time zones and
lasts whole days (api/user-post-events: "isAllDay ... start and end time must be set to
midnight"); recurrence belongs to singles and masters only. A refused PATCH leaves the item
as it was. If-Match must carry the current changeKey (api/event-update), else 412.
"""

from __future__ import annotations

from typing import Any

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.bodies import normalize_recurrence
from graphsim.model.calendar.locations import empty_location
from graphsim.model.calendar.model import EXCEPTION, MASTER, SINGLE, Item
from graphsim.model.calendar.timezones import format_local, to_zone


def _bad(message: str) -> GraphRequestError:
    return GraphRequestError(400, "ErrorInvalidRequest", message)


def check_item(item: Item) -> None:
    """Raise 400 ErrorInvalidRequest when the merged event is not one Graph would store."""
    if item.end < item.start:
        raise _bad(
            "The end of an event must not be before its start: end "
            f"{format_local(item.end, to_zone('UTC'))}Z is before start "
            f"{format_local(item.start, to_zone('UTC'))}Z (UTC)."
        )
    if item.is_all_day:
        for name, instant, zone in (
            ("start", item.start, item.start_zone),
            ("end", item.end, item.end_zone),
        ):
            local = instant.astimezone(to_zone(zone))
            if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
                raise _bad(
                    f"An all-day event must start and end at midnight: {name} is "
                    f"{local.strftime('%Y-%m-%dT%H:%M:%S')} in '{zone}'. Send "
                    f"{name}.dateTime as 'YYYY-MM-DDT00:00:00' or set isAllDay to false."
                )
        if item.end <= item.start:
            raise _bad("An all-day event must last at least one whole day: end after start.")
    p = item.props
    if p.get("isOnlineMeeting") and p.get("onlineMeetingProvider") == "unknown":
        # Graph picks the mailbox's default provider when a client asks for an online meeting.
        p["onlineMeetingProvider"] = "teamsForBusiness"


def apply_props(item: Item, props: dict[str, Any]) -> None:
    """Merge normalised properties into an item and check the result as a whole."""
    for key, value in props.items():
        if key in ("start", "end", "startZone", "endZone", "isAllDay", "recurrence"):
            continue
        if key == "extended":  # a PATCH creates or updates the ones it names, keeps the rest
            value = {**item.props.get("extended", {}), **value}
        item.props[key] = value
    item.start = props.get("start", item.start)
    item.end = props.get("end", item.end)
    item.start_zone = props.get("startZone", item.start_zone)
    item.end_zone = props.get("endZone", item.end_zone)
    item.is_all_day = props.get("isAllDay", item.is_all_day)
    if "recurrence" in props:
        if item.kind == EXCEPTION and props["recurrence"] is not None:
            raise GraphRequestError(
                400,
                "ErrorInvalidRequest",
                "recurrence can only be set on a single event or a series master, not on "
                "an occurrence or exception; PATCH the seriesMasterId instead.",
            )
        if item.kind != EXCEPTION:
            item.recurrence = normalize_recurrence(props["recurrence"], item.start_zone)
            item.kind = MASTER if item.recurrence is not None else SINGLE
    item.cache = None
    item.expansion = None
    check_item(item)


# What a PATCH may change on a stored item (restored as a whole when the PATCH is refused).
_PATCHED = ("start", "end", "start_zone", "end_zone", "is_all_day", "recurrence", "kind")


def apply_checked(item: Item, props: dict[str, Any]) -> None:
    """Apply a PATCH, leaving the item untouched when the result is invalid."""
    saved_props = dict(item.props)
    saved = [getattr(item, name) for name in _PATCHED]
    try:
        apply_props(item, props)
    except GraphRequestError:
        item.props = saved_props
        for name, value in zip(_PATCHED, saved, strict=True):
            setattr(item, name, value)
        item.cache = None
        item.expansion = None
        raise


def check_if_match(if_match: str | None, change_key: str) -> None:
    """412 unless If-Match is absent, "*", or the current changeKey (W/"..." or bare)."""
    if if_match is None or if_match.strip() == "*":
        return
    tag = if_match.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    if tag.strip('"') != change_key:
        raise GraphRequestError(
            412,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed "
            "in the request does not match the current change key for the item. Read the event "
            "again and retry with its current @odata.etag.",
        )


def new_event_props(organizer: dict[str, Any]) -> dict[str, Any]:
    """The properties of a new event before the client's body is applied."""
    return {
        "subject": "",
        "body": {"contentType": "html", "content": ""},
        "importance": "normal",
        "sensitivity": "normal",
        "showAs": "busy",
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 15,
        "categories": [],
        "responseRequested": True,
        "allowNewTimeProposals": True,
        "isOnlineMeeting": False,
        "onlineMeetingProvider": "unknown",
        "hideAttendees": False,
        "isDraft": False,
        "organizer": organizer,
        "attendees": [],
        "location": empty_location(),
        "locations": [],
        "transactionId": None,
    }
