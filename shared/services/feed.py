"""The change feed: its durable log is the change rows the mirror writes in the same Table
transaction as each change (feed_tables), so nothing stands between a committed mirror change
and the feed: `GET .../changes` reads that log, webhooks and the `calendar-changes` queue are
delivery targets of it (services.delivery), each with its own cursor.

After a write, `dispatch` queues the delivery work items (one per target that wants a change of
the batch); that is all the mirror's path does for the feed. A crash between the transaction
and `dispatch` loses nothing: the changes are in the log, and the delivery sweep finds every
target behind its mailbox's log.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.compose import Services
from shared.core.feed import ChangeEvent, format_sequence, parse_sequence
from shared.core.model import MailboxKey
from shared.errors import CalsyncError, InputError, NotFoundError
from shared.services import delivery
from shared.services.mailboxes import find, find_removed
from shared.services.publish import QUEUE_TARGET

if TYPE_CHECKING:
    from shared.adapters.feed_tables import ChangeLog

log = logging.getLogger("calsync.feed")


def _feed_log(svc: Services) -> ChangeLog:
    if svc.changes is None:
        raise CalsyncError("the change feed is not configured for these services")
    return svc.changes


def dispatch(svc: Services, key: MailboxKey, written: list[ChangeEvent]) -> int:
    """Hand changes just written (oldest first) to their delivery targets; how many work items
    were queued. Never raises a storage failure (the sweep queues what this could not)."""
    if not written or svc.changes is None:
        return 0
    return delivery.dispatch(svc, key, written)


def run_prune(svc: Services) -> int:
    """Delete every mailbox's changes older than CHANGES_RETENTION_DAYS, and the status chart's
    counts of those hours; returns how many changes (a mailbox whose prune fails is logged and
    skipped, never stopping the others)."""
    changes = svc.changes
    if changes is None:
        return 0
    before = svc.now() - timedelta(days=svc.settings.changes_retention_days)
    pruned = 0
    enrolled = {m.key: m for m in svc.state.list_mailboxes()}
    for mailbox in enrolled.values():
        try:
            pruned += changes.prune(mailbox.key, before)
        except CalsyncError as exc:
            log.warning("changes of %s not pruned: %s", mailbox.key.user_id, exc.message)
    # Purged mailboxes: their change rows stay until they are past retention, then go with
    # the row that remembers them (all their changes predate the removal).
    for key, _, removed_at in changes.removed():
        again = enrolled.get(key)
        try:
            if again is not None and again.enrolled_at and again.enrolled_at > removed_at:
                changes.forget_removed(key)  # enrolled again: pruned as enrolled above
                continue
            if again is None:
                pruned += changes.prune(key, before)
            if removed_at < before:
                changes.forget_removed(key)
        except CalsyncError as exc:
            log.warning("changes of removed %s not pruned: %s", key.user_id, exc.message)
    if svc.webhooks is not None:  # the chart's counts: it shows a day, they go with the feed
        try:
            svc.webhooks.prune_counts(QUEUE_TARGET.id, before)
        except CalsyncError as exc:
            log.warning("change counts not pruned: %s", exc.message)
    return pruned


def hourly_counts(svc: Services, hours: int = 24) -> list[tuple[datetime, int]]:
    """Changes per hour over the last `hours` hours, oldest first, every hour present."""
    top = svc.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    first = top - timedelta(hours=hours)
    counts = svc.webhooks.counts(QUEUE_TARGET.id, first, top) if svc.webhooks else {}
    if svc.changes is not None:  # the hours an earlier version counted in `changes`
        for hour, n in svc.changes.hourly(first, top).items():
            counts[hour] = counts.get(hour, 0) + n
    return [
        (first + timedelta(hours=h), counts.get(first + timedelta(hours=h), 0))
        for h in range(hours)
    ]


MAX_READ = 1000
DEFAULT_READ = 100


def _feed_key(svc: Services, tenant_id: str, user: str) -> MailboxKey:
    """The enrolled calendar, or a purged one whose changes are still kept."""
    try:
        return find(svc, tenant_id, user).key
    except NotFoundError:
        gone = find_removed(svc, tenant_id, user)
        if gone is None:
            raise
        return gone


def read(
    svc: Services, tenant_id: str, user: str, after: str | None, limit: str | None
) -> dict[str, Any]:
    """A page of a mailbox's changes after the cursor `after` (a sequence from an earlier page;
    none: from the oldest kept), oldest first; `next` is the cursor for the following page."""
    key = _feed_key(svc, tenant_id, user)
    cursor = parse_sequence(after, "after") if after else -1
    count = DEFAULT_READ
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_READ:
            raise InputError(f"limit={limit!r} must be a whole number from 1 to {MAX_READ}")
        count = int(limit)
    changes = _feed_log(svc)
    page = changes.read_after(key, cursor, count)
    last = page[-1].sequence if page else cursor
    return {
        "tenantId": key.tenant_id,
        "userId": key.user_id,
        "calendar": key.calendar_name,
        "count": len(page),
        "value": [change.to_json() for change in page],
        "next": format_sequence(last) if last >= 0 else None,
        "more": len(page) == count,
    }
