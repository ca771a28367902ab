"""The sync worker: one delta round per mailbox at a time, across any number of hosts.

A round: take the mailbox's lease (cursor entity, ETag-guarded), follow calendarView/delta from the
stored delta link (or from scratch over the window: first sync, `full` request, window roll, 410),
apply each page idempotently to the events table, and commit the new delta link with the lease
release only after every page is applied. A full round diffs the mirror against what Graph listed,
so deletions during a gap are found; the number of such corrections is the drift, logged.
Throttling never sleeps here: the request is re-queued with a visibility delay, and the mailbox
keeps Graph's Retry-After on its cursor so that every request for it waits. A round that fails
is never dropped: core.rounds.plan_recovery re-queues it with its attempt counted (backoff up
to an hour), and the mailbox status shows `retry_at` and `retry_reason` until a round succeeds.

A calendar other than the mailbox's default one follows
`users/{id}/calendars/{id}/calendarView/delta`; when Graph refuses that (core.listing), the round
lists the calendar's calendarView and diffs it against the mirror instead.

https://learn.microsoft.com/graph/delta-query-events
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.compose import Services
from shared.core import lifecycle as lc
from shared.core.graph import calendar_view_live, delta_follow, delta_start
from shared.core.listing import LISTING_LINK, is_refusal, listing_pages
from shared.core.model import (
    DeltaPageData,
    SyncRequest,
    Trigger,
    Window,
)
from shared.core.paging import MAX_PAGES, iter_delta_pages, iter_events
from shared.core.reconcile import plan_full_diff
from shared.core.rounds import (
    CONFLICT_DEFER_SECONDS,
    Defer,
    Fold,
    Requeue,
    Run,
    Slide,
    lease_due,
    plan_recovery,
    plan_round,
    renewed_lease,
    stamp_request,
    takeover_after,
)
from shared.core.state import CursorRecord, MailboxRecord
from shared.core.times import parse_iso
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
from shared.services import mirror as mirror_writes
from shared.services import subscriptions
from shared.services.lifecycle import advance_if_allowed, restore_credentials
from shared.telemetry import bind, dims, round_span, trace_id_of

log = logging.getLogger("calsync.sync")


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
    delta_link: str = ""  # where the next round follows from (not yet committed)


_LIFECYCLE_EVENTS: dict[
    str, type[lc.ReauthorizationRequired | lc.SubscriptionRemoved | lc.Missed]
] = {
    "reauthorizationRequired": lc.ReauthorizationRequired,
    "subscriptionRemoved": lc.SubscriptionRemoved,
    "missed": lc.Missed,
}


class _Lease:
    """The round's hold on the cursor: renewed after a page when due (core.rounds.lease_due;
    ETag-guarded, so a round whose lease was taken over fails with StateConflict); after the
    first page the takeover copy is queued."""

    def __init__(self, svc: Services, cursor: CursorRecord, request: SyncRequest) -> None:
        self._svc, self.cursor, self._request, self._watched = svc, cursor, request, False

    def renew(self) -> None:
        svc = self._svc
        now = svc.now()
        if lease_due(now, self.cursor.lease_until):
            self.cursor = svc.state.save_cursor(
                replace(self.cursor, lease_until=renewed_lease(now))
            )
        if not self._watched:
            svc.queue.put(self._request, delay=takeover_after())
            self._watched = True


def run_sync_request(svc: Services, request: SyncRequest) -> SyncOutcome:
    """Handle one sync request from the queue: plan it, then fold, defer or run the round;
    within a span continuing the request's trace, its logs carrying the round's dimensions."""
    with (
        round_span(request.traceparent, svc.rng) as round_id,
        bind(
            tenant_id=request.tenant_id,
            user_id=request.user_id,
            trigger=request.trigger.value,
            round_id=round_id,
            trace_id=trace_id_of(request.traceparent),
            attempt=request.attempt,
        ),
    ):
        outcome = _run_request(svc, request)
        _measure(svc, request, outcome)
        return outcome


def _measure(svc: Services, request: SyncRequest, outcome: SyncOutcome) -> None:
    """The round's metrics: its result, and for a round that ran, the lag from the request's
    stamp (the notification's arrival, or the timer's) to the mirror updated, and the drift."""
    tenant, trigger = request.tenant_id, request.trigger.value
    svc.metrics.round(tenant_id=tenant, trigger=trigger, result=outcome.result, full=outcome.full)
    if outcome.result != "ok":
        return
    stamped = parse_iso(request.requested_at)
    if stamped is not None:
        lag = (svc.now() - stamped).total_seconds()
        svc.metrics.lag(lag, tenant_id=tenant, trigger=trigger)
    svc.metrics.drift(outcome.drift, tenant_id=tenant)


def _run_request(svc: Services, request: SyncRequest) -> SyncOutcome:
    key = request.mailbox
    mailbox = svc.state.find_mailbox(key)
    if mailbox is None or not mailbox.enabled:
        log.info("sync request for %s ignored: not enrolled or disabled", key.user_id)
        return SyncOutcome("ignored")
    if request.trigger is Trigger.LIFECYCLE:
        mailbox, request = _lifecycle_step(svc, mailbox, request)
    now = svc.now()
    cursor = svc.state.get_cursor(key)
    settings = svc.settings
    plan = plan_round(
        request,
        cursor,
        mailbox.options,
        now=now,
        margin_days=settings.window_margin_days,
        safety_net_days=settings.safety_net_days,
    )
    if request.trigger is Trigger.NOTIFICATION:
        _note_notification(svc, mailbox, request, folded=isinstance(plan, Fold))
    if isinstance(plan, Fold):
        return SyncOutcome("folded")
    if isinstance(plan, Slide):  # no Graph request: the user's window slides over the mirror
        slid = mirror_writes.slide(svc, mailbox)
        return SyncOutcome("slid", upserts=len(slid))
    if isinstance(plan, Defer):
        svc.queue.put(request, delay=plan.after)
        return SyncOutcome("deferred")
    try:
        cursor = svc.state.save_cursor(
            replace(cursor, lease_owner=svc.owner, lease_until=plan.lease_until, round_started=now)
        )
    except StateConflict:
        svc.queue.put(request, delay=CONFLICT_DEFER_SECONDS)  # another host took it first
        return SyncOutcome("deferred")
    # "round begin/end" lines let operators (and the two-host test) see that rounds of one
    # mailbox never overlap: "end" is logged just before the write that releases the lease.
    log.info(
        "round begin %s by %s at %.6f",
        key.partition,
        svc.owner,
        time.time(),
        extra=dims(full=any(step.full for step in plan.passes)),
    )
    outcome = _round(svc, request, mailbox, cursor, plan)
    if request.trigger is Trigger.ROLL and outcome.result == "ok":
        mirror_writes.slide(svc, mailbox)  # what the passes left as it was may have crossed
    return outcome


NOTED_STEP = timedelta(seconds=60)  # a folded notification's time is kept to this step


def _note_notification(
    svc: Services, mailbox: MailboxRecord, request: SyncRequest, *, folded: bool
) -> None:
    """Record when the mailbox's last notification arrived: always for one that runs a round;
    for one folded into a round already done, only once it is `NOTED_STEP` newer than the time
    recorded (a burst of notifications folds without a status write each)."""
    noted = parse_iso(request.requested_at)
    if noted is None:
        return
    last = mailbox.status.last_notification
    if folded and last is not None and noted - last < NOTED_STEP:
        return
    svc.state.update_status(mailbox.key, last_notification=noted)


def _run_passes(svc: Services, mailbox: MailboxRecord, lease: _Lease, plan: Run) -> SyncOutcome:
    """The plan's passes in order; a 410 in any of them turns into the plan's full pass."""
    link = lease.cursor.delta_link
    try:
        outcome, drift = SyncOutcome("ok"), 0
        for step in plan.passes:
            outcome = _follow(
                svc, mailbox, lease, link, step.window, full=step.full, count_drift=step.count_drift
            )
            link = outcome.delta_link
            drift = outcome.drift if step.count_drift else drift
        return replace(outcome, drift=drift)
    except DeltaExpired:
        log.warning("delta token of %s expired: full resync of the window", mailbox.key.user_id)
        again = plan.on_expired
        return _follow(svc, mailbox, lease, link, again.window, full=again.full)


def _round(
    svc: Services, request: SyncRequest, mailbox: MailboxRecord, cursor: CursorRecord, plan: Run
) -> SyncOutcome:
    key = mailbox.key
    lease = _Lease(svc, cursor, request)
    try:
        outcome = _run_passes(svc, mailbox, lease, plan)
    except StateConflict:
        # The lease could not be renewed: it ran out and another round holds it now. Commit
        # nothing; the request comes back and folds once that round completes.
        log.warning("lease of %s lost during a round; not committing it", key.user_id)
        svc.queue.put(request, delay=CONFLICT_DEFER_SECONDS)
        return SyncOutcome("superseded")
    except StorageError:
        _release(svc, lease.cursor)
        raise  # nothing can be recorded either: the queue retries the message
    except CalsyncError as exc:
        now = svc.now()
        recovery = plan_recovery(exc, request, now=now, rng=svc.rng)
        held = recovery.throttled_until if isinstance(recovery, Requeue) else None
        _release(svc, lease.cursor, throttled_until=held)
        if isinstance(recovery, Requeue):
            svc.queue.put(recovery.request, delay=recovery.after)
            throttled = isinstance(exc, Throttled)
            if throttled:
                svc.metrics.throttled(tenant_id=key.tenant_id, operation="delta")
            _record_error(
                svc,
                mailbox,
                exc,
                result="throttled; re-queued" if throttled else "failed; retry scheduled",
                retry_at=now + timedelta(seconds=recovery.after),
                retry_reason=recovery.reason,
            )
            return SyncOutcome("throttled" if throttled else "retrying")
        _record_error(svc, mailbox, exc, result="failed")
        if isinstance(exc, TokenError) and not exc.transient:
            advance_if_allowed(svc, mailbox, lc.CredentialRejected(exc.detail_code, exc.message))
        return SyncOutcome("failed")
    cursor, delta_link = lease.cursor, outcome.delta_link
    finished = replace(
        cursor,
        delta_link=delta_link,
        window=plan.window,
        lease_owner="",
        lease_until=None,
        throttled_until=None,
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
        log.warning(
            "full resync of %s corrected %d drifted events",
            key.user_id,
            outcome.drift,
            extra=dims(drift=outcome.drift),
        )
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
        "retry_at": None,
        "retry_reason": "",
    }
    svc.state.update_status(key, **changes)
    if mailbox.state is lc.State.CREDENTIAL_INVALID:  # the token works: the whole tenant heals
        restore_credentials(svc, key.tenant_id, synced=key)
    return outcome


def _follow(
    svc: Services,
    mailbox: MailboxRecord,
    lease: _Lease,
    delta_link: str,
    window: Window,
    *,
    full: bool,
    count_drift: bool = False,
) -> SyncOutcome:
    """Follow the delta pages to the end, renewing the lease after each page applied; the
    outcome carries the new delta link. A calendar whose delta Graph refuses (or refused
    before: its link is LISTING_LINK and the pass is not full) is listed and diffed instead."""
    if delta_link == LISTING_LINK and not full:
        return _follow_pages(svc, mailbox, lease, "", window, full=True, listing=True)
    link = "" if delta_link == LISTING_LINK else delta_link
    try:
        return _follow_pages(svc, mailbox, lease, link, window, full=full, count_drift=count_drift)
    except GraphError as exc:
        if isinstance(exc, DeltaExpired) or not is_refusal(
            exc.status, default_calendar=not mailbox.calendar_id
        ):
            raise
        log.warning(
            "calendarView delta of %s refused (%s %s): listing its calendarView instead",
            mailbox.key.label,
            exc.status,
            exc.detail_code,
        )
    return _follow_pages(
        svc, mailbox, lease, "", window, full=True, count_drift=count_drift, listing=True
    )


def _follow_pages(
    svc: Services,
    mailbox: MailboxRecord,
    lease: _Lease,
    delta_link: str,
    window: Window,
    *,
    full: bool,
    count_drift: bool = False,
    listing: bool = False,
) -> SyncOutcome:
    key = mailbox.key
    mirror = svc.state.stored_versions(key) if full else None
    seen: set[str] = set()
    touched: set[str] = set()  # series whose instances changed: their masters are fetched
    upserts = deletes = pages = added = flips = 0
    pages_of = _listing(svc, mailbox, window) if listing else None
    if pages_of is None:
        pages_of = _pages(svc, mailbox, delta_link, window, full=full)
    for pages, page in enumerate(pages_of, 1):
        ids = [item.event_id for item in page.items]
        if mirror is not None:
            stored = {i: mirror[i] for i in ids if i in mirror}
            seen.update(item.event_id for item in page.items if item.removed is None)
        else:
            stored = svc.state.stored_versions(key, ids)
        plan, _ = mirror_writes.apply_items(svc, mailbox, page.items, stored)
        if mirror is not None:
            for ev in plan.upserts:
                mirror[ev.event_id] = mirror_writes.version_of(ev)
            for gone in plan.deletes:
                mirror.pop(gone, None)
                seen.discard(gone)
        touched.update(c.series_master_id for c in plan.changes if c.series_master_id)
        upserts, deletes = upserts + len(plan.upserts), deletes + len(plan.deletes)
        added += sum(1 for ev in plan.upserts if ev.event_id not in stored)
        # A row only shown or hidden (the user's window moved over it) is no drift.
        flips += sum(
            1
            for ev in plan.upserts
            if ev.event_id in stored
            and tuple(stored[ev.event_id][:2]) == (ev.change_key, ev.content_hash)
        )
        if page.delta_link:
            drift, total = 0, None
            # Graph's delta never lists masters: the round fetches them (a full round checks
            # every master it holds). EWS pages carry a series' master with its instances.
            graph = svc.settings.ews_for(key.tenant_id) is None
            if mirror is not None:
                masters = (
                    {i for i, v in mirror.items() if v.kind == "seriesMaster"} if graph else set()
                )
                touched |= masters
                stale = plan_full_diff(seen | masters, set(mirror))
                mirror_writes.delete_ids(svc, mailbox, mirror, stale)
                for gone in stale:
                    mirror.pop(gone, None)
                deletes += len(stale)
            if graph:
                more, fewer, new = mirror_writes.refresh_masters(svc, mailbox, touched, mirror)
                upserts, deletes, added = upserts + more, deletes + fewer, added + new
            if mirror is not None:
                drift = upserts - flips + deletes if count_drift else 0
                total = len(mirror)
            link = page.delta_link
            return SyncOutcome("ok", upserts, deletes, pages, full, drift, added, total, link)
        lease.renew()  # more pages to come: the round is alive (or learns it lost the lease)
    raise GraphProtocolError(
        f"delta of {key.user_id} ended without a delta link; the cursor was not advanced",
        status=None,
        graph_code="NoDeltaLink",
    )


def _pages(
    svc: Services, mailbox: MailboxRecord, delta_link: str, window: Window, *, full: bool
) -> Iterator[DeltaPageData]:
    """The round's pages from the mailbox's provider: EWS (SyncFolderItems, then a
    CalendarView) for a tenant on Exchange Server, else Graph's calendarView/delta."""
    key, body_type = mailbox.key, mailbox.options.body_type
    ews = svc.settings.ews_for(key.tenant_id)
    if ews is not None and svc.ews is not None:
        return svc.ews.iter_pages(
            ews,
            mailbox.upn,
            delta_link,
            window,
            full=full,
            body_type=body_type,
            mirror_ids=lambda: svc.state.stored_versions(key),
        )
    if full or not delta_link:
        first = delta_start(key, window, body_type=body_type, calendar_id=mailbox.calendar_id)
    else:
        first = delta_follow(key, delta_link, body_type=body_type)
    return iter_delta_pages(first, svc.graph.send, max_pages=MAX_PAGES)


