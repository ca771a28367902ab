"""Pure: the change feed's events: what one mirror change becomes for the systems downstream.

Rules:
- Every change the mirror applies is one `ChangeEvent`: `created` (an id new to the mirror),
  `updated` (a new changeKey or content) or `deleted` (gone from Graph, out of the window, or
  excluded as private). A page that changes nothing yields no event.
- `sequence` orders a mailbox's changes: a whole number, one higher per change, assigned by the
  store in the same Table transaction that changes the mirror (so two changes never share one
  and a change that did not land has none). Its text form is 20 digits, so text order is
  number order (`format_sequence`).
- `change_id` is derived from the mailbox, the sequence, the event id, the type and the
  changeKey: the same mirror change always has the same id, and every copy of it (queue
  message, webhook attempt, feed read) carries it, so a receiver deduplicates on it.
- The event after the change is `event_json`: camelCase, `start`/`end` UTC instants and the
  event's IANA zone, all-day events with plain `startDate`/`endDate` (end exclusive) placed at
  midnight in the mailbox's zone, `showAs`, `sensitivity` and the masked fields as the mailbox's
  private option left them, the body in the mailbox's body type. A deletion carries no event.
- `changedFields` names the keys of that JSON whose value differs from the mirrored version
  before the change (from per-field digests kept on each mirrored row); null when unknown
  (created, deleted, or a row mirrored before digests were kept).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.core.agenda import agenda_item
from shared.core.model import DEFAULT_CALENDAR_NAME, MailboxKey
from shared.core.times import iso_utc, parse_iso
from shared.core.zones import resolve_zone
from shared.errors import InputError

ChangeType = Literal["created", "updated", "deleted"]
CHANGE_TYPES: tuple[ChangeType, ...] = ("created", "updated", "deleted")
SEQUENCE_DIGITS = 20
DEFAULT_CALENDAR = DEFAULT_CALENDAR_NAME  # a non-default calendar is named by its handle
UNCOMPARED = frozenset({"id", "changeKey"})  # the id never changes; the changeKey always does
DIGEST_CHARS = 12  # per field: 48 bits, plenty to tell one version of a field from the next


def format_sequence(number: int) -> str:
    """The sequence as text whose order is the number's (20 digits)."""
    if not 0 <= number < 10**SEQUENCE_DIGITS:
        raise InputError(f"a sequence must be from 0 to {10**SEQUENCE_DIGITS - 1}, got {number}")
    return f"{number:0{SEQUENCE_DIGITS}d}"


def parse_sequence(text: str, what: str = "after") -> int:
    """A sequence given back by a consumer (a feed cursor); InputError naming `what`."""
    if not text.isdigit() or len(text) > SEQUENCE_DIGITS:
        raise InputError(
            f"{what}={text!r} must be a sequence from the feed: up to {SEQUENCE_DIGITS} digits"
        )
    return int(text)


def change_id(partition: str, sequence: int, event_id: str, kind: str, change_key: str) -> str:
    """The stable id of one mirror change (see the module docstring)."""
    text = "\x1f".join((partition, format_sequence(sequence), event_id, kind, change_key))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _json_list(props: Mapping[str, Any], name: str) -> list[Any]:
    raw = props.get(name)
    if not raw:
        return []
    try:
        value = json.loads(str(raw))
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def event_json(props: Mapping[str, Any], time_zone: str) -> dict[str, Any]:
    """A mirrored event's logical (unsplit) properties as the feed shows it."""
    zone = resolve_zone(time_zone or "UTC")
    if zone is None:
        raise InputError(f"the mailbox time zone {time_zone!r} is not a known zone name")
    item = agenda_item(props, zone, time_zone or "UTC")
    reminder = props.get("reminder_minutes_before_start")
    original_start = props.get("original_start")
    last_modified = props.get("last_modified")
    item.update(
        {
            "changeKey": str(props.get("change_key", "")) or None,
            "body": {
                "contentType": str(props.get("body_content_type", "")) or None,
                "content": str(props.get("body", "")),
                "truncated": bool(props.get("body_truncated")),
            },
            "bodyPreview": str(props.get("body_preview", "")),
            "importance": str(props.get("importance", "")) or None,
            "categories": _json_list(props, "categories_json"),
            "attendees": _json_list(props, "attendees_json"),
            "locations": _json_list(props, "locations_json"),
            "isReminderOn": bool(props.get("is_reminder_on")),
            "reminderMinutesBeforeStart": reminder if isinstance(reminder, int) else None,
            "isOnlineMeeting": bool(props.get("is_online_meeting")),
            "onlineMeetingUrl": str(props.get("online_meeting_url", "")) or None,
            "isOrganizer": bool(props.get("is_organizer")),
            "responseStatus": str(props.get("response_status", "")) or None,
            "webLink": str(props.get("web_link", "")) or None,
            "originalStart": iso_utc(original_start)
            if isinstance(original_start, datetime)
            else None,
            "lastModified": iso_utc(last_modified) if isinstance(last_modified, datetime) else None,
            "masked": bool(props.get("masked")),
            "recurrence": _recurrence(props),
        }
    )
    return item


