"""Pure: a write request checked field by field before any Graph call.

Rules:
- `parse_write` accepts `action` (create, update, delete, cancel), `eventId` (all but create),
  `event` (create, update: Graph's own event shape, a subset of its properties), `changeKey`
  (update: the version the caller saw; else the mirror's), `comment` (cancel) and `writer` (who
  writes: named in the origin marker, so the change feed can keep a writer's own changes from
  it). Every problem is listed in ONE InputError, each line starting with the field's path, so
  what Graph would refuse (an unknown property, a bad enum, end before start, a recurrence
  without a range) is a 400 naming the field before any call.
- `check_idempotency_key`: the `Idempotency-Key` header is 1 to 255 visible ASCII characters.
- `WriteRequest.digest` is what a key is bound to: the same key with another request is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from shared.core.zones import canonical_zone_name, resolve_zone
from shared.errors import InputError

DEFAULT_WRITER = "calsync"


Action = Literal["create", "update", "delete", "cancel"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "cancel")
REQUEST_KEYS = ("action", "eventId", "event", "changeKey", "comment", "writer")
EVENT_KEYS = (
    "subject",
    "body",
    "start",
    "end",
    "isAllDay",
    "location",
    "attendees",
    "recurrence",
    "showAs",
    "sensitivity",
    "importance",
    "categories",
    "isReminderOn",
    "reminderMinutesBeforeStart",
)
ENUMS: dict[str, tuple[str, ...]] = {
    "showAs": ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "importance": ("low", "normal", "high"),
}
PATTERNS = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
RANGES = ("endDate", "noEnd", "numbered")
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
ATTENDEE_TYPES = ("required", "optional", "resource")
MAX_ATTENDEES = 500  # resources/event
MAX_SUBJECT = 255
MAX_COMMENT = 10_000
_WRITER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as IETF's Idempotency-Key header


@dataclass(frozen=True)
class WriteRequest:
    """A write the caller asked for, every field checked."""

    action: Action
    event_id: str = ""
    event: Mapping[str, Any] = field(default_factory=dict)
    change_key: str = ""
    comment: str = ""
    writer: str = DEFAULT_WRITER

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "eventId": self.event_id,
            "event": dict(self.event),
            "changeKey": self.change_key,
            "comment": self.comment,
            "writer": self.writer,
        }

    def digest(self) -> str:
        """What an Idempotency-Key is bound to: a reuse for another request is refused."""
        text = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _problem(problems: list[str], path: str, what: str, value: Any) -> None:
    problems.append(f"{path}: {what}, got {value!r}")


def check_idempotency_key(value: str | None) -> str:
    """The header's value ("" when absent), or InputError naming it."""
    if value is None or value == "":
        return ""
    if not _KEY.match(value):
        raise InputError(
            f"Idempotency-Key: must be 1 to 255 visible ASCII characters, got {value[:80]!r}"
        )
    return value


def parse_write(body: Any) -> WriteRequest:
    """A JSON write request, checked; InputError lists every problem by field."""
    if not isinstance(body, Mapping):
        raise InputError(
            f"the body must be a JSON object with keys {', '.join(REQUEST_KEYS)}, "
            f"got {type(body).__name__}"
        )
    problems: list[str] = []
    unknown = sorted(str(k) for k in body if k not in REQUEST_KEYS)
    if unknown:
        problems.append(
            f"{', '.join(unknown)}: unknown; allowed keys are {', '.join(REQUEST_KEYS)}"
        )
    action = body.get("action")
    if action not in ACTIONS:
        _problem(problems, "action", f"must be one of {', '.join(ACTIONS)}", action)
        raise _input(problems)
    writer = body.get("writer", DEFAULT_WRITER)
    if not isinstance(writer, str) or not _WRITER.match(writer):
        _problem(problems, "writer", "must be 1 to 64 of A-Z a-z 0-9 . _ -", writer)
    event_id = body.get("eventId", "")
    if action == "create":
        if "eventId" in body:
            problems.append("eventId: not allowed with action create (Graph makes the id)")
    elif not isinstance(event_id, str) or not event_id.strip():
        _problem(problems, "eventId", f"required for {action}: the Graph event id", event_id)
    event = body.get("event")
    if action in ("create", "update"):
        if not isinstance(event, Mapping) or (action == "update" and not event):
            _problem(problems, "event", "must be a JSON object of event properties", event)
            event = {}
        else:
            _check_event(event, problems, create=action == "create")
    elif "event" in body:
        problems.append(f"event: not allowed with action {action}")
    change_key = body.get("changeKey", "")
    if "changeKey" in body and (action != "update" or not isinstance(change_key, str)):
        problems.append("changeKey: a string, with action update only")
    comment = body.get("comment", "")
    if "comment" in body and (
        action != "cancel" or not isinstance(comment, str) or len(comment) > MAX_COMMENT
    ):
        problems.append(f"comment: a string of at most {MAX_COMMENT} characters, with cancel only")
    if problems:
        raise _input(problems)
    return WriteRequest(
        action=action,
        event_id=event_id if isinstance(event_id, str) else "",
        event=dict(event) if isinstance(event, Mapping) else {},
        change_key=change_key,
        comment=comment,
        writer=writer,
    )


