"""Check POST/PATCH /events bodies the way Graph does and normalise them. Pure: no I/O.

Rule: every property must be one Graph knows on event; writable ones are checked for type
and enum membership and stored in the shape Graph answers with; read-only ones a client
echoes back (id, changeKey, createdDateTime...) are ignored, as Graph ignores them; anything
else is 400 RequestBodyRead with Graph's wording. At most 500 attendees (resources/event).
Times come back as UTC instants plus the zone names sent; cross-field rules (end after
start, all-day at midnight) are checked after merging, in rules.py.
"""

from __future__ import annotations

import html
import re
from typing import Any

from graphsim.errors import GraphRequestError
from graphsim.model.calendar import recurrence
from graphsim.model.calendar.locations import empty_location, parse_location
from graphsim.model.calendar.timezones import dtz_to_utc, to_zone

MAX_ATTENDEES = 500  # resources/event: "The maximum number of attendees ... is 500"
NO_TIME = "0001-01-01T00:00:00Z"  # responseStatus.time before any response, as Graph sends

ENUMS: dict[str, tuple[str, ...]] = {
    "importance": ("low", "normal", "high"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "showAs": ("unknown", "free", "tentative", "busy", "oof", "workingElsewhere"),
    "onlineMeetingProvider": (
        "unknown",
        "skypeForBusiness",
        "skypeForConsumer",
        "teamsForBusiness",
    ),
}
_ENUM_TYPES = {"showAs": "freeBusyStatus", "onlineMeetingProvider": "onlineMeetingProviderType"}
BOOLS = (
    "isAllDay",
    "isReminderOn",
    "responseRequested",
    "allowNewTimeProposals",
    "isOnlineMeeting",
    "hideAttendees",
    "isDraft",
)
STRINGS = ("subject", "transactionId", "originalStartTimeZone", "originalEndTimeZone")
READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "iCalUId",
        "type",
        "seriesMasterId",
        "webLink",
        "bodyPreview",
        "hasAttachments",
        "isCancelled",
        "isOrganizer",
        "onlineMeetingUrl",
        "onlineMeeting",
        "originalStart",
        "responseStatus",
        "occurrenceId",
        "cancelledOccurrences",
    }
)
WRITABLE = frozenset(
    {
        *ENUMS,
        *BOOLS,
        *STRINGS,
        "body",
        "start",
        "end",
        "recurrence",
        "location",
        "locations",
        "attendees",
        "categories",
        "organizer",
        "reminderMinutesBeforeStart",
        "singleValueExtendedProperties",
    }
)
_ATTENDEE_TYPES = ("required", "optional", "resource")


def _read_error(message: str) -> GraphRequestError:
    return GraphRequestError(400, "RequestBodyRead", message)


def _convert_error(value: object, type_name: str, field: str) -> GraphRequestError:
    return _read_error(
        f"Cannot convert the literal '{value}' to the expected type '{type_name}' ({field})."
    )


def parse_body(body: object, *, partial: bool) -> dict[str, Any]:
    """Normalised properties of a POST (partial=False) or PATCH (partial=True) body."""
    if not isinstance(body, dict):
        raise _read_error("The request body must be a JSON object describing an event.")
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key.startswith("@odata.") or key in READ_ONLY:
            continue
        if key not in WRITABLE:
            raise _read_error(
                f"The property '{key}' does not exist on type 'Microsoft.OutlookServices.Event'. "
                "Make sure to only use property names that are defined by the type."
            )
        out.update(_parse_one(key, value))
    if not partial:
        for needed in ("start", "end"):
            if needed not in out:
                raise GraphRequestError(
                    400,
                    "ErrorInvalidRequest",
                    f"{needed} is required to create an event: send "
                    f'"{needed}": {{"dateTime": "2026-11-21T09:00:00", "timeZone": "UTC"}}.',
                )
    return out


def _parse_one(key: str, value: Any) -> dict[str, Any]:
    if key in ENUMS:
        if value not in ENUMS[key]:
            type_name = _ENUM_TYPES.get(key, key)
            raise _convert_error(value, f"microsoft.graph.{type_name}", key)
        return {key: value}
    if key in BOOLS:
        if not isinstance(value, bool):
            raise _convert_error(value, "Edm.Boolean", key)
        return {key: value}
    if key in STRINGS:
        if value is not None and not isinstance(value, str):
            raise _convert_error(value, "Edm.String", key)
        return {key: value or ("" if key == "subject" else None)}
    if key == "reminderMinutesBeforeStart":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _convert_error(value, "Edm.Int32", key)
        return {key: value}
    if key in ("start", "end"):
        instant, zone = dtz_to_utc(value, key)
        return {key: instant, f"{key}Zone": zone}
    if key == "body":
        return {"body": _body(value)}
    if key == "recurrence":
        return {"recurrence": value}  # normalised by the store, which knows the start zone
    if key == "categories":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise _convert_error(value, "Collection(Edm.String)", key)
        return {key: list(value)}
    if key == "organizer":
        return {key: _recipient(value, key)}
    if key == "attendees":
        return {key: _attendees(value)}
    if key == "singleValueExtendedProperties":
        return {"extended": extended_properties(value)}
    if key == "location":
        loc = parse_location(value, key)
        return {"location": loc, "locations": [loc] if loc["displayName"] else []}
    # locations
    if not isinstance(value, list):
        raise _convert_error(value, "Collection(microsoft.graph.location)", key)
    locs = [parse_location(v, f"locations[{i}]") for i, v in enumerate(value)]
    return {"locations": locs, "location": locs[0] if locs else empty_location()}


