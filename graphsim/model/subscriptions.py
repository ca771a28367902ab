"""`/subscriptions`: create, get, list, renew, delete, reauthorize, and what they notify.

Rule (https://learn.microsoft.com/graph/api/subscription-post-subscriptions and
https://learn.microsoft.com/graph/api/resources/subscription): a subscription is
for one mailbox's events, lives 45 to 10,080 minutes (a shorter request is raised to 45, a
longer one is 400), counts against 1,000 per mailbox for all apps together (403), is unique per
app + resource + changeType (409), is created only after its notificationUrl and its
lifecycleNotificationUrl each answer the validation handshake (400 otherwise), never shows its
clientState on GET, and disappears at its expiry on the virtual clock (404 afterwards).
A pending `reauthorizationRequired` pauses notifications (changes meanwhile are lost) until the
app reauthorizes or renews. The HTTP handlers live in graphsim/api/subscriptions.py; this
module owns the state. The virtual now, the knobs, the counters and the delivery sink (where a
notification item goes) are given to the constructor.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from graphsim.counters import Counters
from graphsim.errors import GraphRequestError
from graphsim.knobs import Knobs
from graphsim.model.calendar.timezones import format_timestamp
from graphsim.model.directory import Mailbox

# Where notification items go: (url, "change" | "lifecycle", item, subscription id).
Send = Callable[[str, str, dict[str, Any], str], None]

CHANGE_TYPES = ("created", "updated", "deleted")
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
RESOURCE = re.compile(
    r"^/?users/([^/]+)/(?:events|calendar/events|calendars/([^/]+)/events)$", re.IGNORECASE
)


@dataclass
class Subscription:
    id: str
    app_id: str
    tenant_id: str
    mailbox_id: str
    resource: str
    change_type: str
    change_types: frozenset[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime
    latest_tls: str
    creator_id: str
    last_renewal: datetime | None = None
    last_reauthorize: datetime | None = None
    paused: bool = False
    # Created with `Prefer: IdType="ImmutableId"`: its notifications carry immutable ids, else
    # REST ids, for its whole life (outlook-immutable-id: "Immutable ID with change notifications")
    immutable_ids: bool = False
    # The calendar subscribed to: "" for `users/{id}/events` (the default calendar only), else
    # the Graph id of `users/{id}/calendars/{id}/events`.
    calendar_id: str = ""

    def as_graph(self, base_url: str, *, with_client_state: bool) -> dict[str, Any]:
        return {
            "@odata.context": f"{base_url}/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.app_id,
            "changeType": self.change_type,
            "clientState": self.client_state if with_client_state else None,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": format_timestamp(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": self.latest_tls,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


class Subscriptions:
    def __init__(
        self, *, now: Callable[[], datetime], knobs: Knobs, counters: Counters, send: Send
    ) -> None:
        self._now = now
        self._knobs = knobs
        self._counters = counters
        self._send = send
        self.by_id: dict[str, Subscription] = {}

    # --- queries -----------------------------------------------------------------------------
    def purge_expired(self) -> int:
        now = self._now()
        gone = [s for s in self.by_id.values() if s.expiration <= now]
        for sub in gone:
            del self.by_id[sub.id]
        if gone:
            self._counters.note("subscriptions_expired", len(gone))
        return len(gone)

    def find(self, sub_id: str, app_id: str, tenant_id: str) -> Subscription:
        """The caller's live subscription, or 404 (gone, expired, or another app's)."""
        self.purge_expired()
        sub = self.by_id.get(sub_id.lower())
        if sub is None or sub.app_id != app_id or sub.tenant_id.lower() != tenant_id.lower():
            raise GraphRequestError(
                404,
                "ResourceNotFound",
                f"The object was not found. Subscription '{sub_id}' does not exist (expired or "
                "deleted): create a new subscription, do not retry.",
            )
        return sub

    def count_for_mailbox(self, mailbox_id: str) -> int:
        return sum(1 for s in self.by_id.values() if s.mailbox_id == mailbox_id)

    def duplicate_of(
        self, app_id: str, mailbox_id: str, change_types: frozenset[str], calendar_id: str = ""
    ) -> bool:
        return any(
            s.app_id == app_id
            and s.mailbox_id == mailbox_id
            and s.change_types == change_types
            and s.calendar_id == calendar_id
            for s in self.by_id.values()
        )

    # --- lifetime rules ---------------------------------------------------------------------
    def clamp_expiry(self, requested: datetime, now: datetime) -> datetime:
        knobs = self._knobs
        if requested <= now:
            raise GraphRequestError(
                400,
                "InvalidRequest",
                "Subscription expiration can only be in the future; send a later "
                "expirationDateTime.",
            )
        if requested > now + timedelta(minutes=knobs.subscription_max_minutes):
            raise GraphRequestError(
                400,
                "InvalidRequest",
                f"Subscription expiration can only be {knobs.subscription_max_minutes} minutes "
                "in the future.",
            )
        # A requested lifetime under 45 minutes is raised to 45 (api/resources/subscription).
        floor = now + timedelta(minutes=knobs.subscription_min_minutes)
        return max(requested, floor)

    def check_gap(self, sub: Subscription, now: datetime, doing: str) -> None:
        """Never reauthorize and PATCH the same subscription within 10 minutes."""
        gap = timedelta(seconds=self._knobs.reauthorize_patch_gap_s)
        other = sub.last_reauthorize if doing == "renew" else sub.last_renewal
        if other is not None and now - other < gap:
            raise GraphRequestError(
                409,
                "Conflict",
                f"Subscription '{sub.id}' was {'reauthorized' if doing == 'renew' else 'renewed'} "
                f"less than {gap.total_seconds() / 60:g} minutes ago; do not combine "
                "reauthorize and PATCH within 10 minutes.",
            )

    # --- notifications ----------------------------------------------------------------------
    def on_change(self, mailbox: Mailbox, change_type: str, event_id: str) -> None:
        """A mailbox's calendar changed: notify every live subscription that asked for that
        calendar (`users/{id}/events` hears the default calendar only)."""
        self.purge_expired()
        targets = [
            s
            for s in self.by_id.values()
            if s.mailbox_id == mailbox.user.id
            and s.calendar_id == mailbox.cal_id
            and change_type in s.change_types
        ]
        if not targets:
            return
        user_id = mailbox.user.id
        etag = None
        if change_type != "deleted":
            with contextlib.suppress(GraphRequestError):
                etag = mailbox.store.get(event_id)["@odata.etag"]
        for sub in targets:
            if sub.paused:
                self._counters.note("items_lost_reauthorization_pending")
                continue
            shown = event_id if sub.immutable_ids else mailbox.store.rest_id(event_id)
            resource = f"Users/{user_id}/Events/{shown}"
            if sub.calendar_id:  # named by the resource subscribed to
                resource = f"Users/{user_id}/Calendars/{sub.calendar_id}/Events/{shown}"
            data: dict[str, Any] = {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": resource,
                "id": shown,
            }
            if etag is not None:
                data["@odata.etag"] = etag
            item: dict[str, Any] = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": format_timestamp(sub.expiration),
                "changeType": change_type,
                "resource": resource,
                "resourceData": dict(data),
                "tenantId": sub.tenant_id,
            }
            if sub.client_state is not None:
                item["clientState"] = sub.client_state
            self._send(sub.notification_url, "change", item, sub.id)

    def lifecycle(self, sub: Subscription, event: str) -> bool:
        """Send a lifecycle notification; `subscriptionRemoved` really removes the
        subscription, `reauthorizationRequired` pauses it. False when it has no lifecycle URL
        (the event then only takes effect)."""
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"lifecycle event must be one of {', '.join(LIFECYCLE_EVENTS)}")
        if event == "subscriptionRemoved":
            self.by_id.pop(sub.id, None)
        elif event == "reauthorizationRequired":
            sub.paused = True
        if not sub.lifecycle_url:
            return False
        item: dict[str, Any] = {
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": format_timestamp(sub.expiration),
            "tenantId": sub.tenant_id,
            "resource": sub.resource,
            "lifecycleEvent": event,
        }
        if sub.client_state is not None:
            item["clientState"] = sub.client_state
        self._counters.note(f"lifecycle_{event}")
        self._send(sub.lifecycle_url, "lifecycle", item, sub.id)
        return True

    def missed(self, sub_id: str) -> None:
        sub = self.by_id.get(sub_id)
        if sub is not None:
            self.lifecycle(sub, "missed")

    def add(self, **fields: Any) -> Subscription:
        """Store a new live subscription (every field but the id, which is made here)."""
        sub = Subscription(id=str(uuid.uuid4()), **fields)
        self.by_id[sub.id] = sub
        return sub
