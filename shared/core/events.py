"""Pure: a Graph event (from calendarView/delta) normalised into the mirror's Table properties.

Rules:
- Properties are snake_case, Table-ready (str, int, bool, aware UTC datetime). Text Graph leaves
  null becomes ""; a null flag becomes False; absent timestamps and numbers are left out.
- `start`/`end` are UTC instants. Timed events convert from their dateTimeTimeZone (the adapter
  asks for UTC; Windows and IANA zone names are read anyway). All-day events float: their
  dateTime is local midnight in whatever zone Graph wrote, so `all_day_start_date` /
  `all_day_end_date` (end exclusive, "YYYY-MM-DD") are the dates as written, never shifted through
  UTC, and `start`/`end` are those midnights in the mailbox's own zone (`options.time_zone`).
- Private handling: with `options.private == "mask"` a private or confidential event keeps its
  times and status but loses its subject ("Private appointment"), body, preview, location(s),
  attendees and online meeting URL (a join URL lets anyone join), with `masked=True`.
- Series masters are mirrored like instances (type `seriesMaster`, start/end of the series'
  first occurrence as Graph gives them) with their pattern and range in `recurrence_json`;
  delta returns only instances, so the sync round fetches a master itself.
- Size: the entity must stay under 1 MiB with keys and the adapter's own properties, so the
  normalised properties get a budget of ENTITY_BUDGET (900 KiB, measured with
  `entity.entity_size`). Only the body can be that large (Graph caps attendees at 500 and the
  subject at 255 characters): when over budget it is cut on a code point boundary,
  `body_truncated=True` and `body_length` keeps the original length in characters (code points).
  Every entity carries both fields. Then long strings are split per `entity.chunk_properties`;
  `join_properties` (snake_case names, as stored) reverses that for readers.
- Each event also carries its change-feed form (`feed`, core.feed.event_json) and a digest per
  field of it (`field_digests`, stored on the row, outside the content hash).
- `content_hash` is SHA-256 over canonical JSON of the logical (unsplit) properties: sorted keys,
  no spaces, datetimes as ISO 8601 UTC. It is stable across runs and hosts.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, time, tzinfo
from typing import Any

from shared.core.entity import chunk_properties, cut_utf16, entity_size, join_properties
from shared.core.feed import event_json, field_digests
from shared.core.model import MailboxOptions, MirrorEvent
from shared.core.zones import resolve_zone
from shared.errors import InputError

__all__ = ["ENTITY_BUDGET", "content_hash", "join_properties", "normalize_event"]

ENTITY_BUDGET = 900 * 1024
DIGESTS_RESERVE = 4 * 1024  # the field_digests property, added after the body is fitted
TABLE_MIN_YEAR = 1601  # Edm.DateTime in Table Storage starts at 1601-01-01 UTC
MASKED_SUBJECT = "Private appointment"
MASKED_SENSITIVITIES = frozenset({"private", "confidential"})
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    # Table Storage refuses text that is not valid Unicode; JSON may carry lone surrogates.
    return _LONE_SURROGATE.sub("\ufffd", text)


def _flag(value: Any) -> bool:
    return value is True


def _json(value: Any) -> str:
    return _text(json.dumps(value if value is not None else [], sort_keys=True, ensure_ascii=False))


def _field(event: dict[str, Any], *path: str) -> Any:
    value: Any = event
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _offset_datetime(value: Any, what: str) -> datetime | None:
    """A Graph Edm.DateTimeOffset string as an aware UTC datetime (naive means UTC).

    Graph writes "0001-01-01T00:00:00Z" for "never"; Table Storage holds no date before 1601,
    so such values count as absent."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{what} is not an ISO 8601 timestamp: {value!r}") from None
    if parsed.year < TABLE_MIN_YEAR:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _zone(name: str, what: str) -> tzinfo:
    zone = resolve_zone(name or "UTC")
    if zone is None:
        raise InputError(
            f"{what} is in time zone {name!r}, which is neither an IANA nor a Windows zone name; "
            'fetch events with Prefer: outlook.timezone="UTC"'
        )
    return zone


