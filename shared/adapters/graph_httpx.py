"""Microsoft Graph over httpx: bearer tokens per tenant, at most 4 concurrent requests per mailbox
(Outlook's documented limit, per app and mailbox), and Graph's error statuses mapped to
shared.errors in exactly one place (`decipher`). It never sleeps on a throttle: it raises
`Throttled(retry_after)` and the caller re-queues its work with a visibility delay.

https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Protocol

import httpx

from shared.errors import DeltaExpired, GraphError, SubscriptionGone, Throttled, TokenError

MAX_CONCURRENT_PER_MAILBOX = 4
_DELTA_GONE_CODES = {"SyncStateNotFound", "resyncRequired", "fullSyncRequired", "SyncStateInvalid"}


class TokenProvider(Protocol):
    def token(self, tenant_id: str, *, fresh: bool = False) -> str: ...


def decipher(response: httpx.Response, *, subscription: bool = False) -> Any:
    """The JSON of a successful response (None when empty), or the project error for it."""
    status = response.status_code
    if 200 <= status < 300:
        if status == 204 or not response.content:
            return None
        return response.json()
    code, message = "", response.reason_phrase
    try:
        error = response.json().get("error", {})
        code, message = str(error.get("code", "")), str(error.get("message", message))
    except (ValueError, AttributeError):
        pass
    what = f"Graph {response.request.method} {response.request.url.path} answered {status}"
    if status in (429, 503, 504):
        retry_after = _retry_after(response.headers.get("Retry-After"))
        raise Throttled(
            f"{what} {code}: {message}; retry after {retry_after:g} s",
            status=status,
            graph_code=code or "TooManyRequests",
            retry_after=retry_after,
        )
    if status == 410 or code in _DELTA_GONE_CODES:
        raise DeltaExpired(
            f"{what} {code}: the delta token expired; resync the window",
            status=status,
            graph_code=code,
        )
    if status == 404 and subscription:
        raise SubscriptionGone(
            f"{what}: the subscription no longer exists; create a new one",
            status=status,
            graph_code=code,
        )
    raise GraphError(f"{what} {code}: {message}", status=status, graph_code=code)


def _retry_after(value: str | None) -> float:
    """Retry-After in seconds (may be fractional); absent or unreadable: 0 (caller backs off)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


class GraphClient:
    """A thin Graph client over a built httpx.Client (which carries the CA and timeouts)."""

    def __init__(self, http: httpx.Client, base_url: str, tokens: TokenProvider) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._tokens = tokens
        self._slots: dict[str, threading.BoundedSemaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(MAX_CONCURRENT_PER_MAILBOX)
        )
        self._slots_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self._base}/{path.lstrip('/')}"

    def _slot(self, mailbox: str) -> threading.BoundedSemaphore:
        with self._slots_lock:
            return self._slots[mailbox]

    def request(
        self,
        tenant_id: str,
        method: str,
        path: str,
        *,
        mailbox: str = "",
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        subscription: bool = False,
    ) -> Any:
        """Send one request as the app in `tenant_id`; `mailbox` keys the concurrency limit.
        A 401 is retried once with a freshly acquired token (a cached token can be revoked or
        outlived by the service's view of time); a second 401 is a TokenError."""
        response = self._send(tenant_id, method, path, mailbox, json, params, headers, False)
        if response.status_code == 401:
            response = self._send(tenant_id, method, path, mailbox, json, params, headers, True)
        if response.status_code == 401:
            raise TokenError(
                f"Graph refused the app's token for tenant {tenant_id} (401); check the app's "
                "permissions and admin consent",
                error="unauthorized",
            )
        return decipher(response, subscription=subscription)

    def _send(
        self,
        tenant_id: str,
        method: str,
        path: str,
        mailbox: str,
        json: Any,
        params: dict[str, str] | None,
        headers: dict[str, str] | None,
        fresh: bool,
    ) -> httpx.Response:
        token = self._tokens.token(tenant_id, fresh=fresh)
        sent_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        sent_headers |= headers or {}
        slot = self._slot(f"{tenant_id}/{mailbox}") if mailbox else None
        if slot is not None:
            slot.acquire()
        try:
            return self._http.request(
                method, self.url(path), json=json, params=params, headers=sent_headers
            )
        except httpx.TransportError as exc:
            raise GraphError(
                f"Graph {method} {path} failed to connect ({type(exc).__name__}); retry later",
                status=0,
                graph_code="transport_error",
            ) from None
        finally:
            if slot is not None:
                slot.release()
