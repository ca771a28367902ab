"""The change feed's relay and reads: change events written with the mirror (the outbox rows of
a mailbox's events partition) copied, in order, to the `changes` table and the
`calendar-changes` queue, then removed from the outbox.

The relay is at least once: a crash between the copy and the removal copies the same rows
again (same sequence, same change id), so readers and queue consumers deduplicate on the id.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.compose import Services
from shared.core.feed import ChangeEvent, format_sequence, parse_sequence
from shared.core.model import MailboxKey
from shared.errors import CalsyncError, InputError
from shared.services import delivery
from shared.services.mailboxes import find

if TYPE_CHECKING:
    from shared.adapters.feed_tables import ChangeLog

log = logging.getLogger("calsync.feed")

RELAY_BATCH = 500


def _feed_log(svc: Services) -> ChangeLog:
    if svc.changes is None:
        raise CalsyncError("the change feed is not configured for these services")
    return svc.changes


def relay(svc: Services, key: MailboxKey) -> list[ChangeEvent]:
    """Move a mailbox's pending change events to the feed; returns them, oldest first."""
    changes = _feed_log(svc)
    moved: list[ChangeEvent] = []
    while True:
        pending = svc.state.outbox(key, limit=RELAY_BATCH)
        if not pending:
            break
        batch = [change for _, change in pending]
        changes.put(batch)
        changes.publish(batch)
        svc.state.drop_outbox(key, [row_key for row_key, _ in pending])
        _count(svc, key, batch)
        moved.extend(batch)
        if len(pending) < RELAY_BATCH:
            break
    delivery.dispatch(svc, key, moved)  # the webhook subscribers' work items
    return moved


def run_prune(svc: Services) -> int:
    """Delete every mailbox's changes older than CHANGES_RETENTION_DAYS; returns how many (a
    mailbox whose prune fails is logged and skipped, never stopping the others)."""
    changes = svc.changes
    if changes is None:
        return 0
    before = svc.now() - timedelta(days=svc.settings.changes_retention_days)
    pruned = 0
    for mailbox in svc.state.list_mailboxes():
        try:
            pruned += changes.prune(mailbox.key, before)
        except CalsyncError as exc:
            log.warning("changes of %s not pruned: %s", mailbox.key.user_id, exc.message)
    return pruned


def _count(svc: Services, key: MailboxKey, batch: list[ChangeEvent]) -> None:
    """Count the batch per hour for the status page's chart; a count that fails is logged, never
    failing the relay (the feed itself is already written)."""
    changes = _feed_log(svc)
    hours: dict[datetime, int] = {}
    for change in batch:
        hour = change.occurred_at.replace(minute=0, second=0, microsecond=0)
        hours[hour] = hours.get(hour, 0) + 1
    for hour, n in hours.items():
        try:
            changes.count(key.tenant_id, hour, n)
        except CalsyncError as exc:
            log.warning("changes of %s not counted: %s", key.user_id, exc.message)


def hourly_counts(svc: Services, hours: int = 24) -> list[tuple[datetime, int]]:
    """Changes per hour over the last `hours` hours, oldest first, every hour present."""
    changes = svc.changes
    top = svc.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    first = top - timedelta(hours=hours)
    counts = changes.hourly(first, top) if changes is not None else {}
    return [
        (first + timedelta(hours=h), counts.get(first + timedelta(hours=h), 0))
        for h in range(hours)
    ]


MAX_READ = 1000
DEFAULT_READ = 100


def read(
    svc: Services, tenant_id: str, user: str, after: str | None, limit: str | None
) -> dict[str, Any]:
    """A page of a mailbox's changes after the cursor `after` (a sequence from an earlier page;
    none: from the oldest kept), oldest first; `next` is the cursor for the following page."""
    record = find(svc, tenant_id, user)
    cursor = parse_sequence(after, "after") if after else -1
    count = DEFAULT_READ
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_READ:
            raise InputError(f"limit={limit!r} must be a whole number from 1 to {MAX_READ}")
        count = int(limit)
    changes = _feed_log(svc)
    page = changes.read_after(record.key, cursor, count)
    last = page[-1].sequence if page else cursor
    return {
        "tenantId": record.key.tenant_id,
        "userId": record.key.user_id,
        "calendar": record.key.calendar_name,
        "count": len(page),
        "value": [change.to_json() for change in page],
        "next": format_sequence(last) if last >= 0 else None,
        "more": len(page) == count,
    }
