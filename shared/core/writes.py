"""Pure: the write API's rules. The Graph body a checked write request (core.write_input)
becomes with the mailbox's write options and our origin marker, a write's id from the caller's
Idempotency-Key, and the states of a write record (pending, done, failed).

Rules:
- Attendees only when the caller sends them: an event without attendees is an appointment and
  Graph sends no invitation; with attendees, Graph invites them (that is what they are for).
- A new event gets the mailbox's write options where the caller left them out: the reminder
  (`reminderOnNew`, `reminderMinutes`), the time zone of start and end (`writeTimeZone`, else
  `timeZone`), `sensitivity` private (`writePrivate`), the body's type (`writeBodyType`).
- Every create and update carries the origin marker: the single-value extended property
  ORIGIN_PROPERTY (our own GUID namespace) with `calsync;writer=<writer>;write=<write id>`.
- A write's id is derived from (tenant, user, Idempotency-Key) when the caller sends one, so a
  retry finds its write; `transactionId` is the write id, so Graph refuses a repeated POST.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.core.model import MailboxKey, MailboxOptions

# The request side, re-exported: services speak to this one module.
from shared.core.write_input import DEFAULT_WRITER as DEFAULT_WRITER
from shared.core.write_input import Action as Action
from shared.core.write_input import WriteRequest as WriteRequest
from shared.core.write_input import check_idempotency_key as check_idempotency_key
from shared.core.write_input import parse_write as parse_write

#: Our own namespace for MAPI named properties (never reused for anything else).
ORIGIN_NAMESPACE = "{4f1c5e2a-8b3d-4c6e-9a7f-2d5b8e1c0a93}"
ORIGIN_PROPERTY = f"String {ORIGIN_NAMESPACE} Name calsyncOrigin"
MAX_ATTEMPTS = 8  # a queued write that stays throttled or failing past this is failed

Status = Literal["pending", "done", "failed"]


@dataclass(frozen=True)
class WriteRecord:
    """One write as stored and shown by `GET /api/writes/{id}`."""

    write_id: str
    key: MailboxKey
    request: WriteRequest
    status: Status
    created: datetime
    updated: datetime
    idempotency_key: str = ""
    attempts: int = 0  # Graph calls of this write that failed transiently so far
    retry_at: datetime | None = None
    event_id: str = ""
    change_key: str = ""
    event: Mapping[str, Any] | None = None  # Graph's answer (the current version on a conflict)
    error_code: str = ""
    error: str = ""

    @property
    def origin(self) -> str:
        return origin_value(self.request.writer, self.write_id)


def write_id_for(key: MailboxKey, idempotency_key: str) -> str:
    """The write's id: stable for one (mailbox, Idempotency-Key), else a fresh one."""
    if not idempotency_key:
        return uuid.uuid4().hex
    text = f"{key.tenant_id}\n{key.user_id}\n{idempotency_key}"
    if key.calendar:  # another calendar of the mailbox: its own keys (the default's unchanged)
        text += f"\n{key.calendar}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def origin_value(writer: str, write_id: str) -> str:
    return f"calsync;writer={writer};write={write_id}"


def parse_origin(value: str) -> tuple[str, str] | None:
    """(writer, write id) of an origin marker's value, or None if it is not ours."""
    parts = dict(p.split("=", 1) for p in value.split(";")[1:] if "=" in p)
    if not value.startswith("calsync;") or "writer" not in parts or "write" not in parts:
        return None
    return parts["writer"], parts["write"]


def origin_of(event: Mapping[str, Any]) -> str:
    """The origin marker's value on a Graph event (expanded), or ""."""
    for prop in event.get("singleValueExtendedProperties") or []:
        if isinstance(prop, dict) and str(prop.get("id", "")).lower() == ORIGIN_PROPERTY.lower():
            return str(prop.get("value") or "")
    return ""


# ---- the Graph body ---------------------------------------------------------------------------


