"""Webhook intake: answer the validation handshake, check every item (known subscription, matching
clientState in constant time), queue one sync request per mailbox, answer 202 in milliseconds.
Nothing in a notification is trusted as state: it only says "look again".

A 2xx is only given once every accepted item is on a queue; if the queue cannot be written the
StorageError becomes a 503, and Graph retries. Forged or unknown items are ignored (202: Graph
must not retry them, and nothing is synced for them), with one summary log line per POST.

Bounded work per POST, whatever an anonymous caller sends: the shape, the item cap and the tenant
(one of TENANT_IDS) are checked before any I/O; each distinct (tenant, subscription) is looked up
once, from the intake's memory (core.intake.SubscriptionCache) when it can; more than
MAX_LOOKUPS_PER_POST unknown ones are read 14 to a query (a filter of RowKeys), and past
MAX_KEY_QUERIES_PER_POST such queries (a flood of forged ids) the tenant's subscriptions are
listed once instead: a lifecycle storm's POSTs of 50 items for uncached subscriptions cost four
queries each, not a listing of every subscription of the tenant.
The work runs on the intake's own executor, on its own storage clients, within BUDGET_SECONDS
(Graph marks an endpoint slow past 3 s); past the budget the answer is a 503. Untrusted text is
logged only as repr() (no CR, LF or escape sequence reaches a log line raw).

Each POST is recorded in the operations log (counts, tenant, mailboxes, duration, the answer's
status; never a body or a clientState) by a buffer append: the table write happens later, on the
log's own thread, so it neither slows nor fails the answer.

https://learn.microsoft.com/graph/change-notifications-delivery-webhooks
https://learn.microsoft.com/graph/change-notifications-lifecycle-events
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shared.adapters.tables import MAX_KEYS_PER_QUERY
from shared.compose import Services, intake_pool, intake_send_pool
from shared.core import oplog
from shared.core.intake import Key, SubscriptionCache
from shared.core.model import MailboxKey, SubscriptionRecord, SyncRequest, Trigger
from shared.core.notifications import (
    client_state_matches,
    parse_change_notifications,
    parse_lifecycle_notifications,
    parse_validation_token,
)
from shared.core.rounds import DEBOUNCE_SECONDS, stamp_request
from shared.errors import CalsyncError, StorageError
from shared.telemetry import dims, outgoing_traceparent, trace_id_of

log = logging.getLogger("calsync.intake")

LIFECYCLE_EVENTS = {"reauthorizationRequired", "subscriptionRemoved", "missed"}
BUDGET_SECONDS = 2.5  # Graph: an answer over 3 s counts as slow
MAX_LOOKUPS_PER_POST = 32  # point reads; more unknown subscriptions: queries of 14 keys...
MAX_KEY_QUERIES_PER_POST = 8  # ...up to 112 of them; more: one listing per tenant
MAX_REASONS_LOGGED = 3


@dataclass(frozen=True)
class IntakeResult:
    status: int
    text: str | None = None  # plain-text body (the validation token echo)
    queued: int = 0
    ignored: int = 0
    items: int = 0
    mailboxes: tuple[tuple[str, str], ...] = ()  # (tenant, user) of each mailbox queued
    tenants: tuple[str, ...] = ()  # the tenants the valid items named


def validation_echo(token: str) -> IntakeResult:
    """The handshake: 200 text/plain with the decoded token and nothing else."""
    return IntakeResult(200, parse_validation_token(token))


def _resolve(svc: Services, keys: Iterable[Key]) -> dict[Key, SubscriptionRecord | None]:
    """The stored subscription (or None) for each distinct key: from memory, else from storage."""
    state = svc.intake_state or svc.state
    cache = svc.intake_cache
    found: dict[Key, SubscriptionRecord | None] = {}
    missing: list[Key] = []
    now = time.monotonic()
    for key in dict.fromkeys(keys):
        hit = cache.lookup(key, now=now)
        if hit is SubscriptionCache.MISS:
            missing.append(key)
        else:
            found[key] = hit  # type: ignore[assignment]
    if len(missing) <= MAX_LOOKUPS_PER_POST:
        for key in missing:
            found[key] = state.get_subscription(*key)
            cache.store(key, found[key], now=time.monotonic())
        return found
    chunks = [
        [k for k in missing if k[0] == tenant][n : n + MAX_KEYS_PER_QUERY]
        for tenant in dict.fromkeys(t for t, _ in missing)
        for n in range(0, sum(1 for k in missing if k[0] == tenant), MAX_KEYS_PER_QUERY)
    ]
    if len(chunks) <= MAX_KEY_QUERIES_PER_POST:
        for chunk in chunks:
            records = state.get_subscriptions(chunk[0][0], [sub for _, sub in chunk])
            stamp = time.monotonic()
            for key in chunk:
                found[key] = records.get(key[1])
                cache.store(key, found[key], now=stamp)
        return found
    for tenant in dict.fromkeys(t for t, _ in missing):
        records = {r.subscription_id: r for r in state.list_tenant_subscriptions(tenant)}
        stamp = time.monotonic()
        for record in records.values():
            cache.store((tenant, record.subscription_id), record, now=stamp)
        for key in missing:
            if key[0] == tenant:
                found[key] = records.get(key[1])
                if found[key] is None:
                    cache.store(key, None, now=stamp)
    return found


def _user(
    records: dict[Key, SubscriptionRecord | None],
    index: int,
    tenant_id: str,
    subscription_id: str,
    client_state: str,
) -> tuple[MailboxKey | None, str | None]:
    """(the subscribed calendar, None) if the item is ours and its clientState matches, else
    (None, why not): the reason shows the untrusted id as repr(), shortened. The subscription
    names the calendar: a notification reaches that calendar's mirror only, whatever its
    resource says."""
    sub = records.get((tenant_id, subscription_id))
    if sub is None:
        return None, f"item {index}: unknown subscription {subscription_id[:64]!r}"
    if not client_state_matches(client_state, sub.client_state_digest):
        return None, f"item {index}: wrong clientState for {subscription_id[:64]!r}"
    return sub.mailbox, None


def _send(svc: Services, requests: list[tuple[SyncRequest, float]]) -> None:
    """Every request on the queue with its delay, side by side; returns only when all are
    written (the 2xx promises that), and raises the first failure (a 503: Graph retries the
    whole POST)."""
    queue = svc.intake_queue or svc.queue
    if len(requests) <= 1:
        for request, delay in requests:
            queue.put(request, delay=delay)
        return
    sent = [intake_send_pool().submit(queue.put, r, delay=d) for r, d in requests]
    for future in sent:
        future.result()


def _summary(what: str, total: int, queued: int, reasons: list[str], traceparent: str = "") -> None:
    """One log line per POST: counts, and the first few reasons (repr: escaped); the counts
    and the trace id as dimensions too."""
    extra = dims(
        items=total, queued=queued, ignored=len(reasons), trace_id=trace_id_of(traceparent)
    )
    if reasons:
        log.warning(
            "%s: %d item(s), %d request(s) queued, %d ignored; first reasons: %r",
            what,
            total,
            queued,
            len(reasons),
            reasons[:MAX_REASONS_LOGGED],
            extra=extra,
        )
    else:
        log.debug("%s: %d item(s), %d request(s) queued", what, total, queued, extra=extra)


async def run_callback(build: Callable[[], Services], kind: str, body: bytes) -> IntakeResult:
    """A Graph callback's body, handled on the intake's executor within BUDGET_SECONDS; past the
    budget a StorageError (503: Graph retries). `build` gives the services (built on first use
    there, not on the host's event loop). Work still running past the budget may yet queue its
    requests: a duplicate request folds into the same round, so that is harmless."""
    run = run_notifications if kind == "change" else run_lifecycle
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    work = loop.run_in_executor(intake_pool(), lambda: _logged(build(), run, kind, body, started))
    try:
        return await asyncio.wait_for(work, BUDGET_SECONDS)
    except TimeoutError:
        raise StorageError(
            f"storage did not answer within {BUDGET_SECONDS:g} s; answering 503 so that Graph "
            "retries the notification"
        ) from None


def _logged(
    svc: Services,
    run: Callable[[Services, bytes], IntakeResult],
    kind: str,
    body: bytes,
    started: float,
) -> IntakeResult:
    """`run`, then its record in the operations log; the status is the one Graph got (503 when
    the work outlived the budget, the error's status when it failed)."""
    result: IntakeResult | None = None
    error = ""
    status = 500
    try:
        result = run(svc, body)
        status = result.status
        return result
    except CalsyncError as exc:
        status, error = exc.http_status, exc.code
        raise
    finally:
        _record(svc, kind, result, status, error, started)


def _record(
    svc: Services, kind: str, result: IntakeResult | None, status: int, error: str, started: float
) -> None:
    if svc.oplog is None:
        return
    try:
        took = (time.perf_counter() - started) * 1000
        if took > BUDGET_SECONDS * 1000:
            status, error = 503, error or "over_budget"
        svc.oplog.record(
            *oplog.inbound(
                at=svc.now(),
                kind="notifications" if kind == "change" else "lifecycle",
                status=status,
                duration_ms=took,
                items=result.items if result else 0,
                queued=result.queued if result else 0,
                ignored=result.ignored if result else 0,
                mailboxes=result.mailboxes if result else (),
                tenants=result.tenants if result else (),
                error=error,
            )
        )
    except Exception:
        log.debug("operations log: a notification POST could not be recorded", exc_info=True)


def run_notifications(svc: Services, body: bytes) -> IntakeResult:
    """Change notifications → one sync request per mailbox named by valid items: visible at
    once when the mailbox had none so for DEBOUNCE_SECONDS (core.intake.ArrivalGate), else
    after the debounce; every one after the debounce with LEADING_ROUND off."""
    items, reasons = parse_change_notifications(body, svc.settings.tenant_ids)
    total = len(items) + len(reasons)
    records = _resolve(svc, [(i.tenant_id, i.subscription_id) for i in items])
    mailboxes: dict[MailboxKey, None] = {}
    for index, item in enumerate(items):
        key, reason = _user(records, index, item.tenant_id, item.subscription_id, item.client_state)
        if key is None:
            reasons.append(reason or "")
            continue
        mailboxes[key] = None
    now = stamp_request(svc.now())
    trace = outgoing_traceparent(svc.rng) if mailboxes else ""  # one trace per POST
    arrived = time.monotonic()
    _send(
        svc,
        [
            (
                SyncRequest(
                    k.tenant_id,
                    k.user_id,
                    Trigger.NOTIFICATION,
                    False,
                    now,
                    traceparent=trace,
                    calendar=k.calendar,
                ),
                svc.arrivals.delay(k.partition, now=arrived)
                if svc.settings.leading_round
                else DEBOUNCE_SECONDS,
            )
            for k in mailboxes
        ],
    )
    _summary("notifications", total, len(mailboxes), reasons, trace)
    svc.metrics.intake(kind="change", accepted=total - len(reasons), ignored=len(reasons))
    return IntakeResult(
        202,
        queued=len(mailboxes),
        ignored=len(reasons),
        items=total,
        mailboxes=tuple((k.tenant_id, k.user_id) for k in mailboxes),
        tenants=tuple(dict.fromkeys(i.tenant_id for i in items)),
    )


def run_lifecycle(svc: Services, body: bytes) -> IntakeResult:
    """Lifecycle notifications → a queued request that does the work (reauthorize, recreate) and
    then syncs; the HTTP answer stays fast and the work survives a crash."""
    items, reasons = parse_lifecycle_notifications(body, svc.settings.tenant_ids)
    total = len(items) + len(reasons)
    queued = 0
    now = stamp_request(svc.now())
    known = [i for i in items if i.lifecycle_event in LIFECYCLE_EVENTS]
    records = _resolve(svc, [(i.tenant_id, i.subscription_id) for i in known])
    queue = svc.intake_queue or svc.queue
    trace = outgoing_traceparent(svc.rng) if known else ""
    named: dict[tuple[str, str], None] = {}
    for index, item in enumerate(items):
        if item.lifecycle_event not in LIFECYCLE_EVENTS:
            reasons.append(f"item {index}: unknown lifecycle event {item.lifecycle_event[:64]!r}")
            continue
        key, reason = _user(records, index, item.tenant_id, item.subscription_id, item.client_state)
        if key is None:
            reasons.append(reason or "")
            continue
        user_id = key.user_id
        log.info(
            "lifecycle %r for %r",
            item.lifecycle_event,
            item.subscription_id,
            extra=dims(
                tenant_id=item.tenant_id,
                user_id=user_id,
                subscription_id=item.subscription_id,
                lifecycle_event=item.lifecycle_event,
                trace_id=trace_id_of(trace),
            ),
        )
        request = SyncRequest(
            item.tenant_id,
            user_id,
            Trigger.LIFECYCLE,
            requested_at=now,
            lifecycle_event=item.lifecycle_event,
            subscription_id=item.subscription_id,
            traceparent=trace,
            calendar=key.calendar,
        )
        queue.put(request)
        queued += 1
        named[(item.tenant_id, user_id)] = None
    _summary("lifecycle notifications", total, queued, reasons, trace)
    svc.metrics.intake(kind="lifecycle", accepted=queued, ignored=len(reasons))
    return IntakeResult(
        202,
        queued=queued,
        ignored=len(reasons),
        items=total,
        mailboxes=tuple(named),
        tenants=tuple(dict.fromkeys(i.tenant_id for i in items)),
    )
