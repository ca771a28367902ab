"""Pure: the intake's memory of subscriptions, so that a notification is answered from memory;
and of arrivals, so that a quiet mailbox syncs at its first notification (ArrivalGate).

Rule: the intake asks storage about a (tenant, subscription) at most once per window. A found
subscription is remembered for POSITIVE_TTL_SECONDS: a subscription deleted meanwhile may still
queue a sync request, which the worker ignores for a removed mailbox (harmless). A missing one is
remembered for NEGATIVE_TTL_SECONDS only, so a subscription stored after a negative answer (a
notification racing the write of its record) is accepted at most that long after. The cache is
bounded (oldest entries go first), so forged ids cannot grow it. `now` is a monotonic second
count passed in; the lock only makes one instance safe to share between the intake's threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from shared.core.model import SubscriptionRecord

POSITIVE_TTL_SECONDS: Final = 60.0
NEGATIVE_TTL_SECONDS: Final = 5.0
MAX_ENTRIES: Final = 20_000

Key = tuple[str, str]  # (tenant id, subscription id)


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


class SubscriptionCache:
    """(tenant, subscription) → the stored record, or None for "not ours", each for its TTL."""

    MISS: Final = _Miss()

    def __init__(
        self,
        *,
        positive: float = POSITIVE_TTL_SECONDS,
        negative: float = NEGATIVE_TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._ttl = (positive, negative)
        self._max = max_entries
        self._entries: OrderedDict[Key, tuple[float, SubscriptionRecord | None]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Key, *, now: float) -> SubscriptionRecord | _Miss | None:
        """The remembered answer for `key`, or MISS when there is none still valid."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return self.MISS
            stored_at, record = entry
            ttl = self._ttl[0] if record is not None else self._ttl[1]
            if now - stored_at >= ttl:
                del self._entries[key]
                return self.MISS
            return record

    def store(self, key: Key, record: SubscriptionRecord | None, *, now: float) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (now, record)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


class ArrivalGate:
    """The visibility delay of each notification's sync request: 0 for a mailbox that has had
    no request at once for `quiet` seconds (a leading round, so that a change reaches the
    mirror in about a second), `debounce` for the others, so that the rest of a burst, and
    Graph's duplicates of its first change, fold into one trailing round (core.rounds,
    Bursts). So a burst costs two delta rounds where the debounce alone costs one and waits
    `debounce` seconds longer for every change; a mailbox changing without pause gets a round
    at once at most every `quiet` seconds, and each of the others within `debounce`.

    The memory is the process's: hosts behind a load balancer each let a mailbox's request
    through at once, which costs a round more, never a change (folding is decided by the stamps
    alone). Entries older than `quiet` are dropped as arrivals come (they are kept in the order
    they were let through), and at most `max_entries` are kept (an evicted mailbox only gets
    its next round sooner). `now` is a monotonic second count passed in; the lock makes one
    instance safe to share between the intake's threads."""

    def __init__(self, *, quiet: float, debounce: float, max_entries: int = MAX_ENTRIES) -> None:
        self._quiet = quiet
        self._debounce = debounce
        self._max = max_entries
        self._led: OrderedDict[str, float] = OrderedDict()  # mailbox → when let through
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._led)

    def delay(self, mailbox: str, *, now: float) -> float:
        """Seconds the request for `mailbox` (a partition) stays invisible; notes a lead."""
        with self._lock:
            while self._led:
                oldest_key, oldest = next(iter(self._led.items()))
                if now - oldest < self._quiet and len(self._led) < self._max:
                    break
                del self._led[oldest_key]
            if mailbox in self._led:
                return self._debounce
            self._led[mailbox] = now
            return 0.0
