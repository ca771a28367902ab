"""Pure: the plan of a sync request, as one decision: fold it, defer it, or run a round (which
passes, under which lease), and what to do when a pass fails. The worker executes the plan and
decides nothing.

**Folding.** The cursor of a mailbox records `round_completed` (the start time of the last round
that finished and committed its delta link) and `full_completed` (the same, for the last full
resync); a SyncRequest carries `requested_at`, stamped by the intake when the notification
arrived, or by whoever asked for the round. A notification is sent after the change it reports
is committed, and the request is stamped after the notification arrived; a round that began
reading after `requested_at` therefore read Graph's state after that change, so once such a
round has completed, the request has nothing left to do. Hosts' clocks may disagree by up to
`margin`, so a request folds only when the completed round began more than `margin` after it.
Erring this way costs at most one extra (cheap, idempotent) delta round; erring the other way
would lose a change. A full request folds only into a completed full round; a request without a
readable `requested_at` never folds; `round_started` never folds anything (a started round may
still fail: only a completed one proves something).

**Bursts.** One change reaches us as 1-3 notifications spread over up to ~2.5 s (Graph sends a
change's notifications apart, and duplicates them), and one save in Outlook is often 2-3 changes
within half a second. By the rule above a burst costs a single delta round only if that round
*began* more than `margin` after the burst's last notification was stamped, so a request waits
DEBOUNCE_SECONDS before it becomes visible. The simulation in tests/core/test_rounds.py
(`python -m tests.core.test_rounds`, 40 seeds of 30 bursts) gives the share of bursts costing
one round and the change-to-mirror latency: 1 s 20%, 2 s 56%, 2.5 s 83%, 3 s 98% (p50 5.16 s),
3.5 s 100%. We take 3 s. A worker cannot tell a lone notification from the first of a burst (it
sees a request only once it is visible), but the intake can: it remembers each mailbox's last
request let through at once (core.intake.ArrivalGate, one memory per host). With LEADING_ROUND
(the default) a notification for a mailbox that has had no such request for DEBOUNCE_SECONDS is
visible at once, a leading round, and the rest of the burst waits the debounce and folds into
one trailing round (a mailbox changing without pause: a round at once every 3 s): in the same
simulation 1.88 rounds a burst instead of 1.02, and a median 3 s sooner (p50 2.13 s, of which
Graph's own delivery is up to 2.5 s). The price is a second delta request for a change whose
notification Graph duplicated: cheap next to Graph's limits (10,000 requests per 10 minutes
per mailbox), and the trade a user waiting on the mirror wants. Safety does not depend on
either: a delay only delays, and a fold is still proven by the stamps and completed rounds
alone, as above.

**Throttling.** Graph throttles per app and mailbox, so a Retry-After holds the mailbox, not one
message: the cursor keeps `throttled_until`, and every request for it defers until then (a
request a completed round covered still folds: it needs no Graph call).

**Failures.** A round that fails is never dropped (`plan_recovery`): the request goes back on
the queue with its `attempt` counted, after Graph's Retry-After or a backoff doubling from 2 s to
an hour; after a 410 in the fallback full resync it comes back as a full request. It stays until
a round succeeds (then it folds, or runs); the mailbox status shows `retry_at` and
`retry_reason` meanwhile. Only a rejected credential gives up: the lifecycle owns that mailbox.

**The lease** (one round per mailbox at a time, across hosts): free when nobody holds it or its
`until` has passed. A live lease defers the request until just after it ends (at most
MAX_DEFER_SECONDS, so it folds soon after that round completes). The worker writes the new holder
with the ETag it read, so when two hosts decide "run" at once one write fails and that host
defers by CONFLICT_DEFER_SECONDS. Leases last far longer than any plausible clock skew.
A lease is short (LEASE, 30 s) and renewed after a page once less than half of it is left
(`lease_due`: one cursor write per ~15 s of round, not one per page), ETag-guarded: a round that
cannot renew (its lease ran out and another round took it) aborts without committing. A round
with more than one page also queues (after its first) a takeover copy of its request
(`takeover_after`): the host keeps a running message invisible for minutes, so without the copy
a host killed mid-round would leave the mailbox stale until then; with it, the copy finds the
lease stale after ~30 s and runs, or finds the round completed and folds.

**Passes.** A round follows delta from the stored link, or lists the whole window from scratch
(first sync, a full request, the window rolled past its margin or changed options, or a 410:
the delta token expired). The cursor's window is the user's window widened by the margin
(core.window, WINDOW_MARGIN_DAYS), so it is recreated every margin + 1 days, not daily.

**The daily roll** (`Trigger.ROLL`, never folded): the safety net when it is due (the last full
listing is SAFETY_NET_DAYS old), else a full listing of a new window when the cursor's window no
longer holds the user's, else no Graph request at all: `Slide`, the user's window slid over the
mirror (events entering it are created on the feed, those leaving it deleted). Rounds of the
roll slide too, after their passes. The safety net first catches up on the cursor's own window,
then lists it in full: what that full pass still corrects is drift. Only then does it roll the
window. It also runs at once, whatever the schedule, after a fault that could have lost a
change (`is_fault`): a missed or removed subscription, an expired one, a restored credential,
a round that died holding the lease (a takeover). A 410 is its own full listing.
https://learn.microsoft.com/graph/delta-query-events
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.model import MailboxOptions, SyncRequest, Trigger, Window
from shared.core.retry import plan_backoff
from shared.core.state import CursorRecord
from shared.core.window import plan_delta_window, require_aware, window_is_stale
from shared.errors import CalsyncError, DeltaExpired, Throttled, TokenError

DEBOUNCE_SECONDS = 3.0  # the intake's visibility delay: a burst's notifications fold (Bursts)
MAX_DEFER_SECONDS = 5.0
DEFER_SLACK_SECONDS = 0.25  # lands just after a lease ends, not exactly on its edge
CONFLICT_DEFER_SECONDS = 1.0
DEFAULT_MARGIN = timedelta(milliseconds=500)
LEASE = timedelta(seconds=30)  # renewed page by page: a dead round is taken over in ~30 s
TAKEOVER_SLACK_SECONDS = 2.0
RETRY_BASE_SECONDS = 2.0  # a failed round's first retry waits 1-2 s, then doubling...
RETRY_CAP_SECONDS = 3600.0  # ...up to an hour: a request waits, visibly, but is never dropped
# The roll runs at 00:05 and its rounds spread over minutes: a safety net a week ago minus this
# is due, so that a weekly one does not slip to the eighth day.
SAFETY_NET_SLACK = timedelta(hours=6)
FAULT_TRIGGERS = frozenset({Trigger.EXPIRED, Trigger.RECREATED, Trigger.RESTORED})
FAULT_LIFECYCLE_EVENTS = frozenset({"missed", "subscriptionRemoved"})


@dataclass(frozen=True)
class Fold:
    """A completed round began after the request: nothing to do; delete the message."""


@dataclass(frozen=True)
class Defer:
    """The mailbox is busy: make the message visible again after `after` seconds."""

    after: float


@dataclass(frozen=True)
class Pass:
    """One walk of calendarView/delta over `window`: from scratch with a diff (`full`), or from
    the stored link; `count_drift` counts what it corrects as drift."""

    window: Window
    full: bool
    count_drift: bool = False


@dataclass(frozen=True)
class Run:
    """Take the lease until `lease_until` and run `passes` in order; the cursor then covers
    `window`. On a 410 in any pass, run `on_expired` instead of the rest."""

    passes: tuple[Pass, ...]
    window: Window
    lease_until: datetime

    @property
    def full(self) -> bool:
        """Whether the round counts as a full resync (it ends with a full pass)."""
        return self.passes[-1].full

    @property
    def on_expired(self) -> Pass:
        return Pass(self.window, full=True)


@dataclass(frozen=True)
class Slide:
    """The roll needs no Graph request today: slide the user's window over the mirror."""


