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
from dataclasses import replace
from datetime import timedelta

from shared.compose import Services
from shared.core import graph
from shared.core.graph_types import GraphSubscription, decode_subscription
from shared.core.model import MailboxKey, SubscriptionRecord
from shared.core.notifications import (
    client_state_digest,
    new_client_state,
    user_id_from_resource,
)
from shared.core.paging import iter_subscriptions
from shared.core.renewals import WritePacer, plan_expiry, plan_reconcile, plan_renewals
from shared.core.state import MailboxRecord
from shared.errors import GraphError, SubscriptionGone, Throttled, TokenError

log = logging.getLogger("calsync.subscriptions")

RETRY_SUBSCRIBE_AFTER = timedelta(minutes=15)
MAX_PACING_SLEEP = 5.0  # seconds a timer run may wait for the pacer before deferring the rest
_PACER = WritePacer()


def resource_for(key: MailboxKey) -> str:
    return graph.events_resource(key)


def _paced(svc: Services, tenant_id: str) -> bool:
    """Wait for the tenant's subscription-write budget; False when the wait would be too long."""
    delay = _PACER.delay(tenant_id, svc.now())
    if delay > MAX_PACING_SLEEP:
        return False
    if delay > 0:
        time.sleep(delay)
    return True


def ensure_subscription(svc: Services, mailbox: MailboxRecord) -> MailboxRecord:
    """Create a subscription for a webhook-mode mailbox; on refusal fall back to poll mode."""
    now = svc.now()
    if mailbox.options.mode == "poll":
        return _poll_mode(svc, mailbox, "poll mode chosen in the mailbox options")
    notification_url = svc.settings.notification_url
    if not notification_url:
        return _poll_mode(svc, mailbox, "PUBLIC_BASE_URL is not set: Graph has no URL to call")
    if not _paced(svc, mailbox.key.tenant_id):
        return _poll_mode(svc, mailbox, "subscription writes paced for this tenant; retrying soon")
    client_state = new_client_state(pysecrets.token_bytes(32))
    expiry = plan_expiry(now, svc.rng)
    request = graph.subscription_create(
        mailbox.key,
        notification_url=notification_url,
        lifecycle_url=svc.settings.lifecycle_url,
        expiration=expiry,
        client_state=client_state,
    )
    try:
        created = decode_subscription(svc.graph.send(request))
    except (GraphError, TokenError) as exc:
        log.warning("subscription for %s refused: %s", mailbox.key.user_id, exc.message)
        record = _poll_mode(svc, mailbox, f"subscription refused: {exc.message}")
        errors = {
            "last_error": exc.message,
            "last_error_code": exc.detail_code,
            "last_error_at": now,
        }
        svc.state.update_status(mailbox.key, **errors)
        return record.with_status(**errors)
    sub = SubscriptionRecord(
        subscription_id=created.id,
        tenant_id=mailbox.key.tenant_id,
        user_id=mailbox.key.user_id,
        resource=resource_for(mailbox.key),
        expiration=created.expiration or expiry,
        client_state_digest=client_state_digest(client_state),
        last_renewed=now,
    )
    svc.state.put_subscription(sub)
    subscribed: dict[str, object] = {
        "mode": "webhook",
        "mode_reason": "subscribed",
        "subscription_id": sub.subscription_id,
        "subscription_expiry": sub.expiration,
        "next_subscribe_attempt": None,
    }
    svc.state.update_status(mailbox.key, **subscribed)
    record = mailbox.with_status(**subscribed)
    log.info("subscribed %s until %s", mailbox.key.user_id, sub.expiration)
    return record


def _poll_mode(svc: Services, mailbox: MailboxRecord, reason: str) -> MailboxRecord:
    now = svc.now()
    retry = None if mailbox.options.mode == "poll" else now + RETRY_SUBSCRIBE_AFTER
    polled: dict[str, object] = {
        "mode": "poll",
        "mode_reason": reason,
        "subscription_id": "",
        "subscription_expiry": None,
        "next_subscribe_attempt": retry,
        "next_poll": mailbox.status.next_poll or now,
    }
    svc.state.update_status(mailbox.key, **polled)
    return mailbox.with_status(**polled)