def _local(value: Any, what: str) -> tuple[datetime, str]:
    """A dateTimeTimeZone as (naive local wall time, zone name as Graph wrote it)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise InputError(f"{what} must be an object with a dateTime string, got {value!r}")
    try:
        wall = datetime.fromisoformat(value["dateTime"])
    except ValueError:
        raise InputError(f"{what}.dateTime is not ISO 8601: {value['dateTime']!r}") from None
    return wall, _text(value.get("timeZone"))


def _instant(wall: datetime, zone_name: str, what: str) -> datetime:
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    return wall.replace(tzinfo=_zone(zone_name, what)).astimezone(UTC)


def _times(event: dict[str, Any], options: MailboxOptions, eid: str) -> dict[str, Any]:
    start_wall, start_zone = _local(event.get("start"), f"event {eid}: start")
    end_wall, end_zone = _local(event.get("end"), f"event {eid}: end")
    props: dict[str, Any] = {"start_time_zone": start_zone, "end_time_zone": end_zone}
    if _flag(event.get("isAllDay")):
        home = _zone(options.time_zone, f"mailbox time zone of event {eid}")
        props["start"] = datetime.combine(start_wall.date(), time(0), home).astimezone(UTC)
        props["end"] = datetime.combine(end_wall.date(), time(0), home).astimezone(UTC)
        props["all_day_start_date"] = start_wall.date().isoformat()
        props["all_day_end_date"] = end_wall.date().isoformat()
    else:
        props["start"] = _instant(start_wall, start_zone, f"event {eid}: start")
        props["end"] = _instant(end_wall, end_zone, f"event {eid}: end")
        props["all_day_start_date"] = props["all_day_end_date"] = ""
    return props


def _mask(props: dict[str, Any]) -> None:
    props.update(
        subject=MASKED_SUBJECT,
        body="",
        body_preview="",
        location="",
        locations_json="[]",
        attendees_json="[]",
        online_meeting_url="",
        masked=True,
    )


def _fit_body(props: dict[str, Any]) -> None:
    """Cut the body so the chunked entity stays within ENTITY_BUDGET (see module docstring)."""
    body: str = props["body"]
    props["body_length"] = len(body)
    props["body_truncated"] = False
    budget = ENTITY_BUDGET - DIGESTS_RESERVE
    if entity_size(chunk_properties(props)) <= budget:
        return
    props["body"] = ""
    spare = budget - entity_size(chunk_properties(props))
    # Two bytes per UTF-16 unit; 1 KiB covers the names and headers of up to 30 parts.
    units = (spare - 1024) // 2
    if units < 0:
        raise InputError(
            "the event's properties exceed the 1 MiB Table entity limit even without a body"
        )
    props["body"] = cut_utf16(body, units)
    props["body_truncated"] = True
    while entity_size(chunk_properties(props)) > budget:  # only if the estimate was off
        units -= 1024
        props["body"] = cut_utf16(body, max(units, 0))


def normalize_event(event: dict[str, Any], options: MailboxOptions) -> MirrorEvent:
    """The mirror's form of one Graph event; InputError for a bad shape."""
    eid = event.get("id") if isinstance(event, dict) else None
    if not isinstance(eid, str) or not eid:
        raise InputError("a Graph event must be a JSON object with a non-empty string id")
    kind = _text(event.get("type")) or "singleInstance"
    sensitivity = _text(event.get("sensitivity"))
    online_url = _field(event, "onlineMeeting", "joinUrl") or event.get("onlineMeetingUrl")
    reminder = event.get("reminderMinutesBeforeStart")
    props: dict[str, Any] = {
        "subject": _text(event.get("subject")),
        "body_content_type": _text(_field(event, "body", "contentType")),
        "body": _text(_field(event, "body", "content")),
        "body_preview": _text(event.get("bodyPreview")),
        **_times(event, options, eid),
        "original_start_time_zone": _text(event.get("originalStartTimeZone")),
        "is_all_day": _flag(event.get("isAllDay")),
        "type": kind,
        "series_master_id": _text(event.get("seriesMasterId")),
        "sensitivity": sensitivity,
        "show_as": _text(event.get("showAs")),
        "is_cancelled": _flag(event.get("isCancelled")),
        "is_reminder_on": _flag(event.get("isReminderOn")),
        "importance": _text(event.get("importance")),
        "location": _text(_field(event, "location", "displayName")),
        "locations_json": _json(event.get("locations")),
        "attendees_json": _json(event.get("attendees")),
        "organizer_name": _text(_field(event, "organizer", "emailAddress", "name")),
        "organizer_address": _text(_field(event, "organizer", "emailAddress", "address")),
        "categories_json": _json(event.get("categories")),
        "ical_uid": _text(event.get("iCalUId")),
        "web_link": _text(event.get("webLink")),
        "is_online_meeting": _flag(event.get("isOnlineMeeting")),
        "online_meeting_url": _text(online_url),
        "is_organizer": _flag(event.get("isOrganizer")),
        "response_status": _text(_field(event, "responseStatus", "response")),
        "masked": False,
    }
    if kind == "seriesMaster":
        props["recurrence_json"] = _text(
            json.dumps(event.get("recurrence"), sort_keys=True, ensure_ascii=False)
        )
    if isinstance(reminder, int) and not isinstance(reminder, bool):
        props["reminder_minutes_before_start"] = reminder
    for name, key in (
        ("original_start", "originalStart"),
        ("created", "createdDateTime"),
        ("last_modified", "lastModifiedDateTime"),
    ):
        stamp = _offset_datetime(event.get(key), f"event {eid}: {key}")
        if stamp is not None:
            props[name] = stamp
    if options.private == "mask" and sensitivity.lower() in MASKED_SENSITIVITIES:
        _mask(props)
    _fit_body(props)
    change_key = _text(event.get("changeKey"))
    feed = event_json(props | {"event_id": eid, "change_key": change_key}, options.time_zone)
    digests = json.dumps(field_digests(feed), sort_keys=True, separators=(",", ":"))
    return MirrorEvent(
        event_id=eid,
        change_key=change_key,
        content_hash=content_hash(props),
        properties=chunk_properties(props) | {"field_digests": digests},
        feed=feed,
        digests=digests,
    )


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def content_hash(props: dict[str, Any]) -> str:
    """SHA-256 hex over canonical JSON of logical (unsplit) properties."""
    text = json.dumps(
        props, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_canonical
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
