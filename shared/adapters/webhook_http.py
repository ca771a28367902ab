"""Sends one change to a subscriber (httpx), signed as Standard Webhooks says (standardwebhooks):
`webhook-id` (the change id, so a receiver deduplicates on it), `webhook-timestamp` and
`webhook-signature` (v1, HMAC-SHA256 of `id.timestamp.body`), the body the change's JSON.

`webhook-timestamp` is the wall clock of the sending host, not the app's clock: receivers check
it against their own clock (five minutes' tolerance in the library), so it must be the instant
the request leaves. Redirects are not followed (a moved receiver answers 3xx, retried until it
is fixed); the answer's body is never read beyond its first bytes, so a receiver answering
garbage or streaming forever costs at most the timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from shared.core.feed import ChangeEvent

ANSWER_BYTES = 1024  # read this much of an answer at most (for the error text)


@dataclass(frozen=True)
class Answer:
    """What a delivery attempt got: the status (None: no answer) and, on failure, why."""

    status: int | None
    error: str
    duration_ms: float


def body_of(change: ChangeEvent) -> str:
    """The webhook body: the change's consumer JSON, compact, UTF-8."""
    return json.dumps(change.to_json(), separators=(",", ":"), ensure_ascii=False)


class WebhookSender:
    """Signs and POSTs changes over an already built httpx client (its timeout applies)."""

    def __init__(self, http: httpx.Client, *, wall: Callable[[], float] = time.time) -> None:
        self._http = http
        self._wall = wall

    def close(self) -> None:
        self._http.close()

    def send(self, url: str, secret: str, change: ChangeEvent) -> Answer:
        body = body_of(change)
        stamp = datetime.fromtimestamp(int(self._wall()), UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "calsync-webhooks/1",
            "webhook-id": change.change_id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": Webhook(secret).sign(change.change_id, stamp, body),
        }
        started = time.perf_counter()
        try:
            with self._http.stream(
                "POST", url, content=body.encode("utf-8"), headers=headers, follow_redirects=False
            ) as response:
                head = b""
                for chunk in response.iter_bytes():
                    head += chunk
                    if len(head) >= ANSWER_BYTES:
                        break
        except httpx.TimeoutException as exc:
            return Answer(None, f"timed out ({type(exc).__name__})", _ms(started))
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, ValueError, OSError) as exc:
            # Connect, TLS, protocol (a garbage answer), or a URL the client cannot use.
            return Answer(None, f"no answer ({type(exc).__name__})", _ms(started))
        status = response.status_code
        error = "" if 200 <= status < 300 else f"answered {status}"
        return Answer(status, error, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