def _recurrence(props: Mapping[str, Any]) -> dict[str, Any] | None:
    """A series master's pattern and range as Graph gave them; None for other events."""
    raw = props.get("recurrence_json")
    if not raw:
        return None
    try:
        value = json.loads(str(raw))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def field_digests(event: Mapping[str, Any]) -> dict[str, str]:
    """A short digest of each key of an event's feed JSON (what `changedFields` compares)."""
    out: dict[str, str] = {}
    for name, value in event.items():
        if name in UNCOMPARED:
            continue
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        out[name] = digest[:DIGEST_CHARS]
    return out


def changed_fields(before: Mapping[str, str] | None, after: Mapping[str, str]) -> tuple[str, ...]:
    """The keys whose digests differ (sorted); every key of `after` when `before` is empty."""
    if not before:
        return tuple(sorted(after))
    names = set(before) | set(after)
    return tuple(sorted(n for n in names if before.get(n) != after.get(n)))


@dataclass(frozen=True)
class ChangeEvent:
    """One change of the mirror, as the feed carries it (see the module docstring)."""

    change_id: str
    sequence: int
    type: ChangeType
    tenant_id: str
    user_id: str
    event_id: str
    occurred_at: datetime
    calendar_id: str = DEFAULT_CALENDAR
    series_master_id: str = ""
    ical_uid: str = ""
    change_key: str = ""
    changed_fields: tuple[str, ...] | None = None
    event: dict[str, Any] | None = None
    mailbox_ref: str = ""
    # Set when the change came from a calsync write: its idempotency key and writer.
    write_key: str = ""
    writer: str = ""

    @property
    def partition(self) -> str:
        calendar = "" if self.calendar_id == DEFAULT_CALENDAR else self.calendar_id
        return MailboxKey(self.tenant_id, self.user_id, calendar).partition

    def to_json(self) -> dict[str, Any]:
        """The change as consumers receive it (queue message, webhook body, feed read)."""
        return {
            "id": self.change_id,
            "sequence": format_sequence(self.sequence),
            "type": self.type,
            "occurredAt": iso_utc(self.occurred_at),
            "tenantId": self.tenant_id,
            "mailboxId": self.user_id,
            "mailboxRef": self.mailbox_ref or None,
            "calendarId": self.calendar_id,
            "eventId": self.event_id,
            "seriesMasterId": self.series_master_id or None,
            "iCalUId": self.ical_uid or None,
            "changeKey": self.change_key or None,
            "changedFields": list(self.changed_fields) if self.changed_fields is not None else None,
            "origin": {"writeKey": self.write_key, "writer": self.writer}
            if self.write_key or self.writer
            else None,
            "event": self.event,
        }


def _get_str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"change field {name} must be a string, got {type(value).__name__}")
    return value


def change_from_json(data: Mapping[str, Any]) -> ChangeEvent:
    """Read back `ChangeEvent.to_json` (as stored); InputError naming a bad field."""
    kind = data.get("type")
    if kind not in CHANGE_TYPES:
        raise InputError(f"change type must be one of {', '.join(CHANGE_TYPES)}, got {kind!r}")
    occurred = parse_iso(_get_str(data, "occurredAt"))
    if occurred is None:
        raise InputError("change field occurredAt must be an ISO 8601 instant")
    fields = data.get("changedFields")
    origin = data.get("origin") if isinstance(data.get("origin"), dict) else {}
    assert isinstance(origin, dict)
    event = data.get("event")
    return ChangeEvent(
        change_id=_get_str(data, "id"),
        sequence=parse_sequence(_get_str(data, "sequence"), "sequence"),
        type=kind,
        tenant_id=_get_str(data, "tenantId"),
        user_id=_get_str(data, "mailboxId"),
        event_id=_get_str(data, "eventId"),
        occurred_at=occurred,
        calendar_id=_get_str(data, "calendarId") or DEFAULT_CALENDAR,
        series_master_id=_get_str(data, "seriesMasterId"),
        ical_uid=_get_str(data, "iCalUId"),
        change_key=_get_str(data, "changeKey"),
        changed_fields=tuple(str(f) for f in fields) if isinstance(fields, list) else None,
        event=event if isinstance(event, dict) else None,
        mailbox_ref=_get_str(data, "mailboxRef"),
        write_key=_get_str(origin, "writeKey"),
        writer=_get_str(origin, "writer"),
    )
