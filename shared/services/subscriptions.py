"""Subscription steps: create one per mailbox, renew before expiry, reauthorize, recreate when
gone, reconcile desired vs actual, and fall back to poll mode visibly when Graph refuses.

https://learn.microsoft.com/graph/api/subscription-post-subscriptions
https://learn.microsoft.com/graph/change-notifications-lifecycle-events
"""

from __future__ import annotations

import contextlib
import logging
import secrets as pysecrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from urllib.parse import unquote

from shared.compose import Services
from shared.core import graph
from shared.core import lifecycle as lc
from shared.core.graph_types import (
    GraphSubscription,
    decode_subscription,
    decode_subscription_page,
)
from shared.core.model import MailboxKey, SubscriptionRecord
from shared.core.notifications import (
    client_state_digest,
    new_client_state,
    user_id_from_resource,
)
from shared.core.paging import iter_subscriptions
from shared.core.renewals import (
    WritePacer,
    is_duplicate_lifecycle,
    plan_expired,
    plan_expiry,
    plan_reauthorize,
    plan_reconcile,
    plan_renewals,
)
from shared.core.state import MailboxRecord
from shared.errors import CalsyncError, GraphError, SubscriptionGone, Throttled, TokenError
from shared.telemetry import dims

log = logging.getLogger("calsync.subscriptions")

MAX_PACING_SLEEP = 5.0  # seconds a subscribe may wait for the pacer before falling back
# The renewal timer may wait longer for each write, and paces for this long in all before it
# leaves the rest to its next run (15 minutes later): at the shared budget's 75 writes per 5 s,
# one run renews up to about 3,600.
RENEWAL_MAX_WAIT = 30.0
RENEWAL_RUN_SECONDS = 240.0
# Renewals in flight at once in one run. One takes about 0.2 s (Graph's PATCH, then the record
# and the mailbox's status), so one at a time makes about 5 a second, a third of the shared
# budget's 15 (75 per 5 s slot); 8 at once keep ahead of the budget, which stays the ceiling:
# every renewal still draws its token from it before its PATCH.
RENEWAL_WORKERS = 8
# Pages of Graph's subscription list one run of the orphan check reads per tenant (see
# `_delete_graph_orphans`); where it stops is stored and the next run goes on from there.
ORPHAN_PAGES_PER_RUN = 10
_SWEEP_POSITIONS: dict[str, str] = {}  # tenant -> next link, when the services share no table
_PACER = WritePacer()


def resource_for(mailbox: MailboxRecord) -> str:
    """The subscription resource of the mailbox's calendar (its default one, or another)."""
    return graph.events_resource(mailbox.key, mailbox.calendar_id)


def _paced(svc: Services, tenant_id: str, max_wait: float = MAX_PACING_SLEEP) -> bool:
    """Wait for the tenant's subscription-write budget (shared by every host when the services
    have one, else this process's); False when the wait would be longer than `max_wait`."""
    if svc.pacer is not None:
        shared = svc.pacer.delay(tenant_id, svc.now(), max_wait)
        if shared is None:
            return False
        delay = shared
    else:
        delay = _PACER.delay(tenant_id, svc.now())
        if delay > max_wait:
            return False
    if delay > 0:
        time.sleep(delay)
    return True


