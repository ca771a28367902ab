"""Asynchronous delivery of change and lifecycle notifications, with Graph's failure modes.

Rule (change-notifications-delivery-webhooks): notifications are POSTed in batches
(`{"value": [...]}`, items of several subscriptions in one POST) to each URL, at least once: a
5xx, a timeout or a refused connection is retried with exponential backoff for up to 4 hours; a
4xx is not retried (the notification is lost). Per URL and 10-minute window, over 10% of answers
slower than 3 s makes the endpoint "slow" (new notifications wait 10 minutes) and over 15% slower
than 10 s makes it "drop" (notifications are discarded for 10 minutes, unrecoverable). Every
delivery duration in that list is compressible by the `delivery_time_scale` knob; answer-time
thresholds are real seconds. Fault knobs add silent drops, duplicates, reordering and delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from graphsim.counters import Counters
from graphsim.knobs import Knobs
from graphsim.runtime.clock import VirtualClock

LostCallback = Callable[[str], None]


@dataclass
class Pending:
    url: str
    kind: str  # "change" | "lifecycle"
    item: dict[str, Any]
    subscription_id: str
    first: float
    due: float
    attempts: int = 0


@dataclass
class EndpointHealth:
    samples: deque[tuple[float, float]] = field(default_factory=deque)  # (virtual ts, seconds)
    slow_until: float = 0.0
    drop_until: float = 0.0


class Delivery:
    def __init__(
        self,
        clock: VirtualClock,
        knobs: Knobs,
        counters: Counters,
        ca_pem_path: Path,
        rng: random.Random,
    ) -> None:
        self._clock = clock
        self._knobs = knobs
        self._counters = counters
        self._rng = rng
        self._ssl = ssl.create_default_context(cafile=str(ca_pem_path))
        self._queue: list[Pending] = []
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._posting: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.health: dict[str, EndpointHealth] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=20_000)
        self.on_lost: LostCallback = lambda _sub_id: None

    # --- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._client = httpx.AsyncClient(verify=self._ssl, limits=httpx.Limits(max_connections=200))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    def scaled(self, seconds: float) -> float:
        return seconds / max(self._knobs.delivery_time_scale, 1e-9)

    def idle(self) -> bool:
        return not self._queue and self._in_flight == 0

    def pending(self) -> int:
        return len(self._queue)

    def wake(self) -> None:
        self._wake.set()

    # --- validation handshake ----------------------------------------------------------------
    async def validate(self, url: str) -> tuple[bool, str]:
        """POST url?validationToken=<url-encoded token>; expects 200, text/plain, the decoded
        token, within the timeout. Returns (ok, reason)."""
        assert self._client is not None
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        joiner = "&" if "?" in url else "?"
        target = f"{url}{joiner}validationToken={quote(token, safe='')}"
        self._counters.note("validation_requests")
        try:
            response = await self._client.post(
                target,
                content=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=self._knobs.validation_timeout_s,
            )
        except httpx.TimeoutException:
            return False, f"no answer within {self._knobs.validation_timeout_s:g} s"
        except httpx.HTTPError as exc:
            return False, f"the request failed ({type(exc).__name__})"
        if response.status_code != 200:
            return False, f"status {response.status_code}, expected 200"
        if not response.headers.get("content-type", "").lower().startswith("text/plain"):
            return False, "the answer's Content-Type is not text/plain"
        if response.text != token:
            return False, "the answer's body is not the URL-decoded validationToken"
        return True, ""

    # --- queueing ------------------------------------------------------------------------------
    def enqueue(self, url: str, kind: str, item: dict[str, Any], subscription_id: str) -> None:
        knobs = self._knobs
        now = self._clock.timestamp()
        if kind == "change" and knobs.drop_rate and self._rng.random() < knobs.drop_rate:
            self._counters.note("items_dropped_silently")
            return
        due = now + knobs.delivery_delay_ms / 1000.0
        health = self.health.get(url)
        if health is not None and health.slow_until > now:
            due += self.scaled(knobs.health_penalty_s)
            self._counters.note("items_delayed_slow_endpoint")
        self._queue.append(Pending(url, kind, item, subscription_id, now, due))
        if kind == "change" and knobs.duplicate_rate and self._rng.random() < knobs.duplicate_rate:
            self._counters.note("items_duplicated")
            extra = self._rng.random() * knobs.delivery_batch_window_ms / 1000.0
            self._queue.append(Pending(url, kind, dict(item), subscription_id, now, due + extra))
        self._wake.set()

    # --- the worker --------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            now = self._clock.timestamp()
            due = [p for p in self._queue if p.due <= now]
            if not due:
                self._wake.clear()
                upcoming = min((p.due for p in self._queue), default=None)
                wait = None if upcoming is None else max(upcoming - now, 0.001)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            # Let a burst accumulate into one POST, as Graph batches items per endpoint.
            await asyncio.sleep(self._knobs.delivery_batch_window_ms / 1000.0)
            now = self._clock.timestamp()
            due = [p for p in self._queue if p.due <= now]
            taken = set(map(id, due))
            self._queue = [p for p in self._queue if id(p) not in taken]
            groups: dict[tuple[str, str], list[Pending]] = {}
            for p in due:
                groups.setdefault((p.url, p.kind), []).append(p)
            for items in groups.values():
                if self._knobs.reorder:
                    self._rng.shuffle(items)
                size = max(self._knobs.delivery_batch_max, 1)
                chunks = [items[i : i + size] for i in range(0, len(items), size)]
                if self._knobs.reorder:
                    self._rng.shuffle(chunks)
                for chunk in chunks:
                    self._in_flight += 1
                    task = asyncio.create_task(self._post(chunk))
                    self._posting.add(task)
                    task.add_done_callback(self._posting.discard)

    async def _post(self, batch: list[Pending]) -> None:
        try:
            await self._post_once(batch)
        finally:
            self._in_flight -= 1
            self._wake.set()

    async def _post_once(self, batch: list[Pending]) -> None:
        assert self._client is not None
        knobs = self._knobs
        url = batch[0].url
        now = self._clock.timestamp()
        health = self.health.setdefault(url, EndpointHealth())
        if health.drop_until > now:
            self._lost(batch, "items_dropped_endpoint")
            return
        body = {"value": [p.item for p in batch]}
        started = time.monotonic()
        status = 0
        try:
            response = await self._client.post(
                url,
                json=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=knobs.request_timeout_s,
            )
            status = response.status_code
        except httpx.TimeoutException:
            status = -1
        except httpx.HTTPError:
            status = -2
        elapsed = time.monotonic() - started
        self._counters.note("posts")
        self._record(
            url, health, elapsed if status != -1 else max(elapsed, knobs.drop_threshold_s + 1)
        )
        self.log.append(
            {
                "ts": self._clock.timestamp(),
                "url": url,
                "kind": batch[0].kind,
                "status": status,
                "elapsed_s": round(elapsed, 4),
                "attempt": max(p.attempts for p in batch) + 1,
                "items": body["value"],
            }
        )
        if 200 <= status < 300:
            self._counters.note(f"{batch[0].kind}_items_delivered", len(batch))
            return
        if 400 <= status < 500:
            self._lost(batch, "items_rejected_4xx")
            return
        self._retry(batch)

    def _retry(self, batch: list[Pending]) -> None:
        knobs = self._knobs
        now = self._clock.timestamp()
        for p in batch:
            p.attempts += 1
            backoff = self.scaled(knobs.retry_base_s * (2 ** min(p.attempts - 1, 10)))
            if now + backoff - p.first > self.scaled(knobs.retry_horizon_s):
                self._lost([p], "items_expired_retries")
                continue
            p.due = now + backoff
            self._queue.append(p)
            self._counters.note("retries")

    def _lost(self, batch: list[Pending], why: str) -> None:
        self._counters.note(why, len(batch))
        if self._knobs.send_missed_on_drop:
            for sub_id in {p.subscription_id for p in batch if p.kind == "change"}:
                self.on_lost(sub_id)

    def _record(self, url: str, health: EndpointHealth, elapsed: float) -> None:
        knobs = self._knobs
        now = self._clock.timestamp()
        window = self.scaled(knobs.health_window_s)
        samples = health.samples
        samples.append((now, elapsed))
        while samples and samples[0][0] < now - window:
            samples.popleft()
        n = len(samples)
        if n < knobs.health_min_samples:
            return
        slow = sum(1 for _, s in samples if s > knobs.slow_threshold_s) / n
        very_slow = sum(1 for _, s in samples if s > knobs.drop_threshold_s) / n
        if very_slow > knobs.drop_fraction:
            health.drop_until = now + self.scaled(knobs.health_penalty_s)
            self._counters.note("endpoint_drop_periods")
        elif slow > knobs.slow_fraction:
            health.slow_until = now + self.scaled(knobs.health_penalty_s)
            self._counters.note("endpoint_slow_periods")

    def classify(self, url: str) -> str:
        health = self.health.get(url)
        now = self._clock.timestamp()
        if health is None:
            return "healthy"
        if health.drop_until > now:
            return "drop"
        if health.slow_until > now:
            return "slow"
        return "healthy"