def plan_graph_body(
    request: WriteRequest, options: MailboxOptions, write_id: str
) -> dict[str, Any]:
    """The body Graph gets for a create or update: the caller's fields, the mailbox's write
    options where a new event left them out, and the origin marker."""
    event = dict(request.event)
    zone = options.write_time_zone or options.time_zone
    if request.action == "create":
        event.setdefault("isReminderOn", options.reminder_on_new)
        if event["isReminderOn"]:
            event.setdefault("reminderMinutesBeforeStart", options.reminder_minutes)
        if options.write_private:
            event.setdefault("sensitivity", "private")
    for name in ("start", "end"):
        if isinstance(event.get(name), Mapping) and not event[name].get("timeZone"):
            event[name] = {**event[name], "timeZone": zone}
    recurrence = event.get("recurrence")
    if isinstance(recurrence, Mapping) and isinstance(recurrence.get("range"), Mapping):
        rng = recurrence["range"]
        if not rng.get("recurrenceTimeZone"):
            start_zone = (event.get("start") or {}).get("timeZone") or zone
            event["recurrence"] = {**recurrence, "range": {**rng, "recurrenceTimeZone": start_zone}}
    body = event.get("body")
    if isinstance(body, str):
        event["body"] = {"contentType": options.write_body_type, "content": body}
    elif isinstance(body, Mapping) and "contentType" not in body:
        event["body"] = {**body, "contentType": options.write_body_type}
    if isinstance(event.get("location"), str):
        event["location"] = {"displayName": event["location"]}
    event["singleValueExtendedProperties"] = [
        {"id": ORIGIN_PROPERTY, "value": origin_value(request.writer, write_id)}
    ]
    return event


def is_series(event: Mapping[str, Any] | None) -> bool:
    return isinstance(event, Mapping) and event.get("type") == "seriesMaster"


# ---- the record -------------------------------------------------------------------------------


def new_record(
    key: MailboxKey, request: WriteRequest, idempotency_key: str, now: datetime
) -> WriteRecord:
    return WriteRecord(
        write_id=write_id_for(key, idempotency_key),
        key=key,
        request=request,
        status="pending",
        created=now,
        updated=now,
        idempotency_key=idempotency_key,
        event_id=request.event_id,
    )


def plan_done(record: WriteRecord, event: Mapping[str, Any] | None, now: datetime) -> WriteRecord:
    """Done: the event Graph answered with (None after a delete or cancel)."""
    return replace(
        record,
        status="done",
        updated=now,
        retry_at=None,
        event=event,
        event_id=str((event or {}).get("id") or record.event_id),
        change_key=str((event or {}).get("changeKey") or ""),
        error_code="",
        error="",
    )


def plan_failed(
    record: WriteRecord,
    code: str,
    reason: str,
    now: datetime,
    current: Mapping[str, Any] | None = None,
) -> WriteRecord:
    """Failed for good, with the reason (and, on a conflict, the event's current version)."""
    return replace(
        record,
        status="failed",
        updated=now,
        retry_at=None,
        error_code=code,
        error=reason,
        event=current,
    )


def plan_retry(
    record: WriteRecord, code: str, reason: str, delay: float, now: datetime
) -> WriteRecord:
    """Still pending after a transient failure: retried after `delay` seconds, or failed
    once MAX_ATTEMPTS transient failures have been spent."""
    attempts = record.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        return replace(
            plan_failed(record, code, f"gave up after {attempts} attempts: {reason}", now),
            attempts=attempts,
        )
    return replace(
        record,
        status="pending",
        updated=now,
        attempts=attempts,
        retry_at=now + timedelta(seconds=delay),
        error_code=code,
        error=reason,
    )


def plan_held(record: WriteRecord, until: datetime, now: datetime) -> WriteRecord:
    """Pending, not tried: Graph's Retry-After holds every request for the mailbox until
    `until` (a sync round's 429), so the write waits for it too; no attempt is spent."""
    return replace(
        record,
        status="pending",
        updated=now,
        retry_at=until,
        error_code="TooManyRequests",
        error="Graph's Retry-After holds this mailbox; the write waits for it",
    )


def view(record: WriteRecord) -> dict[str, Any]:
    """The write as the API shows it (camelCase)."""
    error = {"code": record.error_code, "message": record.error} if record.error_code else None
    return {
        "id": record.write_id,
        "status": record.status,
        "action": record.request.action,
        "tenantId": record.key.tenant_id,
        "userId": record.key.user_id,
        "calendar": record.key.calendar_name,
        "writer": record.request.writer,
        "idempotencyKey": record.idempotency_key or None,
        "eventId": record.event_id or None,
        "changeKey": record.change_key or None,
        "attempts": record.attempts,
        "createdAt": record.created,
        "updatedAt": record.updated,
        "retryAt": record.retry_at,
        "error": error,
        "event": dict(record.event) if record.event is not None else None,
    }
