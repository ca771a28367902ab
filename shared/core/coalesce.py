"""Pure: folding a burst of sync requests for one mailbox into one delta round, losing none.

The cursor of a mailbox records `round_started` (the worker's clock when the current or last
delta round began reading Graph, written BEFORE the first read), `round_completed` (the start
time of the last round that finished and committed its delta link) and `full_completed` (the
same, for the last full resync). A SyncRequest carries `requested_at`, stamped by the intake
when the notification arrived, or by whoever asked for the round.

Why folding is safe: a notification is sent after the change it reports is committed, and the
request is stamped after the notification arrived. A round that began reading after
`requested_at` therefore read Graph's state after that change, so once such a round has
completed, the request has nothing left to do. The intake and the worker run on different hosts
whose clocks may disagree by up to `margin`; so a request folds only when the completed round
began more than `margin` AFTER it (`round_completed > requested_at + margin`): with clock error
under `margin`, that round truly began after the request. Erring this way costs at most one
extra (cheap, idempotent) delta round; erring the other way would lose a change.

`plan_request` decides, for a request taken off the queue:
- Fold(): a round that began after the request has completed: delete the message.
- Retry(after): the mailbox is leased by a live lease: a round is running, and it may or may not
  cover this request (it may fail). Re-queue the message with this visibility delay; it folds
  once that round completes, or runs. Never drop it: only a COMPLETED round proves anything,
  which is also why `round_started` never folds a request on its own.
- Run(): take the lease (`lease.plan_lease`, ETag-guarded) and run a round. Delete the message
  only after the round commits; if the worker dies, the queue shows the message again.
A full request (resync the whole window, diff the mirror) folds only into a completed full round,
never into an incremental one (a full round records both `full_completed` and `round_completed`:
it is also a round). A request without a readable `requested_at` never folds.

Intake enqueues with a visibility delay of DEBOUNCE_SECONDS, so the 2-3 notifications Graph
sends per edit (and bursts of edits) are all waiting when the first round starts, and fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.core.model import SyncRequest
from shared.core.window import require_aware

DEBOUNCE_SECONDS = 1.0
MAX_RETRY_SECONDS = 5.0
RETRY_SLACK_SECONDS = 0.25  # lands just after a lease ends, not exactly on its edge
DEFAULT_MARGIN = timedelta(milliseconds=500)


@dataclass(frozen=True)
class Fold:
    """A completed round began after the request: nothing to do; delete the message."""


@dataclass(frozen=True)
class Retry:
    """The mailbox is busy: make the message visible again after `after` seconds."""

    after: float


@dataclass(frozen=True)
class Run:
    """Lease the mailbox and run a delta round (full when the request says so)."""


Decision = Fold | Retry | Run


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


def plan_request(
    request: SyncRequest,
    *,
    round_started: datetime | None,
    round_completed: datetime | None,
    lease_until: datetime | None,
    now: datetime,
    margin: timedelta = DEFAULT_MARGIN,
    full_completed: datetime | None = None,
) -> Decision:
    """Fold, Retry or Run for `request`, given the mailbox cursor's round and lease times."""
    # round_started is part of the cursor's record but cannot fold anything: see the docstring.
    del round_started
    requested = requested_time(request)
    covering = full_completed if request.full else round_completed
    if covering is not None:
        covering = require_aware(covering, "full_completed" if request.full else "round_completed")
    now = require_aware(now, "now")
    if requested is not None and covering is not None and covering > requested + margin:
        return Fold()
    if lease_until is not None and require_aware(lease_until, "lease_until") > now:
        remaining = (lease_until - now).total_seconds()
        return Retry(after=min(remaining, MAX_RETRY_SECONDS) + RETRY_SLACK_SECONDS)
    return Run()
