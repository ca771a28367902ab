"""Pure: who may hold a mailbox's sync lease (DESIGN.md invariant 2: one sync per mailbox).

Rule: a lease is free when nobody holds it or its `until` has passed; its holder may renew it
at any time. The decision is only half of the lease: the adapter writes the new holder and
`until` with the ETag it read, so when two hosts decide "acquire" at once, one write fails with
StateConflict and that host treats the mailbox as busy. Clock skew between hosts shortens or
lengthens a lease by the skew, so leases last far longer than any plausible skew (tens of
seconds against well under one) and holders renew well before `until`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.core.window import require_aware
from shared.errors import InputError


@dataclass(frozen=True)
class LeaseDecision:
    """`acquired` with the new `until`, or busy: `until` of the live lease and seconds left."""

    acquired: bool
    until: datetime
    remaining: float = 0.0

    @property
    def busy(self) -> bool:
        return not self.acquired


def plan_lease(
    owner: str, holder: str | None, until: datetime | None, now: datetime, duration: timedelta
) -> LeaseDecision:
    """Acquire (or renew) the lease for `owner`, or report it busy with the seconds left."""
    if not owner:
        raise InputError("a lease owner must be a non-empty id (e.g. host id + invocation id)")
    if duration <= timedelta(0):
        raise InputError(f"a lease duration must be positive, got {duration}")
    now = require_aware(now, "now")
    if holder and holder != owner and until is not None:
        until = require_aware(until, "until")
        if until > now:
            return LeaseDecision(
                acquired=False, until=until, remaining=(until - now).total_seconds()
            )
    return LeaseDecision(acquired=True, until=now + duration)
