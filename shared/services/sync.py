"""The sync worker: one delta round per mailbox at a time, across any number of hosts.

A round: take the mailbox's lease (cursor entity, ETag-guarded), follow calendarView/delta from the
stored delta link (or from scratch over the window: first sync, `full` request, window roll, 410),
apply each page idempotently to the events table, and commit the new delta link with the lease
release only after every page is applied. A full round diffs the mirror against what Graph listed,
so deletions during a gap are found; the number of such corrections is the drift, logged.
Throttling never sleeps here: the request is re-queued with a visibility delay.

https://learn.microsoft.com/graph/delta-query-events
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from shared.compose import Services
from shared.core.coalesce import Fold, Retry, plan_request, stamp_request
from shared.core.graph import delta_follow, delta_start
from shared.core.lease import plan_lease
from shared.core.model import MailboxKey, SyncRequest, Window
from shared.core.paging import MAX_PAGES, iter_delta_pages
from shared.core.reconcile import plan_full_diff, plan_page
from shared.core.retry import plan_backoff
from shared.core.state import CursorRecord, MailboxRecord
from shared.core.times import parse_iso
from shared.core.window import plan_window, window_is_stale
from shared.errors import (
    CalsyncError,
    DeltaExpired,
    GraphError,
    GraphProtocolError,
    StateConflict,
    StorageError,
    Throttled,
    TokenError,
)

log = logging.getLogger("calsync.sync")

LEASE = timedelta(minutes=5)
SAFETY_NET = "safety-net"


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync request came to: ran (with counts), folded, deferred or ignored."""

    result: str
    upserts: int = 0
    deletes: int = 0
    pages: int = 0
    full: bool = False
    drift: int = 0
    added: int = 0  # upserts of ids the mirror did not hold (for the event count)
    total: int | None = None  # size of the mirror after a full round


def run_sync_request(svc: Services, request: SyncRequest) -> SyncOutcome:
    """Handle one sync request from the queue."""
    key = request.mailbox
    mailbox = svc.state.find_mailbox(key)
    if mailbox is None or not mailbox.enabled:
        log.info("sync request for %s ignored: not enrolled or disabled", key.user_id)
        return SyncOutcome("ignored")
    if request.reason.startswith("lifecycle:"):
        request = _lifecycle_action(svc, request)
        mailbox = svc.state.find_mailbox(key) or mailbox
    if request.reason == "notification":
        noted = parse_iso(request.requested_at)
        if noted is not None:
            svc.state.update_status(key, last_notification=noted)
    now = svc.now()
    cursor = svc.state.get_cursor(key)
    decision = plan_request(
        request,
        round_started=cursor.round_started,
        round_completed=cursor.round_completed,
        full_completed=cursor.full_completed,
        lease_until=cursor.lease_until if cursor.lease_owner else None,
        now=now,
    )
    if isinstance(decision, Fold):
        return SyncOutcome("folded")
    if isinstance(decision, Retry):
        svc.queue.put(request, delay=decision.after)
        return SyncOutcome("deferred")
    lease = plan_lease(
        svc.owner,
        cursor.lease_owner or None,
        cursor.lease_until,
        now,
        LEASE,
    )
    if not lease.acquired:
        svc.queue.put(request, delay=min(5.0, lease.remaining) + 0.5)
        return SyncOutcome("deferred")
    try:
        cursor = svc.state.save_cursor(
            replace(cursor, lease_owner=svc.owner, lease_until=lease.until, round_started=now)
        )
    except StateConflict:
        svc.queue.put(request, delay=1.0)  # another host took it between our read and write
        return SyncOutcome("deferred")
    # "round begin/end" lines let operators (and the two-host test) see that rounds of one
    # mailbox never overlap: "end" is logged just before the write that releases the lease.
    log.info("round begin %s by %s at %.6f", key.partition, svc.owner, time.time())
    return _round(svc, request, mailbox, cursor)


def _round(
    svc: Services, request: SyncRequest, mailbox: MailboxRecord, cursor: CursorRecord
) -> SyncOutcome:
    key, now = mailbox.key, svc.now()
    window = plan_window(now, mailbox.options)
    full = (
        request.full
        or not cursor.delta_link
        or cursor.window is None
        or window_is_stale(cursor.window, now, mailbox.options)
    )
    old = cursor.window if request.reason == SAFETY_NET and cursor.delta_link else None
    drift = 0
    try:
        try:
            if old is not None:
                # Catch up with real changes on the cursor's own window first, then list that
                # window in full: whatever the full pass still corrects is drift. Only then roll
                # the window forward (a full pass of the new window) if the day has moved on.
                _, link = _follow(svc, mailbox, cursor, old, full=False)
                cursor = replace(cursor, delta_link=link)
                checked, link = _follow(svc, mailbox, cursor, old, full=True, count_drift=True)
                cursor = replace(cursor, delta_link=link)
                drift = checked.drift
                if old == window:
                    outcome, delta_link = checked, link
                else:
                    outcome, delta_link = _follow(svc, mailbox, cursor, window, full=True)
            else:
                outcome, delta_link = _follow(svc, mailbox, cursor, window, full=full)
            outcome = replace(outcome, drift=drift)
        except DeltaExpired:
            log.warning("delta token of %s expired: full resync of the window", key.user_id)
            outcome, delta_link = _follow(svc, mailbox, cursor, window, full=True)
    except Throttled as exc:
        _release(svc, cursor)
        delay = plan_backoff(1, exc.retry_after or None, svc.rng)
        svc.queue.put(request, delay=delay)
        _record_error(svc, mailbox, exc, result="throttled; re-queued")
        return SyncOutcome("throttled")
    except (GraphError, TokenError) as exc:
        _release(svc, cursor)
        _record_error(svc, mailbox, exc, result="failed")
        if exc.transient:
            raise  # the queue retries it (and poison-queues it after maxDequeueCount)
        return SyncOutcome("failed")
    except StorageError:
        _release(svc, cursor)
        raise
    finished = replace(
        cursor,
        delta_link=delta_link,
        window=window,
        lease_owner="",
        lease_until=None,
        round_completed=cursor.round_started,
        full_completed=cursor.round_started if outcome.full else cursor.full_completed,
    )
    try:
        _log_end(svc, cursor)
        svc.state.save_cursor(finished)
    except StateConflict:
        # Our lease expired and another round took over: its cursor wins; our writes were
        # idempotent upserts of Graph's truth, so nothing is lost.
        log.warning("lease of %s lost during a round; not committing its cursor", key.user_id)
        return replace(outcome, result="superseded")
    if outcome.drift:
        log.warning("full resync of %s corrected %d drifted events", key.user_id, outcome.drift)
    result = f"ok ({'full' if outcome.full else 'delta'}: +{outcome.upserts} -{outcome.deletes})"
    count = outcome.total
    if count is None:
        count = max(0, mailbox.status.event_count + outcome.added - outcome.deletes)
    changes: dict[str, Any] = {
        "last_sync": svc.now(),
        "last_sync_result": result,
        "last_error": "",
        "last_error_code": "",
        "event_count": count,
    }
    svc.state.update_status(key, **changes)
    return outcome