def _input(problems: list[str]) -> InputError:
    if len(problems) == 1:
        return InputError(problems[0])
    return InputError(
        f"{problems[0]} (and {len(problems) - 1} more problem(s); fix them and retry):\n"
        + "\n".join(f"  - {p}" for p in problems)
    )


def _check_event(event: Mapping[str, Any], problems: list[str], *, create: bool) -> None:
    unknown = sorted(str(k) for k in event if k not in EVENT_KEYS)
    for name in unknown:
        problems.append(
            f"event.{name}: not a property calsync writes; allowed: {', '.join(EVENT_KEYS)}"
        )
    checks: dict[str, Callable[[str, Any], None]] = {
        "subject": lambda p, v: _text(p, v, MAX_SUBJECT, problems),
        "body": lambda p, v: _body(p, v, problems),
        "start": lambda p, v: _when(p, v, problems),
        "end": lambda p, v: _when(p, v, problems),
        "isAllDay": lambda p, v: _flag(p, v, problems),
        "isReminderOn": lambda p, v: _flag(p, v, problems),
        "location": lambda p, v: _location(p, v, problems),
        "attendees": lambda p, v: _attendees(p, v, problems),
        "recurrence": lambda p, v: _recurrence(p, v, problems),
        "categories": lambda p, v: _categories(p, v, problems),
        "reminderMinutesBeforeStart": lambda p, v: _minutes(p, v, problems),
    }
    for name, allowed in ENUMS.items():
        checks[name] = lambda p, v, allowed=allowed: _enum(p, v, allowed, problems)  # type: ignore[misc]
    for name, check in checks.items():
        if name in event:
            check(f"event.{name}", event[name])
    if create:
        for name in ("start", "end"):
            if name not in event:
                problems.append(
                    f'event.{name}: required to create an event, e.g. {{"dateTime": '
                    '"2026-12-01T09:00:00", "timeZone": "Europe/Berlin"}'
                )
    start, end = _wall(event.get("start")), _wall(event.get("end"))
    comparable = start and end and bool(start[1]) == bool(end[1])  # else a zone is unknown yet
    if start and end and comparable and _instant(end) < _instant(start):
        problems.append(
            f"event.end: must not be before event.start ({end[0].isoformat()} {end[1]} < "
            f"{start[0].isoformat()} {start[1]})".replace("  ", " ")
        )
    if event.get("isAllDay") is True:
        for name, wall in (("start", start), ("end", end)):
            if wall and wall[0].time() != time(0):
                problems.append(
                    f"event.{name}.dateTime: an all-day event starts and ends at midnight "
                    f"(T00:00:00), got {wall[0].isoformat()}"
                )


def _text(path: str, value: Any, limit: int, problems: list[str]) -> None:
    if not isinstance(value, str) or len(value) > limit:
        _problem(problems, path, f"must be a string of at most {limit} characters", value)


def _flag(path: str, value: Any, problems: list[str]) -> None:
    if not isinstance(value, bool):
        _problem(problems, path, "must be true or false", value)


def _enum(path: str, value: Any, allowed: tuple[str, ...], problems: list[str]) -> None:
    if value not in allowed:
        _problem(problems, path, f"must be one of {', '.join(allowed)}", value)


