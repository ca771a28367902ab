"""The project's one error hierarchy. Every error says what happened and what to do next.

    CalsyncError                      transient?
     ├── ConfigError                  no   settings missing or invalid (lists every problem)
     ├── SecretError                  yes  a secret could not be read (Key Vault failing)
     │    └── SecretNotFound          no   the named secret does not exist (value never shown)
     ├── InputError                   no   a request or message we were given is malformed (400)
     │    ├── NotificationRejected    no   a change notification failed validation
     │    └── IdempotencyMismatch     no   an Idempotency-Key reused for another request (422)
     ├── NotFoundError                no   the thing asked for does not exist (HTTP 404)
     ├── StorageError                 yes  Table or Queue storage failed (HTTP 503: retry later)
     │    └── StateConflict           no   an ETag-guarded write lost a race (re-read)
     ├── TokenError                   no   Entra refused a token (carries the AADSTS code)
     │    └── EntraUnreachable        yes  Entra could not be reached at all: retry later
     └── GraphError                   no   Graph answered with an error (carries status and code)
          ├── Throttled               yes  429/503/504 with Retry-After: back off, then retry
          ├── GraphServerError        yes  any other 5xx: Graph failed, retry later
          ├── GraphUnreachable        yes  no answer at all (connect, TLS, timeout): retry later
          ├── DeltaExpired            no   410 SyncStateNotFound: resync the window from scratch
          ├── SubscriptionGone        no   404 on a subscription: create a new one, don't retry
          ├── WriteConflict           no   412 on a write: the event changed since the changeKey
          │                                sent (HTTP 409 with the current version): re-read
          ├── GraphProtocolError      no   an answer we cannot use (malformed page, no delta
          │                                link, runaway paging): a bug to report, not to retry
          └── ExchangeError           no   Exchange Server (EWS) refused: 401, impersonation
               │                           denied, no such mailbox (graph_code: EWS's code)
               └── ExchangeUnreachable yes no answer, or a broken one (DNS, TLS, SOAP)

An EWS mailbox reuses Throttled (ErrorServerBusy, BackOffMilliseconds as retry_after) and
DeltaExpired (ErrorInvalidSyncStateData), so the sync engine treats both providers alike.

`transient` (a class attribute) says whether the same call is worth retrying later unchanged.
A failed sync round re-queues its request whatever the error (core.rounds.plan_recovery: backoff
by attempt; a 410 retries as a full resync); only StorageError is re-raised to the queue.
`detail_code` is the most specific code an error carries (Graph's `error.code`, Entra's AADSTS
number, else the project code), for status records.

Rule: adapters map library exceptions and HTTP statuses to these in exactly one place each;
the core and services raise and catch only these.
"""

from __future__ import annotations

from collections.abc import Sequence


class CalsyncError(Exception):
    """Root of every error this project raises on purpose."""

    #: HTTP status an HTTP trigger answers with when this error reaches it.
    http_status = 500
    #: Stable machine-readable code for problem bodies and status records.
    code = "internal_error"
    #: Whether the same operation is worth retrying later, unchanged.
    transient = False
    #: Graph's `request-id` of the answer this error deciphers ('' otherwise): Microsoft's
    #: support asks for it, so it is logged as a dimension with the error.
    request_id = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def detail_code(self) -> str:
        """The most specific code this error carries, for status records (`last_error_code`)."""
        return self.code


class ConfigError(CalsyncError):
    """One or more settings are missing or invalid; `problems` names each one."""

    http_status = 500
    code = "config_error"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} setting problem(s); fix them in the app settings "
            f"(local.settings.json when running locally):\n{lines}"
        )


class SecretError(CalsyncError):
    """A secret could not be read from its store."""

    http_status = 503
    code = "secret_unavailable"
    transient = True  # Key Vault unreachable or failing: the next try may read it


class SecretNotFound(SecretError):
    """The named secret does not exist in the configured store."""

    code = "secret_not_found"
    transient = False

    def __init__(self, name: str, where: str) -> None:
        self.name = name
        super().__init__(f"secret {name!r} was not found in {where}; create it there and retry")


class InputError(CalsyncError):
    """Input we were handed (HTTP body, query, queue message) is malformed."""

    http_status = 400
    code = "bad_request"


