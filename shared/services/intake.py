"""Webhook intake: answer the validation handshake, check every item (known subscription, matching
clientState in constant time), queue one sync request per mailbox, answer 202 in milliseconds.
Nothing in a notification is trusted as state: it only says "look again".

A 2xx is only given once every accepted item is on a queue; if the queue cannot be written the
StorageError becomes a 503, and Graph retries. Forged or unknown items are logged and ignored
(202: Graph must not retry them, and nothing is synced for them).

https://learn.microsoft.com/graph/change-notifications-delivery-webhooks
https://learn.microsoft.com/graph/change-notifications-lifecycle-events
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.compose import Services
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.notifications import (
    client_state_matches,
    parse_change_notifications,
    parse_lifecycle_notifications,
    parse_validation_token,
)
from shared.core.rounds import DEBOUNCE_SECONDS, stamp_request

log = logging.getLogger("calsync.intake")

LIFECYCLE_EVENTS = {"reauthorizationRequired", "subscriptionRemoved", "missed"}


@dataclass(frozen=True)
class IntakeResult:
    status: int
    text: str | None = None  # plain-text body (the validation token echo)
    queued: int = 0
    ignored: int = 0


def validation_echo(token: str) -> IntakeResult:
    """The handshake: 200 text/plain with the decoded token and nothing else."""
    return IntakeResult(200, parse_validation_token(token))


def _known(svc: Services, tenant_id: str, subscription_id: str, client_state: str) -> str | None:
    """The subscribed user's id if the item is ours and its clientState matches, else None."""
    sub = svc.state.get_subscription(tenant_id, subscription_id)
    if sub is None:
        log.warning("notification for unknown subscription %s ignored", subscription_id)
        return None
    if not client_state_matches(client_state, sub.client_state_digest):
        log.warning("notification with a wrong clientState for %s ignored", subscription_id)
        return None
    return sub.user_id


def run_notifications(svc: Services, body: bytes) -> IntakeResult:
    """Change notifications → one debounced sync request per mailbox named by valid items."""
    items, skipped = parse_change_notifications(body)
    for reason in skipped:
        log.warning("notification item ignored: %s", reason)
    mailboxes: dict[MailboxKey, None] = {}
    ignored = len(skipped)
    for item in items:
        user_id = _known(svc, item.tenant_id, item.subscription_id, item.client_state)
        if user_id is None:
            ignored += 1
            continue
        mailboxes[MailboxKey(item.tenant_id, user_id)] = None
    now = stamp_request(svc.now())
    for key in mailboxes:
        svc.queue.put(
            SyncRequest(key.tenant_id, key.user_id, Trigger.NOTIFICATION, False, now),
            delay=DEBOUNCE_SECONDS,
        )
    return IntakeResult(202, queued=len(mailboxes), ignored=ignored)


def run_lifecycle(svc: Services, body: bytes) -> IntakeResult:
    """Lifecycle notifications → a queued request that does the work (reauthorize, recreate) and
    then syncs; the HTTP answer stays fast and the work survives a crash."""
    items, skipped = parse_lifecycle_notifications(body)
    for reason in skipped:
        log.warning("lifecycle item ignored: %s", reason)
    ignored = len(skipped)
    queued = 0
    now = stamp_request(svc.now())
    for item in items:
        if item.lifecycle_event not in LIFECYCLE_EVENTS:
            log.warning("unknown lifecycle event %r ignored", item.lifecycle_event)
            ignored += 1
            continue
        user_id = _known(svc, item.tenant_id, item.subscription_id, item.client_state)
        if user_id is None:
            ignored += 1
            continue
        log.info("lifecycle %s for %s", item.lifecycle_event, item.subscription_id)
        request = SyncRequest(
            item.tenant_id,
            user_id,
            Trigger.LIFECYCLE,
            requested_at=now,
            lifecycle_event=item.lifecycle_event,
            subscription_id=item.subscription_id,
        )
        svc.queue.put(request)
        queued += 1
    return IntakeResult(202, queued=queued, ignored=ignored)