def _minutes(path: str, value: Any, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20_160:
        _problem(problems, path, "must be a whole number of minutes from 0 to 20160", value)


def _body(path: str, value: Any, problems: list[str]) -> None:
    if isinstance(value, str):
        return  # the content; its type comes from the mailbox's writeBodyType
    if not isinstance(value, Mapping) or set(value) - {"contentType", "content"}:
        _problem(problems, path, "must be a string or {contentType, content}", value)
        return
    if value.get("contentType", "html") not in ("html", "text"):
        _problem(problems, f"{path}.contentType", "must be html or text", value["contentType"])
    if not isinstance(value.get("content", ""), str):
        _problem(problems, f"{path}.content", "must be a string", value["content"])


def _wall(value: Any) -> tuple[datetime, str] | None:
    """(naive wall time, zone) of a well-formed dateTimeTimeZone, else None."""
    if not isinstance(value, Mapping) or not isinstance(value.get("dateTime"), str):
        return None
    try:
        wall = datetime.fromisoformat(value["dateTime"])
    except ValueError:
        return None
    return wall.replace(tzinfo=None), str(value.get("timeZone") or "")


def _instant(wall: tuple[datetime, str]) -> datetime:
    """The wall time as an instant in its zone; both zones left out (the mailbox's, applied
    later) count as UTC, which keeps the order of two times in the same zone."""
    zone = resolve_zone(wall[1]) if wall[1] else None
    return wall[0].replace(tzinfo=zone or UTC)


def _when(path: str, value: Any, problems: list[str]) -> None:
    if not isinstance(value, Mapping) or set(value) - {"dateTime", "timeZone"}:
        _problem(problems, path, 'must be {"dateTime": "...", "timeZone": "..."}', value)
        return
    text = value.get("dateTime")
    try:
        parsed = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None:
        _problem(problems, f"{path}.dateTime", "must be a local date-time without offset", text)
    zone = value.get("timeZone")
    if zone is not None and (not isinstance(zone, str) or canonical_zone_name(zone) is None):
        _problem(problems, f"{path}.timeZone", "must be an IANA or Windows time zone", zone)


def _location(path: str, value: Any, problems: list[str]) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, Mapping) or not isinstance(value.get("displayName"), str):
        _problem(problems, path, 'must be a string or {"displayName": "..."}', value)


def _categories(path: str, value: Any, problems: list[str]) -> None:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        _problem(problems, path, "must be a list of strings", value)


def _attendees(path: str, value: Any, problems: list[str]) -> None:
    if not isinstance(value, list) or len(value) > MAX_ATTENDEES:
        _problem(problems, path, f"must be a list of at most {MAX_ATTENDEES} attendees", value)
        return
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        email = item.get("emailAddress") if isinstance(item, Mapping) else None
        address = email.get("address") if isinstance(email, Mapping) else None
        if not isinstance(address, str) or "@" not in address:
            _problem(problems, f"{where}.emailAddress.address", "must be an SMTP address", address)
        kind = item.get("type", "required") if isinstance(item, Mapping) else None
        if kind not in ATTENDEE_TYPES:
            _problem(problems, f"{where}.type", f"must be one of {', '.join(ATTENDEE_TYPES)}", kind)


def _date(path: str, value: Any, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        pass
    _problem(problems, path, "must be a date YYYY-MM-DD", value)
    return None


def _recurrence(path: str, value: Any, problems: list[str]) -> None:
    """patternedRecurrence: https://learn.microsoft.com/graph/api/resources/patternedrecurrence"""
    if value is None:
        return  # update: turn a series back into a single event
    if not isinstance(value, Mapping):
        _problem(problems, path, "must be {pattern, range} or null", value)
        return
    pattern, rng = value.get("pattern"), value.get("range")
    if not isinstance(pattern, Mapping):
        _problem(problems, f"{path}.pattern", "required: {type, interval, ...}", pattern)
    else:
        kind = pattern.get("type")
        if kind not in PATTERNS:
            _problem(
                problems, f"{path}.pattern.type", f"must be one of {', '.join(PATTERNS)}", kind
            )
        interval = pattern.get("interval", 1)
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            _problem(problems, f"{path}.pattern.interval", "must be a whole number >= 1", interval)
        days = pattern.get("daysOfWeek")
        if kind in ("weekly", "relativeMonthly", "relativeYearly") and (
            not isinstance(days, list) or not days or any(d not in DAYS for d in days)
        ):
            _problem(problems, f"{path}.pattern.daysOfWeek", "must list days (monday ...)", days)
    if not isinstance(rng, Mapping):
        _problem(problems, f"{path}.range", "required: {type, startDate, ...}", rng)
        return
    kind = rng.get("type")
    if kind not in RANGES:
        _problem(problems, f"{path}.range.type", f"must be one of {', '.join(RANGES)}", kind)
    start = _date(f"{path}.range.startDate", rng.get("startDate"), problems)
    if kind == "endDate":
        end = _date(f"{path}.range.endDate", rng.get("endDate"), problems)
        if start and end and end < start:
            _problem(problems, f"{path}.range.endDate", "must not be before startDate", str(end))
    if kind == "numbered":
        count = rng.get("numberOfOccurrences")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            _problem(problems, f"{path}.range.numberOfOccurrences", "must be >= 1", count)