def extended_properties(value: Any) -> dict[str, str]:
    """singleValueExtendedProperties of a POST or PATCH: {id: value}, ids as sent. An id is
    `<type> {<guid>} Name <name>` or `<type> {<guid>} Id 0x<hex>`, or a proptag `<type> 0x<hex>`
    (resources/extended-properties-overview); values are strings.
    Stored apart from the event's own properties: Graph returns them only when `$expand`ed."""
    if not isinstance(value, list):
        raise _convert_error(
            value, "Collection(microsoft.graph.singleValueLegacyExtendedProperty)", "value"
        )
    out: dict[str, str] = {}
    for item in value:
        if not isinstance(item, dict) or set(item) - {"id", "value", "@odata.type"}:
            raise _read_error("A singleValueExtendedProperty is an object {id, value}.")
        prop_id, text = item.get("id"), item.get("value")
        if not isinstance(prop_id, str) or not _EXTENDED_ID.match(prop_id):
            raise GraphRequestError(
                400,
                "ErrorInvalidProperty",
                f"The extended property id '{prop_id}' is not valid: use "
                "'String {guid} Name name', 'String {guid} Id 0x..' or 'String 0x....'.",
            )
        if not isinstance(text, str):
            raise _convert_error(text, "Edm.String", "singleValueExtendedProperties.value")
        out[prop_id] = text
    return out


_EXTENDED_ID = re.compile(
    r"^\w+ (\{[0-9a-fA-F-]{36}\} (Name \S.*|Id 0x[0-9a-fA-F]+)|0x[0-9a-fA-F]+)$"
)


def _body(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _convert_error(value, "microsoft.graph.itemBody", "body")
    extra = set(value) - {"contentType", "content", "@odata.type"}
    if extra:
        raise _read_error(f"The property '{sorted(extra)[0]}' does not exist on type 'itemBody'.")
    kind = value.get("contentType") or "text"
    if kind not in ("text", "html"):
        raise _convert_error(kind, "microsoft.graph.bodyType", "body.contentType")
    content = value.get("content") or ""
    if not isinstance(content, str):
        raise _convert_error(content, "Edm.String", "body.content")
    # Exchange stores HTML; a text body comes back wrapped (default Prefer is html).
    return {"contentType": "html", "content": content if kind == "html" else text_to_html(content)}


def text_to_html(text: str) -> str:
    inner = html.escape(text).replace("\r\n", "\n").replace("\n", "<br>\r\n")
    return (
        '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        f"\r\n</head>\r\n<body>\r\n{inner}\r\n</body>\r\n</html>\r\n"
    )


def _email(value: Any, field: str, *, required: bool) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _convert_error(value, "microsoft.graph.emailAddress", field)
    address, name = value.get("address"), value.get("name")
    if (required and not address) or not isinstance(address or "", str):
        raise GraphRequestError(
            400, "ErrorInvalidRequest", f"{field}.address must be an SMTP address."
        )
    if not isinstance(name or "", str):
        raise _convert_error(name, "Edm.String", f"{field}.name")
    return {"name": name or address or "", "address": address or ""}


def _recipient(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _convert_error(value, "microsoft.graph.recipient", field)
    return {
        "emailAddress": _email(value.get("emailAddress"), f"{field}.emailAddress", required=True)
    }


def _attendees(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _convert_error(value, "Collection(microsoft.graph.attendee)", "attendees")
    if len(value) > MAX_ATTENDEES:
        raise GraphRequestError(
            400,
            "ErrorInvalidRequest",
            f"An event can have at most {MAX_ATTENDEES} attendees; this one has {len(value)}. "
            "Invite a distribution list instead of its members.",
        )
    out = []
    for i, item in enumerate(value):
        field = f"attendees[{i}]"
        if not isinstance(item, dict):
            raise _convert_error(item, "microsoft.graph.attendee", field)
        kind = item.get("type") or "required"
        if kind not in _ATTENDEE_TYPES:
            raise _convert_error(kind, "microsoft.graph.attendeeType", f"{field}.type")
        out.append(
            {
                "type": kind,
                "status": {"response": "none", "time": NO_TIME},
                "emailAddress": _email(
                    item.get("emailAddress"), f"{field}.emailAddress", required=True
                ),
            }
        )
    return out


def normalize_recurrence(value: Any, zone_name: str) -> dict[str, Any] | None:
    """None clears recurrence; otherwise the normalised patternedRecurrence."""
    if value is None:
        return None
    to_zone(zone_name)
    return recurrence.normalize(value, zone_name)
