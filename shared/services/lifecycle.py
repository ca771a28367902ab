"""Runs the mailbox state machine (`core.lifecycle`): step it with an event, store the new state
on the mailbox's status, and carry out the actions the transition names. Every change of mode
(webhook, poll by choice, poll fallback, credential invalid, removed) goes through `advance`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.compose import Services
from shared.core import lifecycle as lc
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.core.state import MailboxRecord
from shared.telemetry import dims, outgoing_traceparent

log = logging.getLogger("calsync.lifecycle")

RETRY_SUBSCRIBE_AFTER = timedelta(minutes=15)


def queue_sync(
    svc: Services, key: MailboxKey, trigger: Trigger, *, full: bool = False, delay: float = 0.0
) -> None:
    """Ask for a delta round of `key`, stamped now (so rounds begun later fold it), in the
    current trace or a new one."""
    request = SyncRequest(
        key.tenant_id, key.user_id, trigger, full, stamp_request(svc.now()), calendar=key.calendar
    )
    svc.queue.put(replace(request, traceparent=outgoing_traceparent(svc.rng)), delay=delay)


def _status_fields(now: datetime, record: MailboxRecord, t: lc.Transition) -> dict[str, Any]:
    """The status fields a transition writes: its state, mode and reason, and what they imply."""
    s = record.status
    fields: dict[str, Any] = {"state": t.state.value, "mode": lc.mode_of(t.state)}
    if t.reason:
        fields["mode_reason"] = t.reason
    if t.state is lc.State.POLL_FALLBACK:
        if t.fallback is not None:
            fields["fallback"] = t.fallback.value
            fields["next_subscribe_attempt"] = now + RETRY_SUBSCRIBE_AFTER
    else:
        fields["fallback"] = ""
        fields["next_subscribe_attempt"] = None
    if t.state in lc.POLLED and record.state not in lc.POLLED:
        fields["next_poll"] = s.next_poll or now
    if t.state in (lc.State.ENROLLED, lc.State.POLL_CHOSEN, lc.State.POLL_FALLBACK):
        fields |= {"subscription_id": "", "subscription_expiry": None}
    if t.state is lc.State.REMOVED:
        fields |= {"mode_reason": "removed", "subscription_id": "", "subscription_expiry": None}
    if t.state is lc.State.CREDENTIAL_INVALID:
        fields |= {"last_error": t.reason, "last_error_code": t.code, "last_error_at": now}
    return fields


def advance(
    svc: Services,
    record: MailboxRecord,
    event: lc.Event,
    *,
    run_syncs: bool = True,
    new: bool = False,
) -> tuple[MailboxRecord, list[lc.Sync]]:
    """Step `record` with `event` (`new`: a mailbox never enrolled before), store it, run the
    actions; returns the updated record and the rounds asked for (queued, or handed back when
    `run_syncs` is False)."""
    from shared.services import subscriptions

    transition = lc.step(None if new else record.state, event)
    fields = _status_fields(svc.now(), record, transition)
    before = record.state
    if transition.state is lc.State.REMOVED:
        record = replace(record, enabled=False).with_status(**fields)
        svc.state.put_mailbox(record)
    else:
        svc.state.update_status(record.key, **fields)
        record = record.with_status(**fields)
    if before is not transition.state:
        log.info(
            "mailbox %s: %s -> %s on %s",
            record.key.label,
            before.value,
            transition.state.value,
            type(event).__name__,
            extra=dims(
                tenant_id=record.key.tenant_id,
                user_id=record.key.user_id,
                state=transition.state.value,
                result=f"{before.value} -> {transition.state.value} on {type(event).__name__}",
                error_code=transition.code,
            ),
        )
    syncs: list[lc.Sync] = []
    for action in transition.actions:
        follow_up: lc.Event | None = None
        if isinstance(action, lc.Subscribe):
            follow_up = subscriptions.subscribe(svc, record)
        elif isinstance(action, lc.DropSubscriptions):
            subscriptions.drop_all(svc, record.key)
        elif isinstance(action, lc.ForgetSubscription):
            svc.state.delete_subscription(record.key.tenant_id, action.subscription_id)
        elif isinstance(action, lc.Reauthorize):
            follow_up = subscriptions.reauthorize(svc, record.key, action.subscription_id)
        elif isinstance(action, lc.ForgetCursor):
            svc.state.delete_cursor(record.key)
        elif isinstance(action, lc.PurgeMirror):
            svc.state.purge_events(record.key)
            if svc.changes is not None:  # its change rows stay for their retention
                svc.changes.note_removed(record.key, record.upn, svc.now())
            svc.state.delete_mailbox(record.key)
        elif run_syncs:
            queue_sync(svc, record.key, action.trigger, full=action.full)
        else:
            syncs.append(action)
        if follow_up is not None:
            if not lc.allows(record.state, type(follow_up)):
                log.warning("%s ignored for %s", type(follow_up).__name__, record.key.user_id)
                continue
            record, more = advance(svc, record, follow_up, run_syncs=run_syncs)
            syncs.extend(more)
    return record, syncs


def advance_if_allowed(
    svc: Services, record: MailboxRecord, event: lc.Event, *, run_syncs: bool = True
) -> tuple[MailboxRecord, list[lc.Sync]] | None:
    """`advance`, or None (logged) when the event cannot happen in the mailbox's state: a stale
    or duplicated message must not fail the work around it."""
    if record.enabled and lc.allows(record.state, type(event)):
        return advance(svc, record, event, run_syncs=run_syncs)
    log.info(
        "%s for %s ignored in state %s", type(event).__name__, record.key.user_id, record.state
    )
    return None


def restore_credentials(svc: Services, tenant_id: str, *, synced: MailboxKey | None = None) -> int:
    """The tenant's credential works again (a token was acquired): every mailbox of the tenant in
    credential_invalid goes back to its mode, and each queues the round it missed, except
    `synced` (its own round just succeeded). Returns how many were restored."""
    restored = 0
    for mailbox in svc.state.list_mailboxes(tenant_id):
        if not mailbox.enabled or mailbox.state is not lc.State.CREDENTIAL_INVALID:
            continue
        event = lc.CredentialRestored(
            mailbox.options.mode,
            subscribed=bool(mailbox.status.subscription_id),
            resync=mailbox.key != synced,
        )
        if advance_if_allowed(svc, mailbox, event) is not None:
            restored += 1
    return restored