def delete_subscription(svc: Services, sub: SubscriptionRecord) -> None:
    """Delete in Graph (gone already is fine) and forget it."""
    with contextlib.suppress(SubscriptionGone):
        svc.graph.send(graph.subscription_delete(sub.tenant_id, sub.subscription_id))
    svc.state.delete_subscription(sub.tenant_id, sub.subscription_id)


def recreate(svc: Services, sub: SubscriptionRecord) -> MailboxRecord | None:
    """The subscription is gone: forget it and subscribe the mailbox anew."""
    svc.state.delete_subscription(sub.tenant_id, sub.subscription_id)
    mailbox = svc.state.find_mailbox(MailboxKey(sub.tenant_id, sub.user_id))
    if mailbox is None or not mailbox.enabled:
        return None
    return ensure_subscription(svc, mailbox)


def reauthorize(svc: Services, sub: SubscriptionRecord) -> None:
    """Answer reauthorizationRequired: POST /reauthorize; recreate when the subscription is gone."""
    try:
        svc.graph.send(graph.subscription_reauthorize(sub.tenant_id, sub.subscription_id))
    except SubscriptionGone:
        recreate(svc, sub)
        return
    svc.state.put_subscription(replace(sub, last_reauthorized=svc.now()))


def renew_due(svc: Services) -> dict[str, int]:
    """Timer step: renew subscriptions near expiry (spread, paced); recreate those gone."""
    now = svc.now()
    counts = {"renewed": 0, "recreated": 0, "failed": 0, "deferred": 0}
    for sub, new_expiry in plan_renewals(svc.state.list_subscriptions(), now, svc.rng):
        if not _paced(svc, sub.tenant_id):
            counts["deferred"] += 1
            continue
        try:
            request = graph.subscription_renew(sub.tenant_id, sub.subscription_id, new_expiry)
            renewed = svc.graph.send(request)
            expiry = (decode_subscription(renewed).expiration if renewed else None) or new_expiry
        except SubscriptionGone:
            recreate(svc, sub)
            _queue_resync(svc, sub, "subscription recreated")
            counts["recreated"] += 1
            continue
        except Throttled:
            counts["deferred"] += 1
            continue
        except (GraphError, TokenError) as exc:
            log.warning("renewing %s failed: %s", sub.subscription_id, exc.message)
            counts["failed"] += 1
            continue
        svc.state.put_subscription(replace(sub, expiration=expiry, last_renewed=now))
        svc.state.update_status(MailboxKey(sub.tenant_id, sub.user_id), subscription_expiry=expiry)
        counts["renewed"] += 1
    return counts


def reconcile(svc: Services) -> dict[str, int]:
    """Timer step: every enabled webhook mailbox has exactly one live subscription; orphans go."""
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
        recreate(svc, sub)
        _queue_resync(svc, sub, "subscription expired")
    for key in actions.create:
        if key in by_key:
            ensure_subscription(svc, by_key[key])
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
    exists and the leftover is plainly an orphan). One list per tenant per run keeps us far
    under Graph's 25 list calls per 20 s per tenant."""
    if not svc.settings.notification_url:
        return 0
    records = svc.state.list_subscriptions()
    known = {s.subscription_id for s in records}
    on_record = {MailboxKey(s.tenant_id, s.user_id) for s in records}
    deleted = 0
    for tenant_id in svc.settings.tenant_ids:
        try:
            listed = _list_graph_subscriptions(svc, tenant_id)
        except (GraphError, TokenError) as exc:
            log.warning("listing subscriptions of tenant %s failed: %s", tenant_id, exc.message)
            continue
        for sub in listed:
            if sub.notification_url != svc.settings.notification_url or sub.id in known:
                continue
            key = MailboxKey(tenant_id, user_id_from_resource(sub.resource) or "")
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


def _list_graph_subscriptions(svc: Services, tenant_id: str) -> list[GraphSubscription]:
    return list(iter_subscriptions(graph.subscription_list(tenant_id), svc.graph.send))


def _queue_resync(svc: Services, sub: SubscriptionRecord, reason: str) -> None:
    from shared.core.coalesce import stamp_request
    from shared.core.model import SyncRequest

    svc.queue.put(
        SyncRequest(sub.tenant_id, sub.user_id, reason, requested_at=stamp_request(svc.now()))
    )
