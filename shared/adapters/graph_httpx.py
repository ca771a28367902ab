"""Microsoft Graph over httpx: sends a core `GraphRequest`, nothing else. It gets the tenant's
token, holds the mailbox's concurrency slot (at most 4 concurrent requests per app and mailbox:
https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits), moves the bytes, and
drives `shared.core.graph.exchange`, which owns the 401 policy and maps every answer. It never
sleeps on a throttle: `Throttled(retry_after)` goes to the caller, who re-queues its work.

Every request carries a fresh `client-request-id` (a GUID) and `User-Agent: calsync/<version>`,
as Microsoft's support asks (https://learn.microsoft.com/graph/best-practices-concept#reliability-
and-support); each call (method, redacted path, status, duration, `request-id`,
`client-request-id`, Retry-After) goes to `observe` (the operations log), which must not block.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from shared import __version__
from shared.core import oplog
from shared.core.graph import GraphAnswer, GraphRequest, exchange
from shared.errors import GraphUnreachable

MAX_CONCURRENT_PER_MAILBOX = 4
USER_AGENT = f"calsync/{__version__}"
log = logging.getLogger("calsync.graph")


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
        observe: Callable[[oplog.LogRecord], None] | None = None,
    ) -> None:
        self._http, self._base, self._tokens, self._clock = http, base_url, tokens, clock
        self._observe = observe
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
        call_id = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        headers |= {"client-request-id": call_id, "User-Agent": USER_AGENT}
        headers |= dict(request.headers)
        slot = None
        if request.mailbox:
            with self._slots_lock:
                slot = self._slots[f"{request.tenant_id}/{request.mailbox}"]
            slot.acquire()
        started = time.perf_counter()
        try:
            response = self._http.request(
                request.method,
                url,
                params=dict(request.query) or None,
                headers=headers,
                json=request.body,
            )
        except httpx.TransportError as exc:
            self._note(request, url, 0, {}, started, call_id, type(exc).__name__)
            raise GraphUnreachable(
                f"Graph {request.describe()} failed to connect ({type(exc).__name__}); retry later"
            ) from None
        finally:
            if slot is not None:
                slot.release()
        self._note(
            request, str(response.url), response.status_code, response.headers, started, call_id
        )
        return GraphAnswer(response.status_code, response.headers, response.content, self._clock())

    def _note(
        self,
        request: GraphRequest,
        url: str,
        status: int,
        headers: Any,
        started: float,
        call_id: str,
        error: str = "",
    ) -> None:
        """Hand the call's record to `observe`; a failure here never fails the call."""
        if self._observe is None:
            return
        try:
            self._observe(
                oplog.outbound(
                    at=self._clock(),
                    method=request.method,
                    url=url,
                    base_url=self._base,
                    tenant_id=request.tenant_id,
                    user_id=request.mailbox or _user_of(request),
                    kind=request.kind,
                    status=status,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    headers=dict(headers.items()),
                    client_request_id=call_id,
                    error=error,
                    caller=request.caller,
                )
            )
        except Exception:
            log.debug("operations log: a Graph call could not be recorded", exc_info=True)


def _user_of(request: GraphRequest) -> str:
    """The mailbox a call of no concurrency slot concerns (a subscription's resource), or ""."""
    resource = (request.body or {}).get("resource")
    if isinstance(resource, str) and resource.startswith("users/"):
        return resource.split("/")[1]
    return ""