def subscribe(svc: Services, mailbox: MailboxRecord) -> lc.Event:
    """Try to create the mailbox's subscription; the outcome as a lifecycle event."""
    now = svc.now()
    notification_url = svc.settings.notification_url
    if not notification_url:
        return lc.NoCallbackUrl()
    if not _paced(svc, mailbox.key.tenant_id):
        return lc.Paced()
    client_state = new_client_state(pysecrets.token_bytes(32))
    expiry = plan_expiry(now, svc.rng)
    request = graph.subscription_create(
        mailbox.key,
        notification_url=notification_url,
        lifecycle_url=svc.settings.lifecycle_url,
        expiration=expiry,
        client_state=client_state,
        calendar_id=mailbox.calendar_id,
    )
    try:
        created = decode_subscription(svc.graph.send(request))
    except (GraphError, TokenError) as exc:
        log.warning(
            "subscription for %s refused: %s",
            mailbox.key.user_id,
            exc.message,
            extra=dims(
                tenant_id=mailbox.key.tenant_id,
                user_id=mailbox.key.user_id,
                result="refused",
                error_code=exc.detail_code,
                request_id=exc.request_id,
            ),
        )
        errors = {
            "last_error": exc.message,
            "last_error_code": exc.detail_code,
            "last_error_at": now,
        }
        svc.state.update_status(mailbox.key, **errors)
        if isinstance(exc, TokenError) and not exc.transient:
            return lc.CredentialRejected(exc.detail_code, exc.message)
        return lc.Refused(exc.detail_code, exc.message)
    sub = SubscriptionRecord(
        subscription_id=created.id,
        tenant_id=mailbox.key.tenant_id,
        user_id=mailbox.key.user_id,
        resource=resource_for(mailbox),
        expiration=created.expiration or expiry,
        client_state_digest=client_state_digest(client_state),
        calendar=mailbox.key.calendar,
    )
    svc.state.put_subscription(sub)
    subscribed = {"subscription_id": sub.subscription_id, "subscription_expiry": sub.expiration}
    svc.state.update_status(mailbox.key, **subscribed)
    log.info(
        "subscribed %s until %s",
        mailbox.key.user_id,
        sub.expiration,
        extra=dims(
            tenant_id=sub.tenant_id,
            user_id=sub.user_id,
            subscription_id=sub.subscription_id,
            result="created",
        ),
    )
    return lc.Subscribed(sub.subscription_id)


def delete_subscription(svc: Services, sub: SubscriptionRecord) -> None:
    """Delete in Graph (gone already is fine) and forget it."""
    with contextlib.suppress(SubscriptionGone):
        svc.graph.send(graph.subscription_delete(sub.tenant_id, sub.subscription_id))
    svc.state.delete_subscription(sub.tenant_id, sub.subscription_id)


def drop_all(svc: Services, key: MailboxKey) -> None:
    """Delete every subscription on record for the mailbox."""
    for sub in svc.state.list_subscriptions():
        if sub.mailbox == key:  # this calendar's only: the mailbox's others keep theirs
            delete_subscription(svc, sub)


def reauthorize(svc: Services, key: MailboxKey, subscription_id: str) -> lc.Event | None:
    """Answer reauthorizationRequired: POST /reauthorize. A subscription that is gone comes back
    as SubscriptionRemoved (recreate it); one we don't know is left alone; one renewed less than
    10 minutes ago is not reauthorized (that PATCH did it, and Graph forbids both within 10
    minutes)."""
    sub = svc.state.get_subscription(key.tenant_id, subscription_id)
    if sub is None:
        return None
    if not plan_reauthorize(sub, svc.now()):
        log.info("%s renewed less than 10 minutes ago: no reauthorize needed", subscription_id)
        return None
    try:
        svc.graph.send(graph.subscription_reauthorize(sub.tenant_id, sub.subscription_id))
    except SubscriptionGone:
        return lc.SubscriptionRemoved(subscription_id)
    svc.state.put_subscription(replace(sub, last_reauthorized=svc.now()))
    return None


def claim_lifecycle(svc: Services, sub: SubscriptionRecord, event: str) -> bool:
    """Claim lifecycle `event` of `sub` for this worker: False when it is a copy of one acted on
    within the dedup window (core.renewals.is_duplicate_lifecycle), also when another copy's
    worker claimed it a moment ago (the mark is ETag-guarded, so two copies handled at once can't
    both win). A row changed by another writer (a renewal) is read again and judged anew."""
    for _ in range(3):
        now = svc.now()
        if is_duplicate_lifecycle(sub, event, now):
            return False
        if svc.state.mark_lifecycle(sub, event, now):
            return True
        current = svc.state.get_subscription(sub.tenant_id, sub.subscription_id)
        if current is None:
            return False
        sub = current
    return False