Decision = Fold | Defer | Run | Slide


def is_fault(request: SyncRequest) -> bool:
    """Whether the request follows a fault that could have lost a change (it runs the safety
    net's full listing at once)."""
    if request.trigger is Trigger.LIFECYCLE:
        return request.lifecycle_event in FAULT_LIFECYCLE_EVENTS
    return request.trigger in FAULT_TRIGGERS


def safety_net_due(cursor: CursorRecord, now: datetime, every_days: int) -> bool:
    """Whether the weekly (every `every_days`) safety-net full listing is due at `now`."""
    done = cursor.full_completed
    if done is None:
        return True
    return (
        require_aware(now, "now") - require_aware(done, "full_completed")
        >= timedelta(days=every_days) - SAFETY_NET_SLACK
    )


def requested_time(request: SyncRequest) -> datetime | None:
    """`requested_at` as an aware UTC datetime (naive means UTC), or None when unreadable."""
    try:
        stamp = datetime.fromisoformat(request.requested_at)
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def stamp_request(request_time: datetime) -> str:
    """The `requested_at` text for a request made at `request_time` (ISO 8601 UTC)."""
    return request_time.astimezone(UTC).isoformat()


def defer_for_lease(remaining: float) -> Defer:
    """The one rule for waiting on a live lease with `remaining` seconds."""
    return Defer(min(max(remaining, 0.0), MAX_DEFER_SECONDS) + DEFER_SLACK_SECONDS)


