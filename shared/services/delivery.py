"""Delivery of the change feed to its targets: at least once, in order per (target, mailbox).
The targets are the webhook subscribers and the `calendar-changes` queue (services.publish: a
target with a reserved id, sent a page at a time, never dead-lettered).

- `dispatch` (called after each mirror write with the changes it wrote) queues one work item
  for the queue and one per subscriber whose filter wants any change of the batch. It never
  fails the write: a lost work item is found again by `run_sweep`.
- `run_work_item` (the `webhook-deliveries` queue trigger) leases the pair's cursor (ETag, like
  the sync lease), then sends the pair's owed changes one by one in sequence order: changes
  armed for replay first, then the feed after the cursor. Each delivered change moves the cursor
  (and renews the lease); a failure schedules the next attempt on the cursor (`next_at`, from
  `core.webhooks.retry_delay`) and re-queues the work item with that visibility delay, so one
  failing receiver holds no worker and no other pair. After the last attempt the change is
  dead-lettered and the pair moves on. A work item for a pair leased elsewhere comes back a
  moment later; one arriving before `next_at` is dropped (the retry is already queued).
- A page of the log shorter than PAGE is its end: the last delivered change's save releases
  the lease and the log is not read again. A change written after that read has a work item
  of its own, queued by its `dispatch` (core.webhooks.Coalescer: a write either queues one or
  is covered by one still invisible, which reads the log later), or found by the sweep. So one
  change costs six Table requests: the subscriber (with its secret), the cursor, the lease,
  the changes armed for replay, the log and the release (it was eleven).
- A work item runs for at most `BUDGET_SECONDS`, then queues its own continuation: a slow
  receiver never keeps a worker from the other pairs for long.
- `run_sweep` (timer) queues a work item for every pair with a change after its cursor that is
  neither leased nor waiting for a retry (one point read of the mailbox's sequence, then one
  single-row range query per pair behind it, never a scan): a crash or a lost message never
  strands changes (nor a crash right after a mirror write, before its `dispatch`). Only the
  first run of each hour reads every mailbox; the others read those with recent activity or
  a pair not at rest (core.webhooks.sweep_checks), so an idle tenant's sweep costs its three
  listings, not a read per mailbox.
- A subscriber starts at the changes that occur after it was registered (a pair without a
  cursor skips older ones); `replay` delivers older ones on request.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from shared.adapters.webhook_tables import WebhookStore, decode_item
from shared.compose import Services
from shared.core import oplog
from shared.core.feed import ChangeEvent
from shared.core.model import MailboxKey
from shared.core.webhooks import (
    FAILING_AFTER,
    PairCursor,
    Subscriber,
    WorkItem,
    judge,
    retry_delay,
    sweep_checks,
    sweep_is_full,
)
from shared.errors import CalsyncError, InputError, NotFoundError, StateConflict
from shared.services import publish
from shared.services.publish import QUEUE_TARGET

log = logging.getLogger("calsync.webhooks")

LEASE = timedelta(seconds=60)
BUDGET_SECONDS = 20.0
PAGE = 50
DEFER_SECONDS = 2.0  # a work item for a pair leased elsewhere comes back after this
DELIVERED_STAMP_EVERY = timedelta(minutes=1)  # a subscriber's lastDeliveredAt is this fresh
_coalescing = threading.Lock()  # Services.deliveries_due is shared by the host's threads


def store_of(svc: Services) -> WebhookStore:
    if svc.webhooks is None or svc.sender is None or svc.changes is None:
        raise CalsyncError("webhook delivery is not configured for these services")
    return svc.webhooks


def dispatch(svc: Services, key: MailboxKey, batch: list[ChangeEvent]) -> int:
    """Queue a work item for the `calendar-changes` queue and for each subscriber that wants a
    change of `batch`, unless one queued moments ago covers it (core.webhooks.Coalescer); how
    many. Never raises a storage failure (the sweep queues what this could not)."""
    if not batch or svc.webhooks is None:
        return 0
    queued = 0
    try:
        wanting = [QUEUE_TARGET.id] + [
            sub.id
            for sub in svc.webhooks.all()
            if sub.enabled and any(sub.filter.matches(c) for c in batch)
        ]
    except CalsyncError as exc:
        log.warning("webhooks: could not queue deliveries for %s: %s", key.user_id, exc.message)
        wanting = [QUEUE_TARGET.id]
    for target in wanting:
        pair = (target, key.partition)
        with _coalescing:
            delay = svc.deliveries_due.plan(pair, time.monotonic())
        if delay is None:
            continue
        try:
            svc.webhooks.enqueue(
                WorkItem(target, key.tenant_id, key.user_id, key.calendar), delay=delay
            )
            queued += 1
        except CalsyncError as exc:
            with _coalescing:
                svc.deliveries_due.forget(pair)
            log.warning("deliveries for %s not queued: %s", key.user_id, exc.message)
    return queued


def run_work_item(svc: Services, body: bytes | str) -> str:
    """One delivery queue message: deliver what the pair is owed; a one-word outcome."""
    store = store_of(svc)
    try:
        item = decode_item(body)
    except InputError as exc:
        # A work item only points at a pair (the sweep finds any pair owed changes): an
        # unreadable one is logged and dropped, never retried.
        log.error("webhooks: dropped a delivery work item: %s", exc.message)
        return "dropped"
    secret = ""
    try:
        if item.subscriber_id == QUEUE_TARGET.id:
            sub = QUEUE_TARGET
        else:
            sub, secret = store.signing(item.subscriber_id)
    except NotFoundError:
        return "gone"  # removed since the item was queued
    if not sub.enabled:
        return "disabled"
    key = MailboxKey(item.tenant_id.lower(), item.user_id.lower(), item.calendar)
    cursor = store.cursor(sub.id, key.partition)
    now = svc.now()
    # The lease is this run's, not the host's: two work items of one pair that one host runs
    # side by side must not both deliver.
    owner = f"{svc.owner}:{uuid.uuid4().hex[:8]}"
    if cursor.leased_by_other(owner, now):
        store.enqueue(item, delay=DEFER_SECONDS)
        return "deferred"
    if cursor.waiting(now):
        return "waiting"
    if not cursor.etag and sub is QUEUE_TARGET:
        cursor = publish.start(svc, key, cursor)
    elif not cursor.etag and sub.created_at is not None:
        cursor = _start_after_registration(svc, sub, key, cursor)
    try:
        cursor = store.save_cursor(
            replace(cursor, lease_owner=owner, lease_until=now + LEASE, next_at=None)
        )
    except StateConflict:
        store.enqueue(item, delay=DEFER_SECONDS)
        return "deferred"
    try:
        if sub is QUEUE_TARGET:
            return publish.run_pair(
                svc, store, key, item, cursor, lease=LEASE, budget=BUDGET_SECONDS
            )
        return _deliver(svc, store, sub, secret, key, item, cursor)
    except StateConflict:
        return "lost lease"  # another host took over after our lease ran out


def _start_after_registration(
    svc: Services, sub: Subscriber, key: MailboxKey, cursor: PairCursor
) -> PairCursor:
    """A new pair starts after the mailbox's last change from before the subscriber existed."""
    assert svc.changes is not None
    last = -1
    after = -1
    while True:
        page = svc.changes.read_after(key, after, limit=200)
        for change in page:
            if sub.created_at is not None and change.occurred_at >= sub.created_at:
                return replace(cursor, delivered=last)
            last = change.sequence
        if len(page) < 200:
            return replace(cursor, delivered=last)
        after = page[-1].sequence


