"""Timer steps: poll the mailboxes that have no working subscription, recreate subscriptions that
expired (within a poll interval of a host starting after an outage), retry subscribing the ones
that fell back to poll mode, roll every window forward daily (a weekly safety-net full resync that
counts drift), prune the operations log past its retention, watch the credential's expiry, and
keep subscriptions renewed and reconciled.

Polling never runs faster than a mailbox's `pollSeconds` (at least 60 s: Microsoft forbids more).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.compose import Services
from shared.core import lifecycle as lc
from shared.core.model import Trigger
from shared.core.state import MailboxRecord
from shared.errors import CalsyncError, TokenError
from shared.services import credential_watch, ews_push, feed, oplog, subscriptions
from shared.services.lifecycle import advance, queue_sync, restore_credentials

log = logging.getLogger("calsync.timers")


def run_poll(svc: Services) -> dict[str, int]:
    """Recreate expired subscriptions; queue a sync for each polled mailbox that is due; retry
    subscribing fallbacks."""
    counts = {"polled": 0, "resubscribed": 0, "recreated": subscriptions.recreate_expired(svc)}
    # One listing of the mailboxes per run (it is most of a run's time at 10,000 mailboxes),
    # read again only when a restored credential changed some of them.
    records = svc.state.list_mailboxes()
    counts["restored"] = _heal_credentials(svc, records)
    if counts["restored"]:
        records = svc.state.list_mailboxes()
    counts["ews_subscribed"] = ews_push.run_ensure(svc)  # push hints for EWS mailboxes
    now = svc.now()
    for mailbox in records:
        if not mailbox.enabled:
            continue
        status = mailbox.status
        if (
            mailbox.state is lc.State.POLL_FALLBACK
            and status.next_subscribe_attempt is not None
            and status.next_subscribe_attempt <= now
        ):
            mailbox, _ = advance(svc, mailbox, lc.ResubscribeDue())
            if mailbox.state is lc.State.SUBSCRIBED:
                counts["resubscribed"] += 1
                continue
        if mailbox.state not in lc.POLLED:
            continue
        if mailbox.status.next_poll is not None and mailbox.status.next_poll > now:
            continue
        advance(svc, mailbox, lc.PollDue())
        next_poll = now + timedelta(seconds=mailbox.options.poll_seconds)
        svc.state.update_status(mailbox.key, next_poll=next_poll)
        counts["polled"] += 1
    return counts


def _heal_credentials(svc: Services, records: list[MailboxRecord]) -> int:
    """For each tenant with a credential_invalid mailbox due for its poll, ask Entra for a token
    (at most once per tenant per run, so at the poll interval: on a rejection the token adapter
    reads the secret again past its cache); once one is had, every such mailbox of the tenant
    returns to its mode and catches up, without waiting for a notification or its own poll."""
    now = svc.now()
    due = {
        m.key.tenant_id
        for m in records
        if m.enabled
        and m.state is lc.State.CREDENTIAL_INVALID
        and (m.status.next_poll is None or m.status.next_poll <= now)
    }
    restored = 0
    for tenant_id in sorted(due):
        try:
            svc.tokens.token(tenant_id)
        except TokenError as exc:
            log.info("tenant %s: still no token (%s)", tenant_id, exc.detail_code)
            continue
        restored += restore_credentials(svc, tenant_id)
    return restored


def run_renewals(svc: Services) -> dict[str, int]:
    """Renew subscriptions near expiry, then reconcile desired vs actual."""
    counts = subscriptions.renew_due(svc)
    counts |= subscriptions.reconcile(svc)
    return counts


def run_daily(svc: Services) -> dict[str, int]:
    """Roll every mailbox's window forward (the safety net when it is due; drift is logged);
    prune the operations log and the change feed; check the credential's expiry (a failure of
    either is logged and never stops the roll)."""
    counts = _roll(svc)
    counts["log_rows_pruned"] = oplog.run_prune(svc)
    counts["changes_pruned"] = feed.run_prune(svc)
    if svc.pacer is not None:  # the shared subscription-write budget's spent slots
        try:
            counts["pacing_pruned"] = svc.pacer.prune(svc.now())
        except CalsyncError as exc:
            log.warning("pacing rows: not pruned (%s): %s", exc.code, exc.message)
    try:
        expiry = credential_watch.run_watch(svc)
        counts["credential_days_left"] = -1 if expiry.days_left is None else expiry.days_left
    except CalsyncError as exc:
        log.warning("credential expiry: not checked (%s): %s", exc.code, exc.message)
    return counts


def _roll(svc: Services) -> dict[str, int]:
    mailboxes = [m for m in svc.state.list_mailboxes() if m.enabled]
    # Each becomes a slide of the user's window, a new delta window or the safety net
    # (core.rounds, "The daily roll"): only the last two cost Graph requests. Spread the rounds
    # (0.2 s per mailbox, at most 5 minutes) so they don't all hit Graph and the workers at once.
    spread = min(300.0, 0.2 * len(mailboxes))
    for mailbox in mailboxes:
        queue_sync(svc, mailbox.key, Trigger.ROLL, delay=svc.rng.uniform(0, spread))
    return {"queued": len(mailboxes)}