def lease_due(now: datetime, until: datetime | None, lease: timedelta = LEASE) -> bool:
    """Whether a round's lease ending at `until` is renewed after the page done at `now`: once
    less than half of it is left (or its end is unknown)."""
    return until is None or until - require_aware(now, "now") < lease / 2


def renewed_lease(now: datetime, lease: timedelta = LEASE) -> datetime:
    """The new end of a lease renewed at `now` (after each page)."""
    return require_aware(now, "now") + lease


def takeover_after(lease: timedelta = LEASE) -> float:
    """Seconds until a takeover copy of a long round's request looks at its lease again: just
    after the lease would end were the round dead."""
    return lease.total_seconds() + TAKEOVER_SLACK_SECONDS


def round_status(cursor: CursorRecord, now: datetime) -> dict[str, Any]:
    """What an operator sees of a mailbox's round: running since when, by whom, until when,
    and whether its lease is stale (its holder stopped renewing it: dead, or about to lose it)."""
    running = bool(cursor.lease_owner)
    until = cursor.lease_until
    return {
        "round_in_progress_since": cursor.round_started if running else None,
        "lease_owner": cursor.lease_owner,
        "lease_until": until if running else None,
        "lease_stale": running and until is not None and require_aware(until, "lease_until") <= now,
    }


def _folds(request: SyncRequest, cursor: CursorRecord, margin: timedelta) -> bool:
    if request.trigger is Trigger.ROLL:
        return False  # the day's slide (and the safety net when due) must run
    requested = requested_time(request)
    covering = cursor.full_completed if request.full else cursor.round_completed
    if requested is None or covering is None:
        return False
    return require_aware(covering, "round_completed") > requested + margin


def plan_passes(
    request: SyncRequest,
    cursor: CursorRecord,
    options: MailboxOptions,
    now: datetime,
    *,
    margin_days: int = 0,
    safety: bool = False,
) -> tuple[tuple[Pass, ...], Window]:
    """The passes of a round started at `now` and the window they leave the cursor on;
    `safety`: run the safety net's catch-up and full listing."""
    old = cursor.window
    stale = old is None or window_is_stale(old, now, options, margin_days)
    if old is None or stale or request.full:
        window = plan_delta_window(now, options, margin_days)
    else:
        window = old
    if old is None or not cursor.delta_link:
        return (Pass(window, full=True),), window
    if safety or request.trigger is Trigger.SAFETY_NET:
        checks = (Pass(old, full=False), Pass(old, full=True, count_drift=True))
        return (checks if old == window else (*checks, Pass(window, full=True))), window
    return (Pass(window, full=request.full or stale),), window


