"""Connector operations for workflow tools, live from Graph for an enrolled mailbox: its
calendars (owner and what the app may do), its events in a range, one event, and a raw Graph
request within the mailbox (core.connector's rules). Every call is a Graph call like any other,
so the operations log records it (method, path, status, duration, request ids); the raw call's
caller, when it names itself, is logged with it."""

from __future__ import annotations

import logging
import time
from typing import Any

from shared.compose import Services
from shared.core import agenda as ag
from shared.core import connector as rules
from shared.core import oplog
from shared.core.graph import calendar_view_live, calendars_list, raw_request
from shared.core.model import MailboxKey, Window
from shared.core.paging import iter_events
from shared.core.zones import resolve_zone
from shared.errors import ForbiddenError, InputError
from shared.services.mailboxes import find
from shared.telemetry import dims

log = logging.getLogger("calsync.connector")

MAX_LIVE_EVENTS = 5000


def calendars(svc: Services, tenant_id: str, user: str) -> dict[str, Any]:
    """The mailbox's calendars as Graph lists them (id, name, owner, default, permissions)."""
    record = find(svc, tenant_id, user)
    answer = svc.graph.send(calendars_list(record.key)) or {}
    value = [
        {
            "id": c.get("id"),
            "name": c.get("name"),
            "owner": c.get("owner"),
            "isDefaultCalendar": bool(c.get("isDefaultCalendar")),
            "canEdit": bool(c.get("canEdit")),
            "canShare": bool(c.get("canShare")),
            "canViewPrivateItems": bool(c.get("canViewPrivateItems")),
        }
        for c in answer.get("value", [])
        if isinstance(c, dict)
    ]
    return {"tenantId": tenant_id, "userId": record.key.user_id, "value": value}


def live_events(
    svc: Services, tenant_id: str, user: str, start: str | None, end: str | None
) -> dict[str, Any]:
    """The mailbox's events in the range (the read API's range rules), live from Graph."""
    record = find(svc, tenant_id, user)
    zone = resolve_zone(record.options.time_zone or "UTC")
    assert zone is not None
    window = ag.parse_range(start, end, now=svc.now(), zone=zone)
    request = calendar_view_live(
        record.key,
        Window(window.start, window.end),
        body_type=record.options.body_type,
        calendar_id=record.calendar_id,
    )
    events = []
    for event in iter_events(request, svc.graph.send):
        events.append(event)
        if len(events) > MAX_LIVE_EVENTS:
            raise InputError(
                f"end: the range holds more than {MAX_LIVE_EVENTS} events; ask for a shorter one"
            )
    return {
        "tenantId": tenant_id,
        "userId": record.key.user_id,
        "start": window.start,
        "end": window.end,
        "count": len(events),
        "value": events,
    }


def raw(svc: Services, tenant_id: str, user: str, body: Any) -> dict[str, Any]:
    """A raw Graph request within the mailbox: {method, path, query?, body?, caller?}; the
    answer is {status, body, retryAfter?} as Graph gave it. 403 outside the rules, and that
    refusal is in the operations log too, with the caller (a call Graph answered is logged by
    the Graph adapter, with the caller)."""
    started = time.perf_counter()
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object: {method, path, query?, body?, caller?}")
    unknown = sorted(set(body) - {"method", "path", "query", "body", "caller"})
    if unknown:
        raise InputError(f"{unknown[0]} is not a field: use method, path, query, body, caller")
    caller = rules.raw_caller(body.get("caller"))
    record = find(svc, tenant_id, user)
    try:
        method = rules.raw_method(body.get("method"))
        path = rules.raw_path(body.get("path"), user_id=record.key.user_id, upn=record.upn)
    except ForbiddenError as exc:
        _log_refusal(svc, record.key, body, caller, exc, started)
        raise
    query = rules.raw_query(body.get("query"))
    payload = body.get("body")
    if payload is not None and not isinstance(payload, dict):
        raise InputError("body must be a JSON object (Graph's request body) or absent")
    if payload is not None and method in ("GET", "DELETE"):
        raise InputError(f"body: a {method} request has no body")
    log.info(
        "raw Graph request %s %s for %s by %s",
        method,
        path,
        record.key.user_id,
        caller or "an unnamed caller",
        extra=dims(caller=caller),
    )
    request = raw_request(record.key, method, path, query, payload, caller=caller)
    answer: dict[str, Any] = svc.graph.send(request)
    return answer


def _log_refusal(
    svc: Services,
    key: MailboxKey,
    body: dict[str, Any],
    caller: str,
    exc: ForbiddenError,
    started: float,
) -> None:
    """One outbound record of a raw call refused before Graph: status 403, what was asked for
    (method and path as given; never its body), who asked."""
    log.warning(
        "raw Graph request refused for %s by %s: %s",
        key.user_id,
        caller or "an unnamed caller",
        exc.message,
        extra=dims(caller=caller),
    )
    if svc.oplog is None:
        return
    method, path = body.get("method"), body.get("path")
    svc.oplog.record(
        oplog.refused_raw(
            at=svc.now(),
            tenant_id=key.tenant_id,
            user_id=key.user_id,
            method=method if isinstance(method, str) else "",
            path=path if isinstance(path, str) else "",
            caller=caller,
            status=exc.http_status,
            error=exc.code,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    )


def live_event(svc: Services, tenant_id: str, user: str, event_id: str) -> dict[str, Any]:
    """One event of the mailbox, live from Graph (with calsync's origin marker when it has
    one); 404 when the mailbox has no such event."""
    from shared.core.graph import event_get
    from shared.core.writes import ORIGIN_PROPERTY

    record = find(svc, tenant_id, user)
    if not event_id.strip():
        raise InputError("eventId is required")
    request = event_get(
        record.key, event_id, origin_property=ORIGIN_PROPERTY, body_type=record.options.body_type
    )
    event: dict[str, Any] = svc.graph.send(request)
    return event
