"""The project's one error hierarchy. Every error says what happened and what to do next.

    CalsyncError
     ├── ConfigError              settings missing or invalid (lists every problem at once)
     ├── SecretError              a secret could not be read
     │    └── SecretNotFound      the named secret does not exist (the value is never shown)
     ├── InputError               a request or message we were given is malformed (HTTP 400)
     │    └── NotificationRejected  a change notification failed validation
     ├── NotFoundError            the thing asked for does not exist (HTTP 404)
     ├── StorageError             Table or Queue storage failed (HTTP 503: retry later)
     │    └── StateConflict       an ETag-guarded write lost a race
     ├── TokenError               Entra refused a token (carries the AADSTS code)
     └── GraphError               Graph answered with an error (carries status and code)
          ├── Throttled           429/503 with Retry-After: back off, then retry
          ├── DeltaExpired        410 SyncStateNotFound: resync the window from scratch
          └── SubscriptionGone    404 on a subscription: create a new one, don't retry

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
    #: Whether retrying the same work later can succeed (the queue retries transient failures).
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def transient(self) -> bool:
        """Whether the same work can succeed later: the queue retries it; otherwise give up."""
        return self.retryable


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
    retryable = True


class SecretNotFound(SecretError):
    """The named secret does not exist in the configured store."""

    code = "secret_not_found"
    retryable = False

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


class NotFoundError(CalsyncError):
    """The requested resource does not exist."""

    http_status = 404
    code = "not_found"


class StorageError(CalsyncError):
    """Table or Queue storage could not be reached or refused the operation."""

    http_status = 503
    code = "storage_unavailable"
    retryable = True


class StateConflict(StorageError):
    """An ETag-guarded write found the entity changed since it was read."""

    http_status = 409
    code = "state_conflict"
    retryable = False


class TokenError(CalsyncError):
    """Entra refused to issue a token; `aadsts` is the AADSTS code when Entra gave one."""

    http_status = 502
    code = "token_error"

    def __init__(self, message: str, *, aadsts: int | None = None, error: str = "") -> None:
        super().__init__(message)
        self.aadsts = aadsts
        self.error = error

    @property
    def transient(self) -> bool:
        """Entra unreachable is worth a retry; a refused credential is not."""
        return self.error == "network_error"


class GraphError(CalsyncError):
    """Graph answered with an error status; `graph_code` is Graph's own `error.code`."""

    http_status = 502
    code = "graph_error"

    def __init__(self, message: str, *, status: int, graph_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.graph_code = graph_code

    @property
    def transient(self) -> bool:
        """Graph unreachable (status 0) or failing (5xx) is worth a retry; a 4xx is not."""
        return self.status == 0 or self.status >= 500


class Throttled(GraphError):
    """Graph throttled us (429, or 503/504); wait `retry_after` seconds before the next call."""

    code = "throttled"

    @property
    def transient(self) -> bool:
        return True

    def __init__(self, message: str, *, status: int, graph_code: str, retry_after: float) -> None:
        super().__init__(message, status=status, graph_code=graph_code)
        self.retry_after = retry_after


class DeltaExpired(GraphError):
    """The delta token is no longer valid (410): resync the window and diff the mirror."""

    code = "delta_expired"


class SubscriptionGone(GraphError):
    """The subscription no longer exists (404): create a new one instead of retrying."""

    code = "subscription_gone"