def plan_round(
    request: SyncRequest,
    cursor: CursorRecord,
    options: MailboxOptions,
    *,
    now: datetime,
    lease: timedelta = LEASE,
    margin: timedelta = DEFAULT_MARGIN,
    margin_days: int = 0,
    safety_net_days: int = 1,
) -> Decision:
    """Fold, Defer, Run or Slide for `request`, given the mailbox's cursor (its rounds and
    lease), the window's margin in days and the safety net's period in days."""
    now = require_aware(now, "now")
    if _folds(request, cursor, margin):
        return Fold()
    if cursor.throttled_until is not None:
        until = require_aware(cursor.throttled_until, "throttled_until")
        if until > now:  # Graph throttles per app and mailbox: every request waits it out
            return Defer((until - now).total_seconds())
    takeover = False
    if cursor.lease_owner and cursor.lease_until is not None:
        until = require_aware(cursor.lease_until, "lease_until")
        if until > now:
            return defer_for_lease((until - now).total_seconds())
        takeover = True  # its round died holding the lease: pages may be half applied
    safety = takeover or is_fault(request)
    if request.trigger is Trigger.ROLL:
        safety = safety or safety_net_due(cursor, now, safety_net_days)
        stale = cursor.window is None or window_is_stale(cursor.window, now, options, margin_days)
        if not safety and not stale and cursor.delta_link:
            return Slide()
    passes, window = plan_passes(
        request, cursor, options, now, margin_days=margin_days, safety=safety
    )
    return Run(passes, window, now + lease)


# --- after a failed round ------------------------------------------------------------------------
@dataclass(frozen=True)
class Requeue:
    """Put `request` (its attempt counted) back with this visibility delay; when Graph throttled
    the mailbox, every request for it waits until `throttled_until` (kept on the cursor)."""

    after: float
    request: SyncRequest
    reason: str
    throttled_until: datetime | None = None


@dataclass(frozen=True)
class GiveUp:
    """Retrying this request cannot help and something else takes over (a rejected credential:
    the mailbox's lifecycle probes it at the poll interval): record the error and drop it."""


Recovery = Requeue | GiveUp


def retry_delay(attempt: int, rng: random.Random) -> float:
    """Seconds before retry `attempt` (1, 2, ...) of a failed round: doubling from
    RETRY_BASE_SECONDS, capped at RETRY_CAP_SECONDS, "equal jitter" (half fixed, half random)
    so that retries of many mailboxes spread out yet never come back at once."""
    if attempt < 1:
        raise CalsyncError(f"attempt counts failures so far and starts at 1, got {attempt}")
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0 ** min(attempt - 1, 20))
    return ceiling * rng.uniform(0.5, 1.0)


def plan_recovery(
    error: CalsyncError, request: SyncRequest, *, now: datetime, rng: random.Random
) -> Recovery:
    """What a failed round does with its request. Nothing is dropped that a later round could
    do: the request goes back with its attempt counted, after Graph's Retry-After (and the
    mailbox waits with it) or an exponential backoff; after a 410 the retry lists the window
    from scratch. Only a rejected credential gives up (the lifecycle owns that mailbox then).
    Storage failures never get here: they raise, as no state could be recorded anyway."""
    now = require_aware(now, "now")
    attempt = request.attempt + 1
    again = replace(request, attempt=attempt)
    reason = f"{error.detail_code}: {error.message}"
    if isinstance(error, TokenError) and not error.transient:
        return GiveUp()
    if isinstance(error, Throttled):
        wait = plan_backoff(attempt, error.retry_after or None, rng)
        if error.retry_after:
            return Requeue(wait, again, reason, now + timedelta(seconds=wait))
        return Requeue(wait, again, reason)
    if isinstance(error, DeltaExpired):
        again = replace(again, full=True)
    return Requeue(retry_delay(attempt, rng), again, reason)
