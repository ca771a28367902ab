"""The simulator's virtual clock: real UTC time plus an offset that only ever grows.

Rule: every expiry the simulator enforces (tokens, client secrets, subscriptions, delta tokens,
throttling windows) is measured on this clock, so a test can move time forward with
`advance(seconds)` instead of waiting. Waiters (`sleep`) wake up early when the clock jumps.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class VirtualClock:
    """Real time + offset. `advance` jumps forward and wakes every sleeper."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self._offset = offset_s
        self._jumped: asyncio.Event | None = None

    @property
    def offset_s(self) -> float:
        return self._offset

    def timestamp(self) -> float:
        """Virtual POSIX seconds."""
        return time.time() + self._offset

    def now(self) -> datetime:
        """Virtual now, timezone-aware UTC."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (never back: Graph's clock does not run backwards)."""
        if seconds < 0:
            raise ValueError("the virtual clock only moves forward: pass seconds >= 0")
        self._offset += seconds
        if self._jumped is not None:
            self._jumped.set()
            self._jumped = None
        return self.now()

    async def sleep(self, seconds: float, *, scale: float = 1.0) -> None:
        """Wait `seconds` of virtual time, compressed by `scale` (virtual seconds per real
        second), returning early if `advance` moves the clock past the deadline."""
        deadline = self.timestamp() + seconds
        while True:
            remaining = deadline - self.timestamp()
            if remaining <= 0:
                return
            if self._jumped is None:
                self._jumped = asyncio.Event()
            jumped = self._jumped
            real_wait = remaining / max(scale, 1e-9)
            try:
                await asyncio.wait_for(jumped.wait(), timeout=real_wait)
            except TimeoutError:
                # Compressed time has elapsed: the wait is over even though the virtual
                # clock itself only moved by the real interval.
                return