def _release(store: WebhookStore, cursor: PairCursor) -> PairCursor:
    return store.save_cursor(replace(cursor, lease_owner="", lease_until=None))


def _deliver(
    svc: Services,
    store: WebhookStore,
    sub: Subscriber,
    secret: str,
    key: MailboxKey,
    item: WorkItem,
    cursor: PairCursor,
) -> str:
    assert svc.changes is not None
    assert svc.sender is not None
    started = time.monotonic()
    delivered_any = False
    while True:
        armed = store.dead_letters(sub.id, key.partition, armed=True)
        todo: list[tuple[ChangeEvent, str]] = [(d.change, d.row_key) for d in armed[:PAGE]]
        if not todo:
            todo = [(c, "") for c in svc.changes.read_after(key, cursor.delivered, limit=PAGE)]
            end = len(todo) < PAGE  # the log's end: not read again (module docstring)
        else:
            end = False
        if not todo:
            _release(store, cursor)
            _delivered(svc, store, sub, delivered_any)
            return "done"
        for n, (change, armed_row) in enumerate(todo):
            final = end and n == len(todo) - 1
            if not armed_row and not sub.filter.matches(change):
                cursor = replace(cursor, delivered=change.sequence)
                continue
            answer = svc.sender.send(sub.url, secret, change)
            now = svc.now()
            _log_attempt(svc, sub, change, answer.status, answer.duration_ms, answer.error)
            verdict = judge(answer.status)
            if verdict == "delivered":
                delivered_any = True
                if armed_row:
                    store.drop_dead_letter(sub.id, armed_row)
                cursor = store.save_cursor(
                    replace(
                        cursor,
                        delivered=cursor.delivered if armed_row else change.sequence,
                        attempt=0,
                        next_at=None,
                        last_error="",
                        last_status=answer.status,
                        lease_owner="" if final else cursor.lease_owner,
                        lease_until=None if final else now + LEASE,
                    )
                )
                if final:  # that save released the lease
                    _delivered(svc, store, sub, delivered_any)
                    return "done"
                continue
            if verdict == "gone":
                reason = f"the receiver answered 410 Gone at {now.isoformat()}: disabled"
                store.update(sub.id, enabled=False, disabled_reason=reason)
                _release(store, replace(cursor, last_status=answer.status, last_error=reason))
                log.warning("webhooks: subscriber %s disabled: %s", sub.id, reason)
                return "disabled"
            attempt = cursor.attempt + 1
            error = answer.error or "failed"
            delay = retry_delay(attempt, svc.rng.random())
            if delay is None:
                store.dead_letter(sub.id, change, f"{attempt} attempts; last: {error}")
                cursor = store.save_cursor(
                    replace(
                        cursor,
                        delivered=cursor.delivered if armed_row else change.sequence,
                        attempt=0,
                        next_at=None,
                        last_error=error,
                        last_status=answer.status,
                        dead_letters=cursor.dead_letters + 1,
                        lease_until=now + LEASE,
                    )
                )
                _mark_failing(store, sub, now, f"change {change.change_id} dead-lettered: {error}")
                log.warning(
                    "webhooks: subscriber %s: change %s dead-lettered after %d attempts (%s)",
                    sub.id,
                    change.change_id,
                    attempt,
                    error,
                )
                continue
            store.save_cursor(
                replace(
                    cursor,
                    attempt=attempt,
                    next_at=now + timedelta(seconds=delay),
                    last_error=error,
                    last_status=answer.status,
                    lease_owner="",
                    lease_until=None,
                )
            )
            store.enqueue(item, delay=delay)
            _delivered(svc, store, sub, delivered_any)
            if attempt >= FAILING_AFTER:
                _mark_failing(store, sub, now, f"{attempt} attempts in a row failed: {error}")
            return "retry"
        if end:
            _release(store, cursor)
            _delivered(svc, store, sub, delivered_any)
            return "done"
        if time.monotonic() - started > BUDGET_SECONDS:
            _release(store, cursor)
            store.enqueue(item)
            _delivered(svc, store, sub, delivered_any)
            return "continued"
        cursor = store.save_cursor(replace(cursor, lease_until=svc.now() + LEASE))