def release_lifecycle(svc: Services, sub: SubscriptionRecord) -> None:
    """Undo `claim_lifecycle` (acting on the event failed, so a retry or a copy must act)."""
    current = svc.state.get_subscription(sub.tenant_id, sub.subscription_id)
    if current is not None:
        svc.state.put_subscription(
            replace(
                current,
                last_lifecycle_event=sub.last_lifecycle_event,
                last_lifecycle_at=sub.last_lifecycle_at,
            )
        )


def _gone(svc: Services, sub: SubscriptionRecord) -> None:
    """Graph no longer has `sub`: the mailbox subscribes anew (and resyncs), or the record goes."""
    from shared.services.lifecycle import advance_if_allowed

    mailbox = svc.state.find_mailbox(sub.mailbox)
    if svc.state.get_subscription(sub.tenant_id, sub.subscription_id) is None:
        return  # another run (the poll timer, the renewal run, another host) handled it
    if mailbox is not None and mailbox.status.subscription_id not in ("", sub.subscription_id):
        mailbox = None  # not the mailbox's current subscription: a stale record, just forget it
    if mailbox is None or advance_if_allowed(svc, mailbox, lc.Expired(sub.subscription_id)) is None:
        svc.state.delete_subscription(sub.tenant_id, sub.subscription_id)


def recreate_expired(svc: Services) -> int:
    """Poll-timer step: recreate the subscriptions that expired (a host down longer than their
    life), so healing starts within a poll interval of the host starting."""
    expired = plan_expired(svc.state.list_subscriptions(), svc.now())
    for sub in expired:
        log.info("subscription %s of %s expired: recreating it", sub.subscription_id, sub.user_id)
        _gone(svc, sub)
    return len(expired)


def _sub_dims(
    sub: SubscriptionRecord, result: str, code: str = "", request_id: str = ""
) -> dict[str, object]:
    return dims(
        tenant_id=sub.tenant_id,
        user_id=sub.user_id,
        subscription_id=sub.subscription_id,
        result=result,
        error_code=code,
        request_id=request_id,
    )


def renew_due(svc: Services) -> dict[str, int]:
    """Timer step: renew the subscriptions of TENANT_IDS near expiry (soonest first,
    RENEWAL_WORKERS at once, each paced by the tenant's write budget); recreate those gone. Past
    RENEWAL_RUN_SECONDS the rest is left to the next run. One renewal's failure is counted and
    logged, never the others'. (The intake refuses a tenant outside TENANT_IDS, so renewing its
    subscriptions would only keep Graph sending what nobody reads.)"""
    counts = {"renewed": 0, "recreated": 0, "failed": 0, "deferred": 0}
    served = set(svc.settings.tenant_ids)  # a tenant taken out of TENANT_IDS is not renewed:
    records = [s for s in svc.state.list_subscriptions() if s.tenant_id in served]
    due = plan_renewals(records, svc.now(), svc.rng)  # its subscriptions lapse on their own
    if not due:
        return counts
    began = time.monotonic()

    def renew(item: tuple[SubscriptionRecord, datetime]) -> str:
        sub, new_expiry = item
        if time.monotonic() - began > RENEWAL_RUN_SECONDS:
            return "deferred"  # the next run renews it (it is still 2 days from expiry)
        try:
            return renew_one(svc, sub, new_expiry, max_wait=RENEWAL_MAX_WAIT)[0]
        except Exception as exc:  # storage down, a bug: this renewal fails, the others go on
            reason = exc.message if isinstance(exc, CalsyncError) else type(exc).__name__
            log.warning(
                "renewing %s failed: %s",
                sub.subscription_id,
                reason,
                extra=_sub_dims(sub, "renew failed", type(exc).__name__),
            )
            return "failed"

    workers = min(RENEWAL_WORKERS, len(due))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="renew") as pool:
        for result in pool.map(renew, due):
            counts[result] += 1
    return counts


