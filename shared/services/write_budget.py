"""Subscription writes paced per tenant across every host: Graph allows 500 create, update or
delete per 20 s per app and tenant, whichever host makes them. Each host takes tokens from the
tenant's shared budget (core.renewals.SlotBudget, kept in the `pacing` table) a block at a time
and spends them locally, so a write costs a Table request only once per block; a token is only
good in its own slot (tokens left when the slot ends are dropped, never carried over)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from shared.adapters.pacing_tables import PacingTable
from shared.core.renewals import SlotBudget
from shared.core.window import require_aware


class SharedPacer:
    """One host's view of the shared budget: the tokens it holds per tenant and slot."""

    def __init__(self, table: PacingTable, budget: SlotBudget | None = None) -> None:
        self.table = table
        self.budget = budget or SlotBudget()
        self._held: dict[str, tuple[int, int]] = {}  # tenant -> (slot, tokens left)
        self._spent: dict[str, int] = {}  # tenant -> the latest slot found spent
        self._lock = threading.Lock()  # invocations on several threads of one host

    def delay(self, tenant_id: str, now: datetime, max_wait: float) -> float | None:
        """Seconds until this host may make one subscription write for `tenant_id` (the token
        is taken), or None when no slot within `max_wait` seconds has one left."""
        now = require_aware(now, "now")
        budget = self.budget
        first = budget.slot_of(now)
        last = budget.slot_of(datetime.fromtimestamp(now.timestamp() + max_wait, UTC))
        with self._lock:
            slot, left = self._held.get(tenant_id, (-1, 0))
            if slot >= first and left > 0:
                self._held[tenant_id] = (slot, left - 1)
                return max(0.0, budget.slot_start(slot) - now.timestamp())
            # The held slot's block is used up: ask that slot again for another block (it holds
            # `per_slot`, several blocks), and move on only once the table finds it spent.
            start = max(slot if slot >= first else first, self._spent.get(tenant_id, -1) + 1)
            for candidate in range(start, last + 1):
                got = self.table.reserve(
                    tenant_id, candidate, lambda used: budget.grant(used, budget.block)
                )
                if got:
                    self._held[tenant_id] = (candidate, got - 1)
                    return max(0.0, budget.slot_start(candidate) - now.timestamp())
                self._spent[tenant_id] = candidate  # other hosts took it all: never ask again
        return None

    def prune(self, now: datetime) -> int:
        """Drop the budget's rows older than an hour (the daily roll)."""
        return self.table.prune(self.budget.slot_of(now) - int(3600 / self.budget.slot_seconds))