def _delivered(svc: Services, store: WebhookStore, sub: Subscriber, delivered: bool) -> None:
    """After a work item that delivered something: note when (at most every
    DELIVERED_STAMP_EVERY, a write per item otherwise), and clear `failing` unless another pair
    of the subscriber is still failing."""
    if not delivered:
        return
    now = svc.now()
    stamped = sub.last_delivered_at
    if not sub.failing and stamped is not None and now - stamped < DELIVERED_STAMP_EVERY:
        return
    changes: dict[str, Any] = {"last_delivered_at": now}
    if sub.failing and not any(c.attempt >= FAILING_AFTER for c in store.cursors_of(sub.id)):
        changes |= {"failing": False, "failing_since": None, "last_error": ""}
    store.update(sub.id, **changes)


def _mark_failing(store: WebhookStore, sub: Subscriber, now: Any, why: str) -> None:
    if sub.failing:
        store.update(sub.id, last_error=why)
    else:
        store.update(sub.id, failing=True, failing_since=now, last_error=why)


def _log_attempt(
    svc: Services, sub: Subscriber, change: ChangeEvent, status: int | None, ms: float, error: str
) -> None:
    """One operations log row per delivery attempt (direction out, like a Graph call)."""
    if svc.oplog is None:
        return
    svc.oplog.record(
        oplog.LogRecord(
            "out",
            svc.now(),
            change.tenant_id,
            change.user_id,
            "POST",
            oplog.redact_target(sub.url),
            status or 0,
            ms,
            kind="webhook",
            request_id=change.change_id,
            error=error[:100],
        )
    )