def renew_one(
    svc: Services,
    sub: SubscriptionRecord,
    new_expiry: datetime,
    *,
    max_wait: float = MAX_PACING_SLEEP,
) -> tuple[str, datetime | None]:
    """PATCH one subscription's expiry (paced per tenant, waiting at most `max_wait`):
    ("renewed", its new expiry), or ("recreated" | "failed" | "deferred", None); a gone one is
    recreated through `_gone`."""
    now = svc.now()
    if not _paced(svc, sub.tenant_id, max_wait):
        return "deferred", None
    try:
        request = graph.subscription_renew(sub.tenant_id, sub.subscription_id, new_expiry)
        renewed = svc.graph.send(request)
        expiry = (decode_subscription(renewed).expiration if renewed else None) or new_expiry
    except SubscriptionGone:
        _gone(svc, sub)
        return "recreated", None
    except Throttled:
        svc.metrics.throttled(tenant_id=sub.tenant_id, operation="renew")
        return "deferred", None
    except (GraphError, TokenError) as exc:
        log.warning(
            "renewing %s failed: %s",
            sub.subscription_id,
            exc.message,
            extra=_sub_dims(sub, "renew failed", exc.detail_code, exc.request_id),
        )
        return "failed", None
    log.info(
        "renewed %s of %s until %s",
        sub.subscription_id,
        sub.user_id,
        expiry,
        extra=_sub_dims(sub, "renewed"),
    )
    svc.state.put_subscription(replace(sub, expiration=expiry, last_renewed=now))
    svc.state.update_status(sub.mailbox, subscription_expiry=expiry)
    return "renewed", expiry


def reconcile(svc: Services) -> dict[str, int]:
    """Timer step: every enabled webhook mailbox has exactly one live subscription; orphans go."""
    from shared.services.lifecycle import advance_if_allowed

    now = svc.now()
    mailboxes = [m for m in svc.state.list_mailboxes() if m.enabled]
    desired = {
        m.key
        for m in mailboxes
        if m.options.mode == "webhook"
        and (m.status.next_subscribe_attempt is None or m.status.next_subscribe_attempt <= now)
    }
    actions = plan_reconcile(desired, svc.state.list_subscriptions(), now)
    by_key = {m.key: m for m in mailboxes}
    for sub in actions.delete:
        delete_subscription(svc, sub)
    for sub in actions.recreate:
        _gone(svc, sub)
    for key in actions.create:
        mailbox = by_key.get(key)
        if mailbox is None:
            continue
        if mailbox.state is lc.State.SUBSCRIBED:  # subscribed, but no subscription on record
            event: lc.Event = lc.Expired(mailbox.status.subscription_id)
        else:
            event = lc.ResubscribeDue()
        advance_if_allowed(svc, mailbox, event)
    orphans = _delete_graph_orphans(svc, desired)
    return {
        "created": len(actions.create),
        "recreated": len(actions.recreate),
        "deleted": len(actions.delete) + orphans,
    }


