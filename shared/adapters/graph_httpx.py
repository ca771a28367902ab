"""Microsoft Graph over httpx: sends a core `GraphRequest`, nothing else. It gets the tenant's
token, holds the mailbox's concurrency slot (at most 4 concurrent requests per app and mailbox:
https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits), moves the bytes, and
drives `shared.core.graph.exchange`, which owns the 401 policy and maps every answer. It never
sleeps on a throttle: `Throttled(retry_after)` goes to the caller, who re-queues its work.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from shared.core.graph import GraphAnswer, GraphRequest, exchange
from shared.errors import GraphUnreachable

MAX_CONCURRENT_PER_MAILBOX = 4


class TokenProvider(Protocol):
    def token(self, tenant_id: str, *, fresh: bool = False) -> str: ...


class GraphClient:
    """The Graph port over a built httpx.Client (which carries the CA and timeouts)."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        tokens: TokenProvider,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._http, self._base, self._tokens, self._clock = http, base_url, tokens, clock
        self._slots: dict[str, threading.BoundedSemaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(MAX_CONCURRENT_PER_MAILBOX)
        )
        self._slots_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def send(self, request: GraphRequest) -> Any:
        """The result of `request` (parsed JSON or None), or the project error for its answer."""
        flow = exchange(request)
        attempt = next(flow)
        while True:
            answer = self._transport(request, fresh_token=attempt.fresh_token)
            try:
                attempt = flow.send(answer)
            except StopIteration as done:
                return done.value

    def _transport(self, request: GraphRequest, *, fresh_token: bool) -> GraphAnswer:
        url = request.url(self._base)
        token = self._tokens.token(request.tenant_id, fresh=fresh_token)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        headers |= dict(request.headers)
        slot = None
        if request.mailbox:
            with self._slots_lock:
                slot = self._slots[f"{request.tenant_id}/{request.mailbox}"]
            slot.acquire()
        try:
            response = self._http.request(
                request.method,
                url,
                params=dict(request.query) or None,
                headers=headers,
                json=request.body,
            )
        except httpx.TransportError as exc:
            raise GraphUnreachable(
                f"Graph {request.describe()} failed to connect ({type(exc).__name__}); retry later"
            ) from None
        finally:
            if slot is not None:
                slot.release()
        return GraphAnswer(response.status_code, response.headers, response.content, self._clock())