class NotificationRejected(InputError):
    """A change or lifecycle notification failed validation and was ignored."""

    code = "notification_rejected"


class IdempotencyMismatch(InputError):
    """An Idempotency-Key already used for a different write of the same mailbox."""

    http_status = 422
    code = "idempotency_key_reused"


class ForbiddenError(CalsyncError):
    """A request this app will not make on the caller's behalf (a raw Graph path outside the
    enrolled mailbox, a method not allowed): 403 naming the rule."""

    http_status = 403
    code = "forbidden"


class NotFoundError(CalsyncError):
    """The requested resource does not exist."""

    http_status = 404
    code = "not_found"


class StorageError(CalsyncError):
    """Table or Queue storage could not be reached or refused the operation."""

    http_status = 503
    code = "storage_unavailable"
    transient = True


class StateConflict(StorageError):
    """An ETag-guarded write found the entity changed since it was read."""

    http_status = 409
    code = "state_conflict"
    transient = False  # lost a race: the caller re-reads and decides again, never blind retry


class TokenError(CalsyncError):
    """Entra refused to issue a token; `aadsts` is the AADSTS code when Entra gave one."""

    http_status = 502
    code = "token_error"

    def __init__(self, message: str, *, aadsts: int | None = None, error: str = "") -> None:
        super().__init__(message)
        self.aadsts = aadsts
        self.error = error

    @property
    def detail_code(self) -> str:
        return str(self.aadsts or "") or self.error or self.code


class EntraUnreachable(TokenError):
    """Entra could not be reached (network failure): no verdict on the credential; retry later."""

    code = "entra_unreachable"
    transient = True


class GraphError(CalsyncError):
    """Graph answered with an error status; `graph_code` is Graph's own `error.code`.
    `status` is the HTTP status, or None when there was no answer (GraphUnreachable)."""

    http_status = 502
    code = "graph_error"

    def __init__(self, message: str, *, status: int | None, graph_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.graph_code = graph_code

    @property
    def detail_code(self) -> str:
        return self.graph_code or self.code


class Throttled(GraphError):
    """Graph throttled us (429, or 503/504); wait `retry_after` seconds before the next call."""

    code = "throttled"
    transient = True

    def __init__(self, message: str, *, status: int, graph_code: str, retry_after: float) -> None:
        super().__init__(message, status=status, graph_code=graph_code)
        self.retry_after = retry_after


class DeltaExpired(GraphError):
    """The delta token is no longer valid (410): resync the window and diff the mirror."""

    code = "delta_expired"


class SubscriptionGone(GraphError):
    """The subscription no longer exists (404): create a new one instead of retrying."""

    code = "subscription_gone"


class WriteConflict(GraphError):
    """Graph refused a write because the event changed since the changeKey sent (If-Match, 412).
    `current` is the event as it is now, when it could be read, so the caller can decide again."""

    http_status = 409
    code = "write_conflict"

    def __init__(self, message: str, *, status: int = 412, graph_code: str = "") -> None:
        super().__init__(message, status=status, graph_code=graph_code)
        self.current: dict[str, object] | None = None


class GraphServerError(GraphError):
    """Graph failed on its side (5xx other than the throttling 503/504): retry later."""

    code = "graph_server_error"
    transient = True


class GraphUnreachable(GraphError):
    """No answer from Graph at all (connection refused, TLS, timeout): retry later."""

    code = "graph_unreachable"
    transient = True

    def __init__(self, message: str, *, graph_code: str = "transport_error") -> None:
        super().__init__(message, status=None, graph_code=graph_code)


class GraphProtocolError(GraphError):
    """Graph's answer broke the protocol we follow (a malformed or non-JSON page, a delta that
    ends without a delta link, paging that never ends). Retrying the same call gives the same
    answer: the cursor is not advanced and the round is recorded as failed; report it."""

    code = "graph_protocol_error"


class ExchangeError(GraphError):
    """Exchange Server answered EWS with an error; `graph_code` is EWS's ResponseCode (or
    `Unauthorized` for a 401). The message names the fix."""

    code = "exchange_error"


class ExchangeUnreachable(ExchangeError):
    """No usable answer from the EWS endpoint (DNS, connection, TLS, a malformed SOAP answer):
    retry later; the test connection names which."""

    code = "exchange_unreachable"
    transient = True