def _delete_graph_orphans(svc: Services, desired: set[MailboxKey]) -> int:
    """Delete subscriptions Graph holds for this deployment's URL that our state doesn't know.

    A desired mailbox with no subscription on record may be in the middle of being subscribed
    by another host, so its unknown subscriptions are left for the next run (by then the record
    exists and the leftover is plainly an orphan).

    Graph's list is paged (100 a page here, so 100 pages at 10,000 subscriptions) and GET
    /subscriptions is throttled on its own: learn.microsoft.com/graph/throttling-limits
    ("Subscription service limits") gives thousands of requests per 20 s per app and tenant for
    the subscription resource as a whole, but lists are answered 429 in a category of their own
    (`throttle.aad.ags.subscriptionservice.dc.list`, Retry-After 5, seen on Microsoft Q&A
    1138873) long before that; GRAPH-FACTS.md and the simulator (`subscription_list_per_window`
    25 per `subscription_window_s` 20, per tenant) keep the harsher 25 list requests per 20 s
    per tenant. So one run reads at most ORPHAN_PAGES_PER_RUN (10) pages per tenant and stores
    the next link (`_sweep`): two hosts checking at once make 20 list requests, under 25, and
    the whole list is swept every 10 runs at 10,000 (2.5 h at the 15-minute timer). A 429
    stops the tenant's check for the run at that page (Retry-After is honoured by not asking
    again before the next run, 15 minutes later). Graph's next link is an offset into the list
    (the simulator's is too), so a page may shift when subscriptions are deleted: an orphan
    passed over in one sweep is found in the next."""
    if not svc.settings.notification_url:
        return 0
    records = svc.state.list_subscriptions()
    known = {s.subscription_id for s in records}
    on_record = {s.mailbox for s in records}
    by_resource = {
        (m.key.tenant_id, _resource_key(resource_for(m))): m.key for m in svc.state.list_mailboxes()
    }
    deleted = 0
    for tenant_id in svc.settings.tenant_ids:
        if svc.settings.ews_for(tenant_id) is not None:
            continue  # Exchange Server on premises: no Graph subscriptions there
        try:
            listed = _sweep(svc, tenant_id)
        except (GraphError, TokenError) as exc:
            log.warning("listing subscriptions of tenant %s failed: %s", tenant_id, exc.message)
            continue
        for sub in listed:
            if sub.notification_url != svc.settings.notification_url or sub.id in known:
                continue
            key = by_resource.get((tenant_id, _resource_key(sub.resource))) or MailboxKey(
                tenant_id, user_id_from_resource(sub.resource) or ""
            )
            if key in desired and key not in on_record:
                continue
            try:
                svc.graph.send(graph.subscription_delete(tenant_id, sub.id))
            except SubscriptionGone:
                pass
            except (GraphError, TokenError) as exc:
                log.warning("deleting orphan %s failed: %s", sub.id, exc.message)
                continue
            log.info("deleted orphan subscription %s of %s", sub.id, key.user_id)
            deleted += 1
    return deleted


def _sweep(svc: Services, tenant_id: str) -> list[GraphSubscription]:
    """The next ORPHAN_PAGES_PER_RUN pages of the tenant's subscription list, from the stored
    position (the start after the last page); a 429 ends the run's pages at that page, which
    the next run asks for again."""
    table = svc.pacer.table if svc.pacer is not None else None
    link = table.sweep_position(tenant_id) if table else _SWEEP_POSITIONS.get(tenant_id, "")
    first = graph.subscription_list(tenant_id)
    request = first.follow(link) if link else first
    listed: list[GraphSubscription] = []
    for _ in range(ORPHAN_PAGES_PER_RUN):
        try:
            page = decode_subscription_page(svc.graph.send(request))
        except Throttled as exc:
            svc.metrics.throttled(tenant_id=tenant_id, operation="list")
            log.info(
                "listing subscriptions of tenant %s throttled (retry after %s s): the next run "
                "goes on from this page",
                tenant_id,
                exc.retry_after,
            )
            break
        listed.extend(page.items)
        if not page.next_link:
            link = ""  # swept to the end: the next run starts again
            break
        request = first.follow(page.next_link)
        link = page.next_link
    if table:
        table.save_sweep_position(tenant_id, link)
    else:
        _SWEEP_POSITIONS[tenant_id] = link
    return listed


def _resource_key(resource: str) -> str:
    """A subscription resource as compared: unquoted, lower case, without a leading '/'."""
    return unquote(resource).lower().lstrip("/")


def list_graph_subscriptions(svc: Services, tenant_id: str) -> list[GraphSubscription]:
    """Graph's own list of the app's subscriptions in a tenant (paged)."""
    return _list_graph_subscriptions(svc, tenant_id)


def _list_graph_subscriptions(svc: Services, tenant_id: str) -> list[GraphSubscription]:
    return list(iter_subscriptions(graph.subscription_list(tenant_id), svc.graph.send))
