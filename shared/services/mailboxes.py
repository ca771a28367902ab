"""Admin steps for mailboxes: enrol (or change options), remove, list, status, resync, and read the
mirror. A mailbox is addressed by tenant id and user id or UPN; enrolment resolves a UPN through
Graph once and stores the user's object id, which is what subscriptions and delta use.

A calendar other than the default one is addressed as `user:handle` (or the `calendar` query
parameter the routes turn into it, core.calendars): enrolling it looks the calendar up in
`GET users/{id}/calendars` once and keeps its Graph id on its own mailbox row, beside (never
instead of) the default calendar's."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from shared.compose import Services
from shared.core import lifecycle as lc
from shared.core.calendars import ENROL_KEYS, pick_calendar, split_ref
from shared.core.entity import join_properties
from shared.core.ews import ews_user_id
from shared.core.graph import calendars_list, user_lookup
from shared.core.graph_types import decode_user
from shared.core.listing import LISTING_LINK
from shared.core.model import MailboxKey, Trigger
from shared.core.options import options_to_dict, parse_options
from shared.core.paging import iter_events
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


def find(svc: Services, tenant_id: str, user: str, calendar: str | None = None) -> MailboxRecord:
    """An enrolled calendar by user id or UPN (`user:handle` or `calendar` for another calendar
    than the default one), or NotFoundError."""
    tenant = _tenant(svc, tenant_id)
    name, handle = split_ref(user, calendar)
    record = svc.state.find_mailbox(MailboxKey(tenant, name.lower(), handle))
    if record is not None:
        return record
    for candidate in svc.state.list_mailboxes(tenant):
        if candidate.upn.lower() == name.lower() and candidate.key.calendar == handle:
            return candidate
    shown = f"{name}:{handle}" if handle else name
    raise NotFoundError(f"mailbox {shown!r} of tenant {tenant} is not enrolled; PUT it first")


def find_removed(
    svc: Services, tenant_id: str, user: str, calendar: str | None = None
) -> MailboxKey | None:
    """A purged calendar (by user id or UPN, as `find`) whose change rows are kept until
    CHANGES_RETENTION_DAYS, or None."""
    if svc.changes is None:
        return None
    tenant = _tenant(svc, tenant_id)
    name, handle = split_ref(user, calendar)
    for key, upn, _ in svc.changes.removed():
        user_matches = name.lower() in (key.user_id, upn.lower())
        if key.tenant_id == tenant and key.calendar == handle and user_matches:
            return key
    return None


def _resolve_calendar(svc: Services, key: MailboxKey, body: Mapping[str, Any]) -> tuple[str, str]:
    """(Graph id, name) of the calendar `key.calendar` the enrolment body means."""
    if svc.settings.ews_for(key.tenant_id) is not None:
        raise InputError(
            "mailboxes on Exchange Server (EWS) mirror their default calendar only: leave "
            "the calendar out"
        )
    # Every page of the list: a mailbox may hold more calendars than one page.
    listed = list(iter_events(calendars_list(key.mailbox), svc.graph.send))
    chosen = pick_calendar(listed, body, key.calendar)
    if chosen.get("isDefaultCalendar"):
        raise InputError(
            f"calendar {chosen.get('name')!r} is the mailbox's default calendar: enrol it "
            "without a calendar handle"
        )
    return str(chosen.get("id", "")), str(chosen.get("name", ""))


def enrol(
    svc: Services, tenant_id: str, user: str, body: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Enrol a mailbox's calendar, or change its options; returns (status view, created)."""
    tenant = _tenant(svc, tenant_id)
    if not isinstance(body, Mapping):
        raise InputError("the body must be a JSON object of mailbox options (or {})")
    name, handle = split_ref(user)
    try:
        existing: MailboxRecord | None = find(svc, tenant, user)
    except NotFoundError:
        existing = None
    chosen = {k: body[k] for k in ENROL_KEYS if k in body}
    if chosen and not handle:
        raise InputError(
            f"{', '.join(chosen)} picks a calendar other than the default one: give it a "
            "handle too (?calendar=<handle> or <user>:<handle>)"
        )
    options = parse_options(
        {k: v for k, v in body.items() if k not in ENROL_KEYS},
        existing.options if existing else None,
    )
    if svc.settings.ews_for(tenant) is not None and options.mode != "poll":
        options = replace(options, mode="poll")  # EWS mailboxes are polled (SyncFolderItems)
    now = svc.now()
    if existing is None:
        user_id, upn = _resolve_user(svc, tenant, name)
        key = MailboxKey(tenant, user_id, handle)
        calendar_id, calendar_name = _resolve_calendar(svc, key, body) if handle else ("", "")
        record = MailboxRecord(
            key,
            upn,
            options,
            True,
            enrolled_at=now,
            calendar_id=calendar_id,
            calendar_name=calendar_name,
        )
        created = True
    else:
        if chosen and _resolve_calendar(svc, existing.key, body)[0] != existing.calendar_id:
            raise InputError(
                f"handle {handle!r} is enrolled for calendar {existing.calendar_name!r}: "
                "remove it first, or enrol the other calendar under another handle"
            )
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
    """Stop syncing: delete the subscription; keep the mirror (disabled) or purge it and the
    mailbox row. Its change feed stays readable either way until its changes are past
    CHANGES_RETENTION_DAYS (a consumer behind can read the last ones), then the prune takes it."""
    record = find(svc, tenant_id, user)
    purged = len(svc.state.stored_versions(record.key)) if purge else 0
    advance(svc, record, lc.Removed(purge=purge))
    return {**_ids(record), "purged": purge, "eventsPurged": purged}