def run_sweep(svc: Services, *, full: bool | None = None) -> dict[str, int]:
    """Queue a work item for each pair behind its mailbox's feed that nobody is delivering:
    `queued` counts the webhook pairs, `publish` the `calendar-changes` pairs, `skipped` the
    mailboxes a partial sweep left unread (core.webhooks.sweep_checks; `full`: None decides by
    the clock, the first run of each hour)."""
    store = store_of(svc)
    assert svc.changes is not None
    subs = [s for s in store.all() if s.enabled]
    counts = {"subscribers": len(subs), "queued": 0, "publish": 0, "skipped": 0}
    subs.append(QUEUE_TARGET)
    now = svc.now()
    full = sweep_is_full(now) if full is None else full
    cursors = {(c.subscriber_id, c.partition): c for c in store.cursors_of()}
    of_mailbox: dict[str, list[PairCursor]] = {}
    for cursor in cursors.values():
        of_mailbox.setdefault(cursor.partition, []).append(cursor)
    for mailbox in svc.state.list_mailboxes():
        if not mailbox.enabled:
            continue
        key = mailbox.key
        active = (mailbox.status.last_sync, mailbox.status.last_notification)
        if not full and not sweep_checks(active, of_mailbox.get(key.partition, []), now):
            counts["skipped"] += 1
            continue
        wanting = [
            s
            for s in subs
            if s.filter.matches_mailbox(key.tenant_id, key.user_id, key.calendar_name)
        ]
        latest = svc.changes.latest(key)  # one point read: nothing after it is owed to anyone
        for sub in wanting:
            cursor = cursors.get((sub.id, key.partition)) or PairCursor(sub.id, key.partition)
            if cursor.delivered >= latest:
                continue
            if cursor.leased_by_other("", now) or cursor.waiting(now, slack=timedelta(0)):
                continue
            # One row at most, from the cursor on: is anything owed (not pruned meanwhile)?
            if not svc.changes.read_after(key, cursor.delivered, limit=1):
                continue
            store.enqueue(WorkItem(sub.id, key.tenant_id, key.user_id, key.calendar))
            counts["publish" if sub is QUEUE_TARGET else "queued"] += 1
    return counts
