"""GET /api/status: the operator's page, built from the mailbox records (one Table query)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from shared import __version__
from shared.compose import Services
from shared.core.expiry import parse_status, status_warning
from shared.core.oplog import credential_row
from shared.core.state import MailboxRecord
from shared.core.status_page import render_status_page
from shared.errors import StorageError
from shared.services import feed


def _row(record: MailboxRecord, svc: Services) -> dict[str, Any]:
    s, now = record.status, svc.now()
    health = record.health(now)
    return {
        "tenant": record.key.tenant_id,
        "user": record.upn or record.key.user_id,
        "calendar": f"{record.calendar_name} ({record.key.calendar})"
        if record.key.calendar
        else "",
        "state": record.state.value,
        "mode": s.mode,
        "health": health,
        "ok": health.startswith("ok"),
        "subscription_expiry": s.subscription_expiry,
        "last_sync": s.last_sync,
        "lag_seconds": (now - s.last_sync).total_seconds() if s.last_sync else None,
        "last_error": s.last_error,
        "last_error_code": s.last_error_code,
        "event_count": s.event_count,
    }


def run_status_page(svc: Services) -> str:
    """The page's HTML: failing mailboxes first, then by tenant and user."""
    rows = [_row(m, svc) for m in svc.state.list_mailboxes()]
    rows.sort(key=lambda r: (r["ok"], r["tenant"], r["user"]))
    return render_status_page(
        rows,
        now=svc.now(),
        version=__version__,
        credential=_credential(svc),
        hours=_hours(svc),
        subscribers=_failing_subscribers(svc),
    )


def _hours(svc: Services) -> list[tuple[datetime, int]]:
    """The last day's changes per hour; none when the counts cannot be read (the page still
    shows the mailboxes)."""
    try:
        return feed.hourly_counts(svc)
    except StorageError:
        return []


def _failing_subscribers(svc: Services) -> list[dict[str, Any]]:
    """The webhook subscribers that are failing or disabled (a storage failure hides them)."""
    if svc.webhooks is None:
        return []
    try:
        subs = svc.webhooks.all()
    except StorageError:
        return []
    return [
        {
            "id": s.id,
            "host": urlsplit(s.url).hostname or "",
            "status": s.status,
            "since": s.failing_since,
            "last_error": s.disabled_reason or s.last_error,
        }
        for s in sorted(subs, key=lambda s: s.id)
        if s.status != "ok"
    ]


def _credential(svc: Services) -> str:
    """The expiry watch's warning, if any (a storage failure here only hides it)."""
    if svc.oplog is None:
        return ""
    try:
        row = svc.oplog.get_status(credential_row(svc.settings.client_id))
    except StorageError:
        return ""
    return status_warning(parse_status(row)) if row else ""
