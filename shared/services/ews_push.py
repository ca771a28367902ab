"""EWS push notifications as hints: subscribe each EWS mailbox's calendar to the app's
callback, and turn what arrives there into sync requests.

Rule: SyncFolderItems stays the truth (the poll timer runs it at the mailbox's interval
whatever happens here); a push notification only brings the next round forward. The poll timer
subscribes an EWS mailbox when PUBLIC_BASE_URL is set and Exchange has not been heard from
(a notification or the StatusFrequency keep-alive) for STALE_AFTER; a failed attempt waits as
long. At the callback, a notification for a subscription that is not the mailbox's current one
is answered Unsubscribe and ignored; one with a malformed watermark is ignored (answered OK:
the subscription is the right one); a keep-alive only records that Exchange is there; a change
queues a round.
https://learn.microsoft.com/exchange/client-developer/exchange-web-services/how-to-stream-notifications-about-mailbox-events-by-using-ews-in-exchange
"""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.adapters.ews_push_tables import PushRecord
from shared.compose import Services
from shared.core.ews_push import parse_send_notification, send_notification_result
from shared.core.model import MailboxKey, Trigger
from shared.errors import CalsyncError, InputError
from shared.services.lifecycle import queue_sync

log = logging.getLogger("calsync.ews_push")

STATUS_MINUTES = 5  # Exchange's keep-alive when nothing changes
STALE_AFTER = timedelta(minutes=3 * STATUS_MINUTES)


def callback_url(svc: Services, key: MailboxKey) -> str | None:
    base = svc.settings.public_base_url
    return f"{base}/api/ews/notifications/{key.tenant_id}/{key.user_id}" if base else None


def run_ensure(svc: Services) -> int:
    """Poll-timer step: (re)subscribe the EWS mailboxes Exchange has gone quiet for; returns
    how many were subscribed. A failure is logged and left to the next run."""
    if svc.ews is None or svc.ews_push is None or not svc.settings.public_base_url:
        return 0
    now, made = svc.now(), 0
    for mailbox in svc.state.list_mailboxes():
        ews = svc.settings.ews_for(mailbox.key.tenant_id)
        url = callback_url(svc, mailbox.key)
        if not mailbox.enabled or ews is None or url is None:
            continue
        held = svc.ews_push.get(mailbox.key)
        if held is not None and now - held.last_seen < STALE_AFTER:
            continue
        try:
            sub_id, watermark = svc.ews.subscribe_push(ews, mailbox.upn, url, STATUS_MINUTES)
        except CalsyncError as exc:
            # Tried now: the next try waits STALE_AFTER like a quiet subscription, so a server
            # that refuses (or cannot reach the app) is not asked every 30 s.
            log.warning("push subscription of %s not made: %s", mailbox.upn, exc.message)
            svc.ews_push.put(mailbox.key, PushRecord("", "", now, now))
            continue
        svc.ews_push.put(mailbox.key, PushRecord(sub_id, watermark, now, now))
        made += 1
    return made


def run_notification(svc: Services, tenant_id: str, user_id: str, body: bytes) -> tuple[int, bytes]:
    """(HTTP status, SOAP answer) for a SendNotification POST to a mailbox's callback."""
    try:
        notes = parse_send_notification(body)
    except InputError as exc:
        log.info("EWS notification for %s refused: %s", user_id, exc.message)
        return 400, b""
    key = MailboxKey(tenant_id.strip().lower(), user_id.strip().lower())
    push = svc.ews_push
    held = push.get(key) if push is not None else None
    mailbox = svc.state.find_mailbox(key) if held is not None else None
    known = held is not None and mailbox is not None and mailbox.enabled
    if push is None or held is None or not known or svc.settings.ews_for(key.tenant_id) is None:
        log.info("EWS notification for an unknown mailbox %s: unsubscribed", user_id)
        return 200, send_notification_result("Unsubscribe")
    if any(n.subscription_id != held.subscription_id for n in notes):
        log.info("EWS notification of a stale subscription of %s: unsubscribed", user_id)
        return 200, send_notification_result("Unsubscribe")
    if not all(n.watermark_ok for n in notes):
        log.info("EWS notification for %s with a malformed watermark: ignored", user_id)
        return 200, send_notification_result("OK")
    now = svc.now()
    push.put(key, PushRecord(held.subscription_id, notes[-1].watermark, held.subscribed_at, now))
    if any(n.changed for n in notes):
        queue_sync(svc, key, Trigger.NOTIFICATION)
    return 200, send_notification_result("OK")
