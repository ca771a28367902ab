"""The read API: agenda, free/busy and "now" of mailboxes, answered from the mirror only (never
from Graph). Each mailbox costs one Table query (a partition query bounded by the range, only
the columns an agenda item needs); "now" of many mailboxes reads each tenant's mailbox list
once and queries the mailboxes' events side by side."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, tzinfo
from typing import Any

from shared.compose import Services
from shared.core import agenda as ag
from shared.core import freebusy as fb
from shared.core.model import CALENDAR_SEPARATOR
from shared.core.state import MailboxRecord
from shared.core.window import plan_window, row_is_shown
from shared.core.zones import iana_zone_name, resolve_zone
from shared.services.mailboxes import find

NOW_WORKERS = 8


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=NOW_WORKERS, thread_name_prefix="calsync-now")


def _zone(record: MailboxRecord) -> tuple[tzinfo, str]:
    name = record.options.time_zone or "UTC"
    return resolve_zone(name) or UTC, iana_zone_name(name) or "UTC"


def _items(svc: Services, record: MailboxRecord, window: ag.Range) -> list[dict[str, Any]]:
    """The agenda items of `window`, from the rows the user's window shows: the mirror also
    holds the window's margin (core.window), which reads never show, as the feed does not."""
    zone, zone_name = _zone(record)
    low, high = window.query
    user = plan_window(svc.now(), record.options)
    columns = (*ag.COLUMNS, "type", "hidden")
    rows = [
        {k: v for k, v in row.items() if k != "hidden"}
        for row in svc.state.list_events(record.key, low, high, columns=columns)
        if row_is_shown(row, user)
    ]
    return ag.agenda(rows, window, zone, zone_name)


def _head(record: MailboxRecord, window: ag.Range) -> dict[str, Any]:
    return {
        "tenantId": record.key.tenant_id,
        "userId": record.key.user_id,
        "calendar": record.key.calendar_name,
        "timeZone": _zone(record)[1],
        "start": window.start,
        "end": window.end,
    }


def agenda(
    svc: Services, tenant_id: str, user: str, start: str | None, end: str | None
) -> dict[str, Any]:
    """The mailbox's events overlapping the range, sorted by start (default: today locally)."""
    record = find(svc, tenant_id, user)
    window = ag.parse_range(start, end, now=svc.now(), zone=_zone(record)[0])
    items = _items(svc, record, window)
    return _head(record, window) | {"count": len(items), "value": items}


def freebusy(
    svc: Services,
    tenant_id: str,
    user: str,
    start: str | None,
    end: str | None,
    interval: str | None,
) -> dict[str, Any]:
    """availabilityView (getSchedule's encoding) and the schedule items of the range."""
    record = find(svc, tenant_id, user)
    minutes = fb.parse_interval(interval)
    window = ag.parse_range(start, end, now=svc.now(), zone=_zone(record)[0])
    items = _items(svc, record, window)
    return _head(record, window) | {
        "interval": minutes,
        "availabilityView": fb.availability_view(items, window.start, window.end, minutes),
        "scheduleItems": fb.schedule_items(items),
    }


def now(svc: Services, body: Any) -> dict[str, Any]:
    """Status, current and next appointment of each mailbox asked for, in request order."""
    asked = fb.parse_now_request(body)
    moment = svc.now()
    known = {t.lower() for t in svc.settings.tenant_ids}
    by_tenant: dict[str, dict[str, MailboxRecord]] = {}
    for tenant in {t.strip().lower() for t, _ in asked} & known:
        index: dict[str, MailboxRecord] = {}
        for record in svc.state.list_mailboxes(tenant):
            if record.enabled:  # "user" or "user:handle", by id or by UPN
                index[record.key.label.lower()] = record
                tail = f"{CALENDAR_SEPARATOR}{record.key.calendar}" if record.key.calendar else ""
                index.setdefault(record.upn.lower() + tail, record)
        by_tenant[tenant] = index
    records = [by_tenant.get(t.strip().lower(), {}).get(u.lower()) for t, u in asked]
    distinct = list({r.key: r for r in records if r is not None}.values())  # a repeat: one query
    done = _pool().map(lambda r: _now_one(svc, r, moment), distinct)
    found = {r.key: a for r, a in zip(distinct, done, strict=True)}
    answers = [found[r.key] if r is not None else None for r in records]
    return {
        "value": [_entry(a, r, t, u) for (t, u), r, a in zip(asked, records, answers, strict=True)]
    }


def _now_one(svc: Services, record: MailboxRecord, moment: datetime) -> dict[str, Any]:
    window = ag.local_day(moment, _zone(record)[0])
    return fb.now_of(_items(svc, record, window), moment, window.end)


def _entry(
    answer: dict[str, Any] | None, record: MailboxRecord | None, tenant: str, user: str
) -> dict[str, Any]:
    if record is None or answer is None:
        return {
            "tenantId": tenant,
            "user": user,
            "enrolled": False,
            "status": "notEnrolled",
            "current": None,
            "next": None,
        }
    return {
        "tenantId": tenant,
        "user": user,
        "enrolled": True,
        "userId": record.key.user_id,
        "calendar": record.key.calendar_name,
        "timeZone": _zone(record)[1],
    } | answer
