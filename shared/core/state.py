"""Pure: the records the state store keeps per mailbox (the mailbox row and its delta cursor).
The Tables adapter maps them to entities; services read and replace them whole."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.core.lifecycle import State
from shared.core.model import MailboxKey, MailboxOptions, Mode, Window
from shared.core.times import iso_utc


@dataclass(frozen=True)
class MailboxStatus:
    """What an operator sees: the effective mode and why, the subscription, the last results."""

    state: str = ""  # a core.lifecycle.State value; "" on rows older than the state machine
    fallback: str = ""  # why a webhook mailbox is polled (core.lifecycle.Fallback), else ""
    mode: Mode = "poll"
    mode_reason: str = "not yet subscribed"
    subscription_id: str = ""
    subscription_expiry: datetime | None = None
    last_notification: datetime | None = None
    last_sync: datetime | None = None
    last_sync_result: str = ""
    last_error: str = ""
    last_error_code: str = ""
    last_error_at: datetime | None = None
    next_subscribe_attempt: datetime | None = None
    next_poll: datetime | None = None
    event_count: int = 0
    retry_at: datetime | None = None  # a failed round's request is queued again for then...
    retry_reason: str = ""  # ...because of this (Graph's or Entra's code and message)


@dataclass(frozen=True)
class MailboxRecord:
    """An enrolled mailbox: who, with which options, enabled or not, and its status."""

    key: MailboxKey
    upn: str
    options: MailboxOptions = field(default_factory=MailboxOptions)
    enabled: bool = True
    status: MailboxStatus = field(default_factory=MailboxStatus)
    enrolled_at: datetime | None = None
    # A non-default calendar (key.calendar set): its Graph id and display name at enrolment.
    calendar_id: str = ""
    calendar_name: str = ""

    def with_status(self, **changes: Any) -> MailboxRecord:
        return replace(self, status=replace(self.status, **changes))

    @property
    def state(self) -> State:
        """The lifecycle state; rows written before it was stored are read from their mode."""
        s = self.status
        if s.state in {member.value for member in State}:
            return State(s.state)
        if not self.enabled:
            return State.REMOVED
        if s.mode == "webhook" and s.subscription_id:
            return State.SUBSCRIBED
        if self.options.mode == "poll":
            return State.POLL_CHOSEN
        if s.next_subscribe_attempt is not None:
            return State.POLL_FALLBACK
        return State.ENROLLED

    def health(self, now: datetime) -> str:
        """A one-line health summary for listings: "ok" only while the mailbox is synced, never
        for a failed last round or a webhook mailbox whose subscription has expired (after an
        outage, say, until it is recreated)."""
        s = self.status
        if not self.enabled:
            return "disabled"
        if s.last_error:
            return f"error: {s.last_error_code or 'failed'}: {s.last_error}"
        if s.last_sync_result == "failed":
            return "error: failed: the last round failed"
        expiry = s.subscription_expiry
        if s.mode == "webhook" and expiry is not None and expiry <= now:
            return (
                f"error: subscription_expired: subscription {s.subscription_id} expired at "
                f"{iso_utc(expiry)}; it is being recreated"
            )
        if s.mode == "poll":
            return f"ok (poll mode: {s.mode_reason})"
        return "ok (webhook)"


@dataclass(frozen=True)
class CursorRecord:
    """The delta cursor of one mailbox calendar, plus the lease and coalescing marks."""

    key: MailboxKey
    delta_link: str = ""
    window: Window | None = None
    lease_owner: str = ""
    lease_until: datetime | None = None
    round_started: datetime | None = None
    round_completed: datetime | None = None
    full_completed: datetime | None = None
    throttled_until: datetime | None = None  # Graph's Retry-After for this mailbox (all requests)
    etag: str = ""
