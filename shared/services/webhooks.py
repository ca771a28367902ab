"""The admin API of the change feed's webhook subscribers: add (the signing secret answered
once), list, show with the delivery state per mailbox, remove, replay.

Where the signing secret lives: in the subscriber's row of the `webhooks` table (column
`secret`), not in Key Vault. The secret is a symmetric key that calsync generates and then needs
for every delivery; whoever can read the app's storage can already read (and forge) the whole
feed it protects, so a vault adds little for this key. Key Vault would instead need the app's
identity to hold a write role on the vault ("Key Vault Secrets Officer"), letting the app
overwrite its own Graph credential there, and would add a vault read to deliveries and a
soft-deleted secret per removed subscriber. The column is read only by the delivery worker
(`WebhookStore.secret`); no listing, status, log line or error carries it, and every value read
is registered with the log redactor. See docs/deploy.md ("Webhook subscribers").
"""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any

from shared.compose import Services
from shared.core.calendars import parse_handle
from shared.core.feed import DEFAULT_CALENDAR, format_sequence
from shared.core.model import MailboxKey
from shared.core.times import iso_utc
from shared.core.webhooks import (
    PairCursor,
    Subscriber,
    WorkItem,
    check_description,
    check_url,
    parse_filter,
    plan_replay_range,
)
from shared.errors import CalsyncError, InputError
from shared.redact import REDACTOR
from shared.services.delivery import store_of

MAX_REPLAY = 1000  # changes armed by one range replay
SECRET_BYTES = 32


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _when(value: Any) -> str | None:
    return iso_utc(value) if value is not None else None


def view(sub: Subscriber) -> dict[str, Any]:
    """A subscriber as the API shows it: never its secret."""
    return {
        "id": sub.id,
        "url": sub.url,
        "description": sub.description or None,
        "filter": sub.filter.to_json(),
        "createdAt": _when(sub.created_at),
        "status": sub.status,
        "enabled": sub.enabled,
        "disabledReason": sub.disabled_reason or None,
        "failing": sub.failing,
        "failingSince": _when(sub.failing_since),
        "lastError": sub.last_error or None,
        "lastDeliveredAt": _when(sub.last_delivered_at),
    }


def _pair_view(cursor: PairCursor) -> dict[str, Any]:
    tenant, _, label = cursor.partition.partition("_")
    key = MailboxKey.from_label(tenant, label)
    return {
        "tenantId": tenant,
        "mailboxId": key.user_id,
        "calendar": key.calendar_name,
        "deliveredSequence": format_sequence(cursor.delivered) if cursor.delivered >= 0 else None,
        "attempt": cursor.attempt,
        "nextAttemptAt": _when(cursor.next_at),
        "lastStatus": cursor.last_status,
        "lastError": cursor.last_error or None,
        "deadLetters": cursor.dead_letters,
    }


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def add(svc: Services, body: Any) -> dict[str, Any]:
    """Register a subscriber; the answer carries its signing secret, this once only."""
    store = store_of(svc)
    data = _body(body)
    extra = sorted(set(data) - {"url", "filter", "description"})
    if extra:
        raise InputError(f"{extra[0]} is not a field of a subscriber (url, filter, description)")
    url = check_url(data.get("url"), allow_http_loopback=svc.settings.webhook_allow_http_loopback)
    sub = Subscriber(
        id=uuid.uuid4().hex,
        url=url,
        filter=parse_filter(data.get("filter"), svc.settings.tenant_ids),
        description=check_description(data.get("description")),
        created_at=svc.now(),
    )
    secret = new_secret()
    REDACTOR.register(secret)
    store.add(sub, secret)
    return view(sub) | {"secret": secret}


def list_all(svc: Services) -> list[dict[str, Any]]:
    subs = store_of(svc).all()
    return [view(s) for s in sorted(subs, key=lambda s: (_when(s.created_at) or "", s.id))]


def show(svc: Services, subscriber_id: str) -> dict[str, Any]:
    """The subscriber with its delivery state per mailbox and its dead letters count."""
    store = store_of(svc)
    sub = store.get(subscriber_id)
    pairs = sorted(store.cursors_of(sub.id), key=lambda c: c.partition)
    dead = store.dead_letters(sub.id)
    return view(sub) | {
        "deliveries": [_pair_view(c) for c in pairs],
        "deadLetters": sum(1 for d in dead if not d.armed),
        "replaying": sum(1 for d in dead if d.armed),
    }


def remove(svc: Services, subscriber_id: str) -> dict[str, Any]:
    store = store_of(svc)
    store.remove(subscriber_id)
    return {"id": subscriber_id, "removed": True}


def replay(svc: Services, subscriber_id: str, body: Any) -> dict[str, Any]:
    """Arm changes for redelivery: the dead letters (empty body or `{"deadLetters": true}`), or a
    range of one mailbox's feed (`tenantId`, `mailboxId`, `fromSequence`, `toSequence`)."""
    store = store_of(svc)
    sub = store.get(subscriber_id)
    data = _body(body if body is not None else {})
    pairs: set[MailboxKey] = set()
    armed = 0
    if "tenantId" in data or "mailboxId" in data:
        tenant, user, low, high = plan_replay_range(data)
        calendar = data.get("calendar")
        key = MailboxKey(tenant, user, parse_handle(calendar if isinstance(calendar, str) else ""))
        if svc.state.find_mailbox(key) is None:
            from shared.errors import NotFoundError

            raise NotFoundError(f"mailbox {user} of tenant {tenant} is not enrolled")
        if svc.changes is None:
            raise CalsyncError("the change feed is not configured for these services")
        for change in svc.changes.read_after(key, low - 1, limit=MAX_REPLAY):
            if change.sequence > high:
                break
            if not sub.filter.matches(change):
                continue
            store.dead_letter(sub.id, change, "replay requested", replay=True)
            armed += 1
        pairs.add(key)
    else:
        extra = sorted(set(data) - {"deadLetters"})
        if extra or data.get("deadLetters", True) is not True:
            raise InputError(
                'a replay body is {} or {"deadLetters": true} (the dead letters), or names '
                "tenantId, mailboxId, fromSequence and toSequence (a range of the feed)"
            )
        for dead in store.dead_letters(sub.id):
            if not dead.armed:
                store.dead_letter(sub.id, dead.change, dead.error, replay=True)
                armed += 1
            change = dead.change
            calendar = "" if change.calendar_id == DEFAULT_CALENDAR else change.calendar_id
            pairs.add(MailboxKey(change.tenant_id, change.user_id, calendar))
    for key in sorted(pairs, key=lambda k: k.partition):
        store.enqueue(WorkItem(sub.id, key.tenant_id, key.user_id, key.calendar))
    return {"id": sub.id, "armed": armed, "mailboxes": len(pairs)}