def _follow(
    svc: Services,
    mailbox: MailboxRecord,
    cursor: CursorRecord,
    window: Window,
    *,
    full: bool,
    count_drift: bool = False,
) -> tuple[SyncOutcome, str]:
    """Follow the delta pages to the end; returns the outcome and the new delta link."""
    key, body_type = mailbox.key, mailbox.options.body_type
    mirror = svc.state.stored_versions(key) if full else None
    seen: set[str] = set()
    upserts = deletes = pages = added = 0
    if full or not cursor.delta_link:
        first = delta_start(key, window, body_type=body_type)
    else:
        first = delta_follow(key, cursor.delta_link, body_type=body_type)
    for pages, page in enumerate(iter_delta_pages(first, svc.graph.send, max_pages=MAX_PAGES), 1):
        ids = [item.event_id for item in page.items]
        if mirror is not None:
            stored = {i: mirror[i] for i in ids if i in mirror}
            seen.update(item.event_id for item in page.items if item.removed is None)
        else:
            stored = svc.state.stored_versions(key, ids)
        plan = plan_page(page.items, stored, mailbox.options)
        for event_id, why in plan.skipped:
            log.warning("event %s of %s not mirrored: %s", event_id, key.user_id, why)
        svc.state.apply_events(key, plan.upserts, plan.deletes)
        if mirror is not None:
            for ev in plan.upserts:
                mirror[ev.event_id] = (ev.change_key, ev.content_hash)
            for gone in plan.deletes:
                mirror.pop(gone, None)
                seen.discard(gone)
        upserts, deletes = upserts + len(plan.upserts), deletes + len(plan.deletes)
        added += sum(1 for ev in plan.upserts if ev.event_id not in stored)
        if page.delta_link:
            drift, total = 0, None
            if mirror is not None:
                stale = plan_full_diff(seen, set(mirror))
                svc.state.apply_events(key, (), stale)
                deletes += len(stale)
                drift = upserts + deletes if count_drift else 0
                total = len(mirror) - len(stale)
            outcome = SyncOutcome("ok", upserts, deletes, pages, full, drift, added, total)
            return outcome, page.delta_link
    raise GraphProtocolError(
        f"delta of {key.user_id} ended without a delta link; the cursor was not advanced",
        status=None,
        graph_code="NoDeltaLink",
    )


def _lifecycle_action(svc: Services, request: SyncRequest) -> SyncRequest:
    """Do what a lifecycle event asks before the resync it also needs; the resync is stamped
    after the action, so no earlier round can fold it."""
    from shared.services import subscriptions

    _, event, subscription_id = ([*request.reason.split(":", 2), "", ""])[:3]
    sub = svc.state.get_subscription(request.tenant_id, subscription_id)
    if sub is not None and event == "reauthorizationRequired":
        subscriptions.reauthorize(svc, sub)
    elif sub is not None and event == "subscriptionRemoved":
        subscriptions.recreate(svc, sub)
    return replace(request, reason=f"lifecycle:{event}", requested_at=stamp_request(svc.now()))


def _log_end(svc: Services, cursor: CursorRecord) -> None:
    log.info("round end %s by %s at %.6f", cursor.key.partition, svc.owner, time.time())


def _release(svc: Services, cursor: CursorRecord) -> None:
    _log_end(svc, cursor)
    with contextlib.suppress(StateConflict):
        svc.state.save_cursor(replace(cursor, lease_owner="", lease_until=None))


def _record_error(svc: Services, mailbox: MailboxRecord, exc: CalsyncError, *, result: str) -> None:
    svc.state.update_status(
        mailbox.key,
        last_sync_result=result,
        last_error=exc.message,
        last_error_code=exc.detail_code,
        last_error_at=svc.now(),
    )


def queue_sync(
    svc: Services, key: MailboxKey, reason: str, *, full: bool = False, delay: float = 0.0
) -> None:
    svc.queue.put(
        SyncRequest(key.tenant_id, key.user_id, reason, full, stamp_request(svc.now())), delay=delay
    )
