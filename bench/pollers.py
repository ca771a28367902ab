"""Reference pollers: what users run instead of calsync, written small so they can be measured.

A poller lists each mailbox's `calendarView` every `interval` seconds (60 s, the fastest the
products allow: "do not set this below 60 seconds, to avoid being banned"; 30 min, "changes may
take up to 30 minutes") and diffs the listing with its previous one by id and changeKey: that is
how it learns of a change. It uses a bare httpx client and an app token (fetched again when
Graph answers 401, as MSAL-based products do when a token expires), paging by 100.

The interval runs on a virtual clock so that a 30 min poller can be measured in seconds: the
caller owns the timeline and calls `poll(user, at)` at each of the poller's ticks, after moving
the simulator's clock to `at` (its `POST /_sim/clock/advance`); every listing is a real request
to the simulator, and its real duration is added to the change's latency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

PAGE = 100


@dataclass
class Poller:
    """One reference poller: `interval` seconds between listings of each mailbox."""

    interval: float
    graph_base_url: str
    token_source: Callable[[], str]
    verify: Any
    window: tuple[str, str]
    requests: int = 0
    _seen: dict[str, dict[str, str]] = field(default_factory=dict)
    _client: httpx.Client | None = None

    def __enter__(self) -> Poller:
        self._client = httpx.Client(
            verify=self.verify,
            timeout=60,
            headers={
                "Prefer": f'IdType="ImmutableId", odata.maxpagesize={PAGE}, outlook.timezone="UTC"'
            },
        )
        self._client.headers["Authorization"] = f"Bearer {self.token_source()}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()

    def listing(self, user: str) -> dict[str, str]:
        """One full calendarView listing of the window: {event id: changeKey}."""
        assert self._client is not None, "use the poller as a context manager"
        lo, hi = self.window
        url: str | None = f"{self.graph_base_url}/users/{user}/calendarView"
        params: dict[str, str] | None = {
            "startDateTime": lo,
            "endDateTime": hi,
            "$select": "id,changeKey",
        }
        found: dict[str, str] = {}
        while url:
            answer = self._client.get(url, params=params)
            self.requests += 1
            if answer.status_code == 401:  # expired (the virtual clock moved): a new token
                self._client.headers["Authorization"] = f"Bearer {self.token_source()}"
                continue
            page = answer.raise_for_status().json()
            found.update({item["id"]: item.get("changeKey", "") for item in page["value"]})
            url, params = page.get("@odata.nextLink"), None
        return found

    def poll(self, user: str) -> tuple[set[str], float]:
        """List `user` now: (ids created, changed or gone since the last listing, seconds the
        listing took). The first listing of a mailbox reports nothing: it is the baseline."""
        began = time.perf_counter()
        now = self.listing(user)
        took = time.perf_counter() - began
        before = self._seen.get(user)
        self._seen[user] = now
        if before is None:
            return set(), took
        changed = {i for i, key in now.items() if before.get(i) != key}
        return changed | (before.keys() - now.keys()), took

    def baseline(self, users: Iterable[str]) -> None:
        for user in users:
            self.poll(user)
