"""Counters the control API reports: requests per endpoint, mailbox and status, and deliveries.

Rule: counting is a dict increment on the request path and nothing more (the simulator must
never be the bottleneck of a benchmark); reading returns plain JSON-ready dicts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class Counters:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests_total = 0
        self.by_endpoint: Counter[str] = Counter()
        self.by_mailbox: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_endpoint_status: Counter[str] = Counter()
        self.notifications: Counter[str] = Counter()

    def request(self, endpoint: str, status: int, mailbox: str | None) -> None:
        self.requests_total += 1
        self.by_endpoint[endpoint] += 1
        self.by_status[str(status)] += 1
        self.by_endpoint_status[f"{endpoint} {status}"] += 1
        if mailbox:
            self.by_mailbox[mailbox] += 1

    def note(self, what: str, n: int = 1) -> None:
        """Delivery-side counts: posts, items_sent, items_dropped, retries, validations..."""
        self.notifications[what] += n

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests_total": self.requests_total,
            "requests_by_endpoint": dict(self.by_endpoint),
            "requests_by_mailbox": dict(self.by_mailbox),
            "requests_by_status": dict(self.by_status),
            "requests_by_endpoint_status": dict(self.by_endpoint_status),
            "notifications": dict(self.notifications),
        }
