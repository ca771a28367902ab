"""Telemetry: log dimensions, metrics, the round's span, and Azure Monitor when configured.

Rule: every key log line carries its facts as dimensions (`extra=dims(...)`): with
azure-monitor-opentelemetry the attributes of a LogRecord become customDimensions in
Application Insights, so operators query `customDimensions.tenant_id` instead of parsing text.
Only the names in DIMENSIONS exist, and every string value passes the redactor: a dimension
never carries a secret, a client state or a token. Metrics (rounds, notification-to-mirror lag,
drift, 429s) go through the OpenTelemetry metrics API, which records nothing until a meter
provider is set (`configure` does, when APPLICATIONINSIGHTS_CONNECTION_STRING is set); tests
hand `Metrics` their own provider. OpenTelemetry and the Azure Monitor distro are imported on
first use, never when function_app is imported.

https://learn.microsoft.com/azure/azure-monitor/app/opentelemetry-add-modify?tabs=python
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared import redact
from shared.core.tracing import child_of, new_traceparent, parse_traceparent
from shared.redact import REDACTOR

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, MeterProvider

    from shared.settings import Settings

log = logging.getLogger("calsync.telemetry")

# The custom dimensions calsync writes (none of them names a LogRecord attribute).
DIMENSIONS = frozenset(
    {
        "tenant_id",
        "user_id",
        "subscription_id",
        "round_id",
        "trace_id",
        "trigger",
        "request_id",
        "result",
        "state",
        "lifecycle_event",
        "error_code",
        "caller",  # who made a connector's raw Graph request (their own name for themselves)
        "items",
        "queued",
        "ignored",
        "upserts",
        "deletes",
        "drift",
        "full",
        "attempt",
    }
)
MAX_DIMENSION = 256  # characters of a string dimension kept


_BOUND: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "calsync_dims", default=None
)


@contextlib.contextmanager
def bind(**values: Any) -> Iterator[dict[str, Any]]:
    """Dimensions every `dims()` within carries too (a round's tenant, mailbox, round id...)."""
    bound = dims(**values)
    token = _BOUND.set(bound)
    try:
        yield bound
    finally:
        _BOUND.reset(token)


def dims(**values: Any) -> dict[str, Any]:
    """The `extra=` of a log call: the bound dimensions, then each named one ('' and None left
    out), strings masked by the redactor and shortened; an unknown name is a programming
    error."""
    unknown = set(values) - DIMENSIONS
    if unknown:
        raise ValueError(f"unknown log dimension(s) {sorted(unknown)}: add to DIMENSIONS")
    out: dict[str, Any] = dict(_BOUND.get() or {})
    for name, value in values.items():
        if value is None or value == "":
            continue
        if isinstance(value, bool | int | float):
            out[name] = value
        else:
            out[name] = REDACTOR.mask(str(getattr(value, "value", value)))[:MAX_DIMENSION]
    return out


def trace_id_of(traceparent: str) -> str:
    """The trace id of a traceparent ('' if none): the operation id Application Insights shows."""
    parent = parse_traceparent(traceparent)
    return parent.trace_id if parent else ""


def outgoing_traceparent(rng: random.Random) -> str:
    """The traceparent a queued request carries: the active span's (when OpenTelemetry is
    recording one, e.g. the host's HTTP request), else the root of a new trace."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    return str(new_traceparent(rng))


@contextlib.contextmanager
def round_span(traceparent: str, rng: random.Random, name: str = "sync round") -> Iterator[str]:
    """A span continuing `traceparent` (a child of the intake's or timer's), current while the
    round runs so that its logs carry the operation id; yields the round id (its span id)."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = parse_traceparent(traceparent)
    carrier = {"traceparent": str(parent)} if parent else {}
    context = TraceContextTextMapPropagator().extract(carrier)
    tracer = trace.get_tracer("calsync")
    with tracer.start_as_current_span(name, context=context, kind=trace.SpanKind.CONSUMER) as span:
        if span.is_recording():
            yield f"{span.get_span_context().span_id:016x}"
        else:
            yield child_of(traceparent, rng).span_id


@dataclass(frozen=True)
class _Instruments:
    rounds: Counter
    lag: Histogram
    drift: Counter
    throttled: Counter
    notifications: Counter


class Metrics:
    """calsync's metrics. Attributes stay low in cardinality (tenant, trigger, result: never a
    user id, which belongs in logs). `provider`: tests' own; None: the global one (a no-op
    until `configure` sets Azure Monitor's)."""

    def __init__(self, provider: MeterProvider | None = None) -> None:
        self._provider = provider

    @functools.cached_property
    def _on(self) -> _Instruments:
        from opentelemetry import metrics

        provider = self._provider or metrics.get_meter_provider()
        meter = provider.get_meter("calsync")
        return _Instruments(
            rounds=meter.create_counter(
                "calsync.rounds", unit="{round}", description="sync requests handled, by result"
            ),
            lag=meter.create_histogram(
                "calsync.sync.lag",
                unit="s",
                description="from the notification (or timer) to the mirror updated",
            ),
            drift=meter.create_counter(
                "calsync.sync.drift",
                unit="{event}",
                description="events a safety-net full resync had to correct",
            ),
            throttled=meter.create_counter(
                "calsync.graph.throttled",
                unit="{response}",
                description="Graph answers 429 (or 503 with Retry-After)",
            ),
            notifications=meter.create_counter(
                "calsync.intake.items",
                unit="{item}",
                description="notification items Graph posted, by kind and outcome",
            ),
        )

    def round(self, *, tenant_id: str, trigger: str, result: str, full: bool = False) -> None:
        attributes: dict[str, str | bool] = {
            "tenant_id": tenant_id,
            "trigger": trigger,
            "result": result,
            "full": full,
        }
        self._on.rounds.add(1, attributes)

    def lag(self, seconds: float, *, tenant_id: str, trigger: str) -> None:
        self._on.lag.record(max(0.0, seconds), {"tenant_id": tenant_id, "trigger": trigger})

    def drift(self, events: int, *, tenant_id: str) -> None:
        if events:
            self._on.drift.add(events, {"tenant_id": tenant_id})

    def intake(self, *, kind: str, accepted: int, ignored: int) -> None:
        """A POST's items: accepted (their mailboxes queued) and ignored (forged, unknown...);
        no tenant attribute, since an ignored item's tenant is untrusted text."""
        for outcome, count in (("accepted", accepted), ("ignored", ignored)):
            if count:
                self._on.notifications.add(count, {"kind": kind, "outcome": outcome})

    def throttled(self, *, tenant_id: str, operation: str) -> None:
        self._on.throttled.add(1, {"tenant_id": tenant_id, "operation": operation})


_configured = False
_lock = threading.Lock()


def _credential(authentication: str) -> Any:
    """The managed identity named by APPLICATIONINSIGHTS_AUTHENTICATION_STRING
    (`ClientId=<id>;Authorization=AAD`), or None: Application Insights has local auth off,
    so telemetry is sent with an Entra token."""
    parts = dict(p.split("=", 1) for p in authentication.split(";") if "=" in p)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId") or None
    return ManagedIdentityCredential(client_id=client_id)


def configure(settings: Settings) -> bool:
    """Send logs of the `calsync` loggers, traces and metrics to Application Insights, once per
    process, when APPLICATIONINSIGHTS_CONNECTION_STRING is set; False when it is not."""
    global _configured
    if not settings.appinsights_connection_string:
        return False
    with _lock:
        if _configured:
            return True
        from azure.monitor.opentelemetry import configure_azure_monitor

        options: dict[str, Any] = {
            "connection_string": settings.appinsights_connection_string,
            "logger_name": "calsync",  # our records only: not every SDK's debug chatter
            # Graph calls (httpx) stay dependencies; a span per Table/Queue call would cost
            # more ingestion than the rest together (docs/deploy.md, "What it costs").
            "instrumentation_options": {"azure_sdk": {"enabled": False}},
        }
        credential = _credential(settings.appinsights_authentication)
        if credential is not None:
            options["credential"] = credential
        configure_azure_monitor(**options)
        ours = logging.getLogger("calsync")
        redact.install(ours)  # the exporter's handler sits there
        if ours.level == logging.NOTSET:  # info and up are exported: per-POST debug lines cost
            ours.setLevel(logging.INFO)
        _configured = True
    log.info("telemetry: sending logs, traces and metrics to Application Insights")
    return True
