"""Admin steps for mailboxes: enrol (or change options), remove, list, status, resync, and read the
mirror. A mailbox is addressed by tenant id and user id or UPN; enrolment resolves a UPN through
Graph once and stores the user's object id, which is what subscriptions and delta use."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from shared.compose import Services
from shared.core import lifecycle as lc
from shared.core.entity import join_properties
from shared.core.ews import ews_user_id
from shared.core.graph import user_lookup
from shared.core.graph_types import decode_user
from shared.core.model import MailboxKey, Trigger
from shared.core.options import options_to_dict, parse_options
from shared.core.rounds import round_status
from shared.core.state import MailboxRecord, MailboxStatus
from shared.core.times import iso_utc, parse_iso
from shared.core.window import plan_window, row_is_shown
from shared.errors import InputError, NotFoundError
from shared.services.lifecycle import advance, queue_sync

log = logging.getLogger("calsync.mailboxes")


def _tenant(svc: Services, tenant_id: str) -> str:
    tenant = tenant_id.strip().lower()
    if tenant not in {t.lower() for t in svc.settings.tenant_ids}:
        raise InputError(
            f"tenant {tenant_id!r} is not one of this app's tenants; add it to TENANT_IDS first"
        )
    return tenant


def _resolve_user(svc: Services, tenant: str, user: str) -> tuple[str, str]:
    """(object id, UPN) of a user given by id or UPN, asked of Graph (NotFoundError if none);
    on Exchange Server (EWS) the mailbox's SMTP address and an id derived from it."""
    if svc.settings.ews_for(tenant) is not None:
        return ews_user_id(user), user.strip().lower()
    found = decode_user(svc.graph.send(user_lookup(tenant, user)))
    return found.id.lower(), found.user_principal_name or user


def find(svc: Services, tenant_id: str, user: str) -> MailboxRecord:
    """An enrolled mailbox by user id or UPN, or NotFoundError."""
    tenant = _tenant(svc, tenant_id)
    record = svc.state.find_mailbox(MailboxKey(tenant, user.lower()))
    if record is not None:
        return record
    for candidate in svc.state.list_mailboxes(tenant):
        if candidate.upn.lower() == user.lower():
            return candidate
    raise NotFoundError(f"mailbox {user!r} of tenant {tenant} is not enrolled; PUT it first")


def enrol(
    svc: Services, tenant_id: str, user: str, body: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Enrol a mailbox, or change its options; returns (status view, created)."""
    tenant = _tenant(svc, tenant_id)
    if not isinstance(body, Mapping):
        raise InputError("the body must be a JSON object of mailbox options (or {})")
    try:
        existing: MailboxRecord | None = find(svc, tenant, user)
    except NotFoundError:
        existing = None
    options = parse_options(body, existing.options if existing else None)
    if svc.settings.ews_for(tenant) is not None and options.mode != "poll":
        options = replace(options, mode="poll")  # EWS mailboxes are polled (SyncFolderItems)
    now = svc.now()
    if existing is None:
        user_id, upn = _resolve_user(svc, tenant, user)
        record = MailboxRecord(MailboxKey(tenant, user_id), upn, options, True, enrolled_at=now)
        created = True
    else:
        record, created = replace(existing, options=options, enabled=True), False
    svc.state.put_mailbox(record)
    if existing is None or not existing.enabled:
        event: lc.Event = lc.Enrolled(options.mode)
    else:
        before, after = existing.options, options
        resync = (before.weeks_back, before.weeks_ahead, before.body_type, before.private) != (
            after.weeks_back,
            after.weeks_ahead,
            after.body_type,
            after.private,
        )
        event = lc.OptionsChanged(options.mode, resync=resync)
    record, _ = advance(svc, record, event, new=existing is None)
    return view(record, svc.now()), created


def remove(svc: Services, tenant_id: str, user: str, *, purge: bool) -> dict[str, Any]:
    """Stop syncing: delete the subscription; keep the mirror (disabled) or purge everything."""
    record = find(svc, tenant_id, user)
    purged = len(svc.state.stored_versions(record.key)) if purge else 0
    advance(svc, record, lc.Removed(purge=purge))
    return {
        "tenantId": record.key.tenant_id,
        "userId": record.key.user_id,
        "purged": purge,
        "eventsPurged": purged,
    }


def resync(svc: Services, tenant_id: str, user: str) -> dict[str, Any]:
    """Queue a full round; index what the mirror already holds (a round rewrites only changes)."""
    from shared.services.icaluid_index import backfill

    record = find(svc, tenant_id, user)
    backfill(svc, record.key)
    queue_sync(svc, record.key, Trigger.RESYNC, full=True)
    return {"queued": True, "tenantId": record.key.tenant_id, "userId": record.key.user_id}


def list_all(svc: Services) -> list[dict[str, Any]]:
    now = svc.now()
    return [
        {
            "tenantId": m.key.tenant_id,
            "userId": m.key.user_id,
            "upn": m.upn,
            "health": m.health(now),
        }
        for m in svc.state.list_mailboxes()
    ]


def status(svc: Services, tenant_id: str, user: str) -> dict[str, Any]:
    """The mailbox's view, with its round (in progress since, lease owner and end, stale)."""
    record, now = find(svc, tenant_id, user), svc.now()
    shown = view(record, now)
    for name, value in round_status(svc.state.get_cursor(record.key), now).items():
        shown["status"][_camel(name)] = iso_utc(value) if isinstance(value, datetime) else value
    return shown


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def events(
    svc: Services, tenant_id: str, user: str, start: str | None, end: str | None
) -> dict[str, Any]:
    """The mirrored events overlapping [start, end) as stored (ISO 8601 bounds, both optional),
    of the user's window only (the window's margin is mirrored hidden, core.window)."""
    record = find(svc, tenant_id, user)
    bounds: dict[str, datetime | None] = {}
    for name, text in (("start", start), ("end", end)):
        bounds[name] = parse_iso(text) if text else None
        if text and bounds[name] is None:
            raise InputError(
                f"{name}={text!r} is not an ISO 8601 date-time (e.g. 2026-11-21T00:00Z)"
            )
    users_window = plan_window(svc.now(), record.options)
    rows = [
        {k: v for k, v in r.items() if k != "hidden"}
        for r in svc.state.list_events(record.key, bounds["start"], bounds["end"])
        if row_is_shown(r, users_window)
    ]
    items = sorted((join_properties(r) for r in rows), key=lambda e: str(e.get("start", "")))
    return {
        "tenantId": record.key.tenant_id,
        "userId": record.key.user_id,
        "count": len(items),
        "value": items,
    }


def view(record: MailboxRecord, now: datetime) -> dict[str, Any]:
    """The status of a mailbox as the API shows it (camelCase; times ISO 8601 UTC)."""
    status: dict[str, Any] = {}
    for f in fields(MailboxStatus):
        value = getattr(record.status, f.name)
        status[_camel(f.name)] = iso_utc(value) if isinstance(value, datetime) else value
    return {
        "tenantId": record.key.tenant_id,
        "userId": record.key.user_id,
        "upn": record.upn,
        "enabled": record.enabled,
        "enrolledAt": iso_utc(record.enrolled_at) if record.enrolled_at else None,
        "options": options_to_dict(record.options),
        "health": record.health(now),
        "status": status,
    }