def _listing(svc: Services, mailbox: MailboxRecord, window: Window) -> Iterator[DeltaPageData]:
    """The calendar's calendarView over the window, as delta pages (core.listing)."""
    request = calendar_view_live(
        mailbox.key,
        window,
        body_type=mailbox.options.body_type,
        calendar_id=mailbox.calendar_id,
    )
    return listing_pages(iter_events(request, svc.graph.send, max_pages=MAX_PAGES))


def _lifecycle_step(
    svc: Services, mailbox: MailboxRecord, request: SyncRequest
) -> tuple[MailboxRecord, SyncRequest]:
    """Step the mailbox with Graph's lifecycle event (reauthorize, recreate) before the round it
    also needs; that round is stamped after the step, so no earlier round can fold it."""
    kind = _LIFECYCLE_EVENTS.get(request.lifecycle_event)
    sub = svc.state.get_subscription(request.tenant_id, request.subscription_id)
    if kind is not None and sub is not None and sub.mailbox == mailbox.key:
        if not subscriptions.claim_lifecycle(svc, sub, request.lifecycle_event):
            # A copy of an event acted on moments ago: no second reauthorize; its round keeps
            # the intake's stamp, so the round the first copy asked for folds it.
            log.info("%s of %s: a copy, ignored", request.lifecycle_event, sub.subscription_id)
            return mailbox, request
        try:
            event = kind(request.subscription_id)
            stepped = advance_if_allowed(svc, mailbox, event, run_syncs=False)
        except BaseException:
            subscriptions.release_lifecycle(svc, sub)  # a retry of this message must act
            raise
        if stepped is not None:
            mailbox = stepped[0]
    return mailbox, replace(request, requested_at=stamp_request(svc.now()))


def _log_end(svc: Services, cursor: CursorRecord) -> None:
    log.info(
        "round end %s by %s at %.6f", cursor.key.partition, svc.owner, time.time(), extra=dims()
    )


def _release(
    svc: Services, cursor: CursorRecord, *, throttled_until: datetime | None = None
) -> None:
    """Give the lease up without committing; a throttled mailbox keeps Graph's wait with it."""
    _log_end(svc, cursor)
    held = throttled_until or cursor.throttled_until
    with contextlib.suppress(StateConflict):
        svc.state.save_cursor(
            replace(cursor, lease_owner="", lease_until=None, throttled_until=held)
        )


def _record_error(
    svc: Services, mailbox: MailboxRecord, exc: CalsyncError, *, result: str, **more: Any
) -> None:
    log.warning(
        "round of %s %s: %s",
        mailbox.key.user_id,
        result,
        exc.message,
        extra=dims(result=result, error_code=exc.detail_code, request_id=exc.request_id),
    )
    svc.state.update_status(
        mailbox.key,
        last_sync_result=result,
        last_error=exc.message,
        last_error_code=exc.detail_code,
        last_error_at=svc.now(),
        **more,
    )
