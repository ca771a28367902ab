"""Pure: a sync request's queue message (already parsed from JSON) validated field by field.

Rule: every field has one type; a field of the wrong type is an error naming that field, never
silently dropped (a dropped `full` would turn a resync into a delta round, a dropped
`requested_at` would make a request unfoldable). An error is final: retrying cannot fix the
message, so the worker poison-queues it at once. Fields this version does not know are ignored
(a newer writer may add some). Messages written before requests were typed carry `reason`
("lifecycle:missed:<id>") instead of `trigger`. A `traceparent` must be empty or a valid W3C
traceparent (core.tracing).
"""

from __future__ import annotations

from typing import Any

from shared.core.model import CALENDAR_HANDLE, SyncRequest, Trigger
from shared.core.tracing import traceparent_problem
from shared.errors import InputError

_TRIGGERS = {t.value: t for t in Trigger}
_OPTIONAL: dict[str, type] = {
    "full": bool,
    "requested_at": str,
    "lifecycle_event": str,
    "subscription_id": str,
    "attempt": int,
    "traceparent": str,
    "calendar": str,
}


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _legacy_trigger(data: dict[str, Any]) -> dict[str, Any]:
    """`reason` ("notification", "lifecycle:missed:<id>") as the typed fields it stood for."""
    if "trigger" in data or not isinstance(data.get("reason"), str):
        return data
    head, _, rest = data["reason"].partition(":")
    out = dict(data, trigger=head)
    if head == Trigger.LIFECYCLE:
        out["lifecycle_event"], _, out["subscription_id"] = rest.partition(":")
    return out


def decode_sync_request(data: Any) -> SyncRequest:
    """A decoded queue message body → SyncRequest, or InputError naming every field in error."""
    if not isinstance(data, dict):
        raise InputError("sync request must be a JSON object with tenant_id, user_id, trigger")
    data = _legacy_trigger(data)
    problems = [
        f"{name} must be a string, got {_type_name(data.get(name))}"
        for name in ("tenant_id", "user_id")
        if not isinstance(data.get(name), str)
    ]
    trigger = data.get("trigger")
    if "trigger" not in data:
        problems.append("trigger is missing")
    elif not isinstance(trigger, str):
        problems.append(f"trigger must be a string, got {_type_name(trigger)}")
    elif trigger not in _TRIGGERS:
        problems.append(
            f"trigger: unknown trigger {trigger[:40]!r}, expected one of {', '.join(_TRIGGERS)}"
        )
    values: dict[str, Any] = {}
    for name, kind in _OPTIONAL.items():
        if name not in data:
            continue
        value = data[name]
        # bool is an int in Python; a count of attempts is never true or false.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{name} must be {kind.__name__}, got {_type_name(value)}")
        elif isinstance(value, int) and not isinstance(value, bool) and value < 0:
            problems.append(f"{name} must be 0 or more, got {value}")
        elif name == "traceparent" and (problem := traceparent_problem(str(value))):
            problems.append(problem)  # our own writers make it: a malformed one is a defect
        else:
            values[name] = value
    calendar = values.get("calendar", "")
    if calendar and not CALENDAR_HANDLE.match(calendar):
        problems.append(f"calendar: {calendar[:48]!r} is not a calendar handle")
    if problems:
        raise InputError("sync request rejected: " + "; ".join(problems))
    return SyncRequest(data["tenant_id"], data["user_id"], _TRIGGERS[trigger], **values)
