"""The `calendar-changes` queue as a delivery target of the change feed: one more pair per
mailbox in services.delivery's machinery (its work items, pair cursors in `deliveries`, leases
and sweep), under the reserved subscriber id `QUEUE_TARGET.id`, which no registered subscriber
takes (theirs are uuid4 hex) and which no listing shows.

- The pair's worker reads the mailbox's log after its cursor a page at a time, sends the page's
  changes side by side, and moves the cursor past the page once every one is on the queue: pages
  go out in order, at least once (a crash before the cursor moved sends the page again, with the
  same change ids; consumers order by `sequence` and deduplicate on `id`). A page shorter than
  PAGE is the log's end: that save also releases the lease, and the log is not read again (a
  change written meanwhile has a work item of its own: core.webhooks.Coalescer).
- A failed send (the queue is down) schedules the next try on the cursor, like a webhook retry,
  but never gives up and waits at most `RETRY_CAP` seconds: the queue is ours, it comes back.
  Nothing else waits for it: the mirror's round ends at its transaction and each webhook
  subscriber has its own pair.
- A new pair starts at the mailbox's first change row not yet published (the rows an earlier
  version copied to the `changes` table it had published then).
- It counts what it publishes per tenant and hour (the status page's chart) in the same
  transaction as the cursor's move (rows beside the pair cursors, webhook_tables).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta

from shared.adapters.webhook_tables import WebhookStore
from shared.compose import Services
from shared.core.feed import ChangeEvent
from shared.core.model import MailboxKey
from shared.core.webhooks import MAX_ATTEMPTS, PairCursor, Subscriber, WorkItem, retry_delay
from shared.errors import StorageError
from shared.names import CHANGES_QUEUE

log = logging.getLogger("calsync.feed")

QUEUE_TARGET = Subscriber(
    id="0" * 32, url=f"queue:{CHANGES_QUEUE}", description="the calendar-changes queue"
)
PAGE = 100  # changes sent side by side, then the cursor moves
RETRY_CAP = 300.0  # seconds between tries while the queue is down


def start(svc: Services, key: MailboxKey, cursor: PairCursor) -> PairCursor:
    """A new pair's cursor: just before the mailbox's first change row (its latest sequence
    when it has none). The sequence is read first: a change written between the two reads is
    then a row the second read finds."""
    assert svc.changes is not None
    latest = svc.changes.latest(key)
    first = svc.changes.first_after(key, -1)
    delivered = latest if first is None else min(latest, first - 1)
    return replace(cursor, delivered=delivered)


def run_pair(
    svc: Services,
    store: WebhookStore,
    key: MailboxKey,
    item: WorkItem,
    cursor: PairCursor,
    *,
    lease: timedelta,
    budget: float,
) -> str:
    """Publish what the leased pair is owed; a one-word outcome (see the module docstring)."""
    assert svc.changes is not None
    started = time.monotonic()
    while True:
        page = svc.changes.read_after(key, cursor.delivered, limit=PAGE)
        if not page:
            store.save_cursor(replace(cursor, lease_owner="", lease_until=None))
            return "done"
        try:
            svc.changes.publish(page)
        except StorageError as exc:
            attempt = cursor.attempt + 1
            delay = min(
                retry_delay(min(attempt, MAX_ATTEMPTS - 1), svc.rng.random()) or 0, RETRY_CAP
            )
            store.save_cursor(
                replace(
                    cursor,
                    attempt=attempt,
                    next_at=svc.now() + timedelta(seconds=delay),
                    last_error=exc.message,
                    lease_owner="",
                    lease_until=None,
                )
            )
            store.enqueue(item, delay=delay)
            log.warning(
                "changes of %s not published (try %d): %s", key.user_id, attempt, exc.message
            )
            return "retry"
        last = len(page) < PAGE  # the log's end: the cursor's save releases the lease too
        cursor = store.save_cursor(
            replace(
                cursor,
                delivered=page[-1].sequence,
                attempt=0,
                next_at=None,
                last_error="",
                lease_owner="" if last else cursor.lease_owner,
                lease_until=None if last else svc.now() + lease,
            ),
            counts=_hours(key, page),
        )
        if last:
            return "done"
        if time.monotonic() - started > budget:
            store.save_cursor(replace(cursor, lease_owner="", lease_until=None))
            store.enqueue(item)
            return "continued"


def _hours(key: MailboxKey, batch: list[ChangeEvent]) -> dict[tuple[str, datetime], int]:
    """The batch's changes per (tenant, hour) for the status page's chart: counted in the
    transaction that moves the cursor past them, so neither a crash nor a retry of the page
    can lose or double them."""
    hours: dict[tuple[str, datetime], int] = {}
    for change in batch:
        hour = change.occurred_at.replace(minute=0, second=0, microsecond=0)
        hours[key.tenant_id, hour] = hours.get((key.tenant_id, hour), 0) + 1
    return hours
