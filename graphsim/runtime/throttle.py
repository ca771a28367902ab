"""Throttling per app and mailbox, pacing of subscription calls, and injected faults.

Rule: Outlook allows 4 concurrent requests and 10,000 requests per 10 minutes per app ID and
mailbox (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits); one over
either limit gets 429 with Retry-After and Graph's TooManyRequests body. Only admitted requests
count against the budget. Windows slide on the virtual clock, so advancing it refills them.
Faults (503/504, latency) come from queued rules first, then from the knobs' probabilities.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from graphsim.errors import GraphRequestError
from graphsim.knobs import Knobs
from graphsim.runtime.clock import VirtualClock


def retry_after_text(seconds: float) -> str:
    """Retry-After in seconds; fractional values are allowed (and clients must accept them)."""
    rounded = math.ceil(max(seconds, 0.1) * 10) / 10
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def too_many(seconds: float, message: str = "Please retry again later.") -> GraphRequestError:
    return GraphRequestError(
        429, "TooManyRequests", message, headers={"Retry-After": retry_after_text(seconds)}
    )


class SlidingWindow:
    """Timestamps of admitted calls within the last `window` seconds."""

    __slots__ = ("stamps",)

    def __init__(self) -> None:
        self.stamps: deque[float] = deque()

    def admit(self, now: float, limit: int, window: float) -> float:
        """0.0 when admitted (and recorded), else the seconds until a slot frees up."""
        stamps = self.stamps
        horizon = now - window
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        if len(stamps) >= limit:
            return stamps[0] + window - now
        stamps.append(now)
        return 0.0


class Throttle:
    def __init__(self, clock: VirtualClock, knobs: Knobs) -> None:
        self._clock = clock
        self._knobs = knobs
        self._in_flight: dict[tuple[str, str], int] = {}
        self._budgets: dict[tuple[str, str], SlidingWindow] = {}
        self._paced: dict[tuple[str, ...], SlidingWindow] = {}

    def enter(self, app_id: str, mailbox_id: str) -> tuple[str, str]:
        """Admit one request for (app, mailbox) or raise 429; pair with `leave`."""
        key = (app_id, mailbox_id)
        knobs = self._knobs
        if self._in_flight.get(key, 0) >= knobs.concurrent_per_mailbox:
            raise too_many(knobs.fault_retry_after_s)
        window = self._budgets.get(key)
        if window is None:
            window = self._budgets[key] = SlidingWindow()
        wait = window.admit(self._clock.timestamp(), knobs.budget_requests, knobs.budget_window_s)
        if wait > 0:
            raise too_many(wait)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return key

    def leave(self, key: tuple[str, str]) -> None:
        left = self._in_flight.get(key, 1) - 1
        if left <= 0:
            self._in_flight.pop(key, None)
        else:
            self._in_flight[key] = left

    def in_flight(self, app_id: str, mailbox_id: str) -> int:
        return self._in_flight.get((app_id, mailbox_id), 0)

    def pace(self, kind: str, *key: str) -> None:
        """Subscription API pacing (throttling-limits#subscription-service-limits)."""
        knobs = self._knobs
        limit = {
            "write": knobs.subscription_writes_per_window,
            "reauthorize": knobs.reauthorize_per_window,
            "list": knobs.subscription_list_per_window,
        }[kind]
        window = self._paced.setdefault((kind, *key), SlidingWindow())
        wait = window.admit(self._clock.timestamp(), limit, knobs.subscription_window_s)
        if wait > 0:
            raise too_many(wait)

    def reset(self) -> None:
        self._budgets.clear()
        self._paced.clear()


@dataclass
class FaultRule:
    status: int
    count: int
    method: str = ""
    path_contains: str = ""
    mailbox: str = ""
    retry_after_s: float | None = None
    latency_ms: float = 0.0

    def matches(self, method: str, path: str, mailbox: str) -> bool:
        return (
            (not self.method or self.method.upper() == method)
            and (not self.path_contains or self.path_contains.lower() in path.lower())
            and (not self.mailbox or self.mailbox.lower() == mailbox.lower())
        )


FAULT_MESSAGES = {
    410: ("SyncStateNotFound", "The sync state generation is not found (injected fault)."),
    429: ("TooManyRequests", "Please retry again later."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "The server received an invalid response from an upstream server."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Retry later."),
    504: ("GatewayTimeout", "The upstream service did not answer in time."),
}


class Faults:
    def __init__(self, knobs: Knobs, rng: random.Random) -> None:
        self._knobs = knobs
        self._rng = rng
        self.rules: list[FaultRule] = []

    def add(self, spec: dict[str, Any]) -> FaultRule:
        status = spec.get("status", 0)
        if status not in FAULT_MESSAGES and status != 0:
            raise ValueError(f"status must be one of {sorted(FAULT_MESSAGES)} (or 0 for latency)")
        rule = FaultRule(
            status=int(status),
            count=int(spec.get("count", 1)),
            method=str(spec.get("method", "")),
            path_contains=str(spec.get("path_contains", "")),
            mailbox=str(spec.get("mailbox", "")),
            retry_after_s=spec.get("retry_after_s"),
            latency_ms=float(spec.get("latency_ms", 0.0)),
        )
        self.rules.append(rule)
        return rule

    def pick(self, method: str, path: str, mailbox: str) -> tuple[float, GraphRequestError | None]:
        """(extra latency in seconds, error to answer or None) for one Graph request."""
        knobs = self._knobs
        latency = knobs.latency_ms / 1000.0
        for rule in self.rules:
            if rule.count > 0 and rule.matches(method, path, mailbox):
                rule.count -= 1
                if rule.count == 0:
                    self.rules.remove(rule)
                return latency + rule.latency_ms / 1000.0, self._error(
                    rule.status, rule.retry_after_s
                )
        if knobs.fault_rate_503 or knobs.fault_rate_504:
            roll = self._rng.random()
            if roll < knobs.fault_rate_503:
                return latency, self._error(503, knobs.fault_retry_after_s)
            if roll < knobs.fault_rate_503 + knobs.fault_rate_504:
                return latency, self._error(504, None)
        return latency, None

    @staticmethod
    def _error(status: int, retry_after_s: float | None) -> GraphRequestError | None:
        if status == 0:
            return None
        code, message = FAULT_MESSAGES[status]
        headers = {"Retry-After": retry_after_text(retry_after_s)} if retry_after_s else {}
        return GraphRequestError(status, code, message, headers=headers)
