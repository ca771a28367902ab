"""Pure: when to renew Graph subscriptions, how fast to write them, and which to create or drop.

Rules (learn.microsoft.com/graph/api/resources/subscription, /graph/throttling-limits):
- An Outlook event subscription lives at most 10,080 minutes; Graph raises a requested expiry
  under 45 minutes to 45. `plan_expiry` asks for a bit under the maximum minus a random spread,
  so renewals of many mailboxes enrolled together drift apart instead of arriving in one burst.
- `plan_renewals` picks subscriptions expiring within `renew_within` (not yet expired: an expired
  one is gone at Graph and must be recreated, see `plan_reconcile`), soonest first, skipping any
  reauthorized less than 10 minutes ago (Graph: never reauthorize and PATCH the same
  subscription within 10 minutes).
- `WritePacer`: Graph allows 500 subscription create/update/delete per 20 s per app per tenant.
  The pacer keeps each tenant at 450 (a margin) in ANY 20 s window. It is a sliding-window log,
  not a refilling token bucket: a bucket of 450 tokens refilled at 450 per 20 s admits a full
  burst plus the refill, up to 900 writes in one 20 s window. It paces one process: hosts that
  write for the same tenant at once must share the limit (e.g. `limit = 450 // hosts`).
- `SlotBudget` (shared by hosts): time is cut into slots of `per / slots_per_window` (5 s) and
  each tenant's slot holds at most `limit // (slots_per_window + 2)` writes (75). A window of
  `per` touches at most `slots_per_window + 1` slots, one more for a host clock up to a slot
  apart: any 20 s holds at most 6 x 75 = 450 writes from all hosts together. Hosts reserve
  tokens in blocks (`grant`: up to `block` a time, ETag-guarded on one Table row per tenant and
  slot), so a renewal costs a Table request only once per block.
- `plan_reauthorize`: the other side of the 10-minute rule. A subscription renewed (PATCHed with a
  new expiry) less than 10 minutes ago is not reauthorized: that PATCH reauthorized it already
  (learn.microsoft.com/graph/change-notifications-lifecycle-events, "Responding to
  reauthorizationRequired"). Creation is not a PATCH and does not count.
- `is_duplicate_lifecycle`: Graph may deliver one lifecycle notification several times; the same
  event for the same subscription within `LIFECYCLE_DEDUP` of the one acted on is a copy.
- `plan_reconcile`: every desired mailbox ends with exactly one live subscription.
- `plan_expired`: the subscriptions to recreate now because they expired (the host was down
  longer than their life): each mailbox's newest one when even that one has expired. The poll
  timer runs it every 30 s, so healing starts within a minute of a host starting instead of
  waiting for the 15-minute renewal run.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.core.model import MailboxKey, SubscriptionRecord
from shared.core.window import require_aware
from shared.errors import InputError

MAX_LIFETIME = timedelta(minutes=10080)
MIN_LIFETIME = timedelta(minutes=45)
REAUTHORIZE_GAP = timedelta(minutes=10)
LIFECYCLE_DEDUP = timedelta(minutes=2)
DEFAULT_LIFETIME = timedelta(days=7) - timedelta(minutes=15)
_TICK = timedelta(milliseconds=1)


def plan_expiry(
    now: datetime,
    rng: random.Random,
    *,
    lifetime: timedelta = DEFAULT_LIFETIME,
    spread: timedelta = timedelta(hours=6),
) -> datetime:
    """now + lifetime - uniform(0, spread), kept within [now + 45 min, now + 10,080 min]."""
    now = require_aware(now, "now")
    wanted = now + lifetime - spread * rng.random()
    return min(max(wanted, now + MIN_LIFETIME), now + MAX_LIFETIME)


def plan_renewals(
    subs: Sequence[SubscriptionRecord],
    now: datetime,
    rng: random.Random,
    *,
    renew_within: timedelta = timedelta(days=2),
) -> list[tuple[SubscriptionRecord, datetime]]:
    """Subscriptions to renew now, soonest expiry first, each with its new expiry."""
    now = require_aware(now, "now")
    due = [
        sub
        for sub in subs
        if now < sub.expiration <= now + renew_within
        and (sub.last_reauthorized is None or now - sub.last_reauthorized >= REAUTHORIZE_GAP)
    ]
    due.sort(key=lambda sub: (sub.expiration, sub.subscription_id))
    return [(sub, plan_expiry(now, rng)) for sub in due]


def plan_reauthorize(sub: SubscriptionRecord, now: datetime) -> bool:
    """Whether to POST /reauthorize for `sub` now: not within REAUTHORIZE_GAP of its last renewal
    PATCH (a clock behind the renewing host's counts as within)."""
    now = require_aware(now, "now")
    return sub.last_renewed is None or now - sub.last_renewed >= REAUTHORIZE_GAP


def is_duplicate_lifecycle(
    sub: SubscriptionRecord, event: str, now: datetime, *, window: timedelta = LIFECYCLE_DEDUP
) -> bool:
    """Whether lifecycle `event` for `sub` is a copy of the one acted on less than `window` ago
    (a mark stamped by a host whose clock runs ahead counts as recent)."""
    now = require_aware(now, "now")
    return (
        bool(event)
        and sub.last_lifecycle_event == event
        and sub.last_lifecycle_at is not None
        and now - sub.last_lifecycle_at < window
    )


@dataclass
class WritePacer:
    """Per-tenant pacing of subscription writes: at most `limit` in any window of `per`."""

    limit: int = 450
    per: timedelta = timedelta(seconds=20)
    _log: dict[str, deque[datetime]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # The Functions host may run invocations on several threads of one process.
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.limit < 1 or self.per <= timedelta(0):
            raise InputError(
                f"WritePacer needs limit >= 1 and per > 0, got {self.limit}, {self.per}"
            )

    def delay(self, tenant_id: str, now: datetime) -> float:
        """Seconds to wait before the next write for `tenant_id`; records that write."""
        now = require_aware(now, "now")
        with self._lock:
            log = self._log.setdefault(tenant_id, deque(maxlen=self.limit))
            at = now
            if len(log) == self.limit:
                # The write `limit` places back must have left the window before this one
                # starts: strictly after, so even a window closed at both ends holds `limit`.
                at = max(at, log[0] + self.per + _TICK)
            if log and log[-1] > at:
                at = log[-1]  # keep the log in order when callers run slightly behind
            log.append(at)
        return (at - now).total_seconds()


@dataclass(frozen=True)
class SlotBudget:
    """The subscription-write budget all hosts share: `limit` per `per`, in slots."""

    limit: int = 450
    per: timedelta = timedelta(seconds=20)
    slots_per_window: int = 4
    block: int = 25

    def __post_init__(self) -> None:
        if self.slots_per_window < 1 or self.per <= timedelta(0) or self.block < 1:
            raise InputError("SlotBudget needs slots_per_window >= 1, per > 0 and block >= 1")
        if self.per_slot < 1:
            raise InputError(f"SlotBudget limit {self.limit} is too small for its slots")

    @property
    def slot_seconds(self) -> float:
        return self.per.total_seconds() / self.slots_per_window

    @property
    def per_slot(self) -> int:
        """Writes one slot may hold: a window touches slots_per_window + 1, skew one more."""
        return self.limit // (self.slots_per_window + 2)

    def slot_of(self, now: datetime) -> int:
        """The number of the slot `now` falls in (slots count from the Unix epoch)."""
        return int(require_aware(now, "now").timestamp() // self.slot_seconds)

    def slot_start(self, slot: int) -> float:
        """The Unix time a slot begins."""
        return slot * self.slot_seconds

    def grant(self, used: int, wanted: int) -> int:
        """Tokens a reservation gets in a slot that holds `used`: up to `wanted` and `block`."""
        return max(0, min(wanted, self.block, self.per_slot - used))


@dataclass(frozen=True)
class SubscriptionActions:
    """What `plan_reconcile` asks for: mailboxes to subscribe, subscriptions to drop or redo."""

    create: tuple[MailboxKey, ...]
    delete: tuple[SubscriptionRecord, ...]
    recreate: tuple[SubscriptionRecord, ...]


def _order(sub: SubscriptionRecord) -> tuple[str, str, str]:
    return (sub.tenant_id, sub.user_id, sub.subscription_id)


def plan_reconcile(
    desired: set[MailboxKey], actual: Sequence[SubscriptionRecord], now: datetime
) -> SubscriptionActions:
    """Create, delete and recreate so each desired mailbox has one live subscription."""
    now = require_aware(now, "now")
    by_mailbox: dict[MailboxKey, list[SubscriptionRecord]] = {}
    for sub in actual:
        by_mailbox.setdefault(sub.mailbox, []).append(sub)
    create = sorted(
        (key for key in desired if key not in by_mailbox), key=lambda k: (k.tenant_id, k.user_id)
    )
    delete: list[SubscriptionRecord] = []
    recreate: list[SubscriptionRecord] = []
    for key, subs in by_mailbox.items():
        if key not in desired:
            delete.extend(subs)
            continue
        # Keep the one expiring last; the id breaks ties so every host picks the same one.
        ranked = sorted(subs, key=lambda s: (s.expiration, s.subscription_id), reverse=True)
        keeper, extras = ranked[0], ranked[1:]
        if keeper.expiration <= now:
            recreate.append(keeper)
        delete.extend(extras)
    return SubscriptionActions(
        create=tuple(create),
        delete=tuple(sorted(delete, key=_order)),
        recreate=tuple(sorted(recreate, key=_order)),
    )


def plan_expired(actual: Sequence[SubscriptionRecord], now: datetime) -> list[SubscriptionRecord]:
    """Per mailbox, its newest subscription when that one has expired (older ones are extras
    for `plan_reconcile` to delete); ordered by tenant, user, id."""
    now = require_aware(now, "now")
    newest: dict[MailboxKey, SubscriptionRecord] = {}
    for sub in actual:
        key = sub.mailbox
        kept = newest.get(key)
        if kept is None or (sub.expiration, sub.subscription_id) > (
            kept.expiration,
            kept.subscription_id,
        ):
            newest[key] = sub
    return sorted((s for s in newest.values() if s.expiration <= now), key=_order)