def resync(svc: Services, tenant_id: str, user: str) -> dict[str, Any]:
    """Queue a full round; index what the mirror already holds (a round rewrites only changes)."""
    from shared.services.icaluid_index import backfill

    record = find(svc, tenant_id, user)
    backfill(svc, record.key)
    queue_sync(svc, record.key, Trigger.RESYNC, full=True)
    return {"queued": True, **_ids(record)}


def list_all(svc: Services) -> list[dict[str, Any]]:
    now = svc.now()
    return [{**_ids(m), "upn": m.upn, "health": m.health(now)} for m in svc.state.list_mailboxes()]


def status(svc: Services, tenant_id: str, user: str) -> dict[str, Any]:
    """The mailbox's view, with its round (in progress since, lease owner and end, stale)."""
    record, now = find(svc, tenant_id, user), svc.now()
    shown = view(record, now)
    cursor = svc.state.get_cursor(record.key)
    for name, value in round_status(cursor, now).items():
        shown["status"][_camel(name)] = iso_utc(value) if isinstance(value, datetime) else value
    if record.key.calendar:  # Graph refused this calendar's delta: its rounds list it
        shown["status"]["deltaRefused"] = cursor.delta_link == LISTING_LINK
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
    return {**_ids(record), "count": len(items), "value": items}


def _ids(record: MailboxRecord) -> dict[str, Any]:
    """Which calendar an answer is about: tenant, user, and the calendar (its handle as the
    feed's calendarId, "calendar" for the default one; Graph's id and name for another)."""
    key = record.key
    out: dict[str, Any] = {
        "tenantId": key.tenant_id,
        "userId": key.user_id,
        "calendar": key.calendar_name,
    }
    if key.calendar:
        out["calendarGraphId"] = record.calendar_id
        out["calendarName"] = record.calendar_name
    return out


def view(record: MailboxRecord, now: datetime) -> dict[str, Any]:
    """The status of a mailbox as the API shows it (camelCase; times ISO 8601 UTC)."""
    status: dict[str, Any] = {}
    for f in fields(MailboxStatus):
        value = getattr(record.status, f.name)
        status[_camel(f.name)] = iso_utc(value) if isinstance(value, datetime) else value
    return {
        **_ids(record),
        "upn": record.upn,
        "enabled": record.enabled,
        "enrolledAt": iso_utc(record.enrolled_at) if record.enrolled_at else None,
        "options": options_to_dict(record.options),
        "health": record.health(now),
        "status": status,
    }
