"""Telemetry helpers: dimensions are named, masked and bound; metrics record on a provider the
caller sets and are no-ops without one; Azure Monitor is configured only with a connection
string."""

from __future__ import annotations

import logging
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from shared import redact, telemetry
from shared.settings import Settings

ROOT = Path(__file__).parents[1]
TENANT = "7d4f6bd2-6d8c-4c1a-9c8e-3f2a1b0c9d8e"
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_dimensions_reach_the_record(caplog: pytest.LogCaptureFixture) -> None:
    """`extra=dims(...)` puts each dimension on the LogRecord (customDimensions once exported);
    empty values are left out."""
    caplog.set_level(logging.INFO, logger="calsync.test")
    logging.getLogger("calsync.test").info(
        "x", extra=telemetry.dims(tenant_id=TENANT, user_id="u1", round_id="", attempt=0)
    )
    [record] = caplog.records
    assert (record.__dict__["tenant_id"], record.__dict__["user_id"]) == (TENANT, "u1")
    assert record.__dict__["attempt"] == 0
    assert "round_id" not in record.__dict__


def test_no_secret_in_a_dimension() -> None:
    """A registered secret inside a dimension's value is masked; an unknown name is refused."""
    secret = "s3cr3t-value-for-the-dimension-test"
    redact.REDACTOR.register(secret)
    found = telemetry.dims(result=f"failed with {secret}", error_code=secret)
    assert secret not in repr(found)
    assert "***" in found["result"]
    with pytest.raises(ValueError, match="client_state"):
        telemetry.dims(client_state="x")


def test_bound_dimensions_join_every_dims_call_within() -> None:
    """Dimensions bound for a round are on every `dims()` inside it, and gone after."""
    with telemetry.bind(tenant_id=TENANT, round_id="r1"):
        found = telemetry.dims(result="ok")
    assert found == {"tenant_id": TENANT, "round_id": "r1", "result": "ok"}
    assert telemetry.dims(result="ok") == {"result": "ok"}


def test_metrics_record_on_the_given_provider() -> None:
    """Rounds, lag, drift and 429s land on an in-memory reader, with low-cardinality
    attributes (no user id)."""
    reader = InMemoryMetricReader()
    metrics = telemetry.Metrics(MeterProvider(metric_readers=[reader]))
    metrics.round(tenant_id=TENANT, trigger="notification", result="ok")
    metrics.lag(1.5, tenant_id=TENANT, trigger="notification")
    metrics.drift(3, tenant_id=TENANT)
    metrics.drift(0, tenant_id=TENANT)
    metrics.throttled(tenant_id=TENANT, operation="delta")
    metrics.intake(kind="change", accepted=4, ignored=0)
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {
        m.name: list(m.data.data_points)
        for r in data.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
    }
    assert found["calsync.rounds"][0].value == 1
    assert found["calsync.sync.lag"][0].sum == 1.5
    assert found["calsync.sync.drift"][0].value == 3
    [intake] = found["calsync.intake.items"]  # no point for 0 ignored
    assert (intake.value, dict(intake.attributes)) == (4, {"kind": "change", "outcome": "accepted"})
    assert dict(found["calsync.graph.throttled"][0].attributes) == {
        "tenant_id": TENANT,
        "operation": "delta",
    }


def test_metrics_without_a_provider_are_no_ops() -> None:
    """With no meter provider configured nothing fails and nothing is kept."""
    telemetry.Metrics().round(tenant_id=TENANT, trigger="poll", result="ok")


def test_round_span_continues_the_trace_with_an_sdk_tracer() -> None:
    """With a recording tracer the round's span is a child of the request's traceparent, and
    what it queues carries that span's traceparent (same trace)."""
    from opentelemetry import trace

    provider = TracerProvider()
    rng = random.Random(3)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("outer"):
        outer = telemetry.outgoing_traceparent(rng)
    assert outer.split("-")[1] != "0af7651916cd43dd8448eb211c80319c"
    # The global tracer is a no-op in tests: the round id is still a fresh span id of the trace.
    with telemetry.round_span(PARENT, rng) as round_id:
        assert len(round_id) == 16
        assert round_id != PARENT.split("-")[2]
        assert telemetry.outgoing_traceparent(rng).split("-")[1] == PARENT.split("-")[1]
    assert not trace.get_current_span().get_span_context().is_valid


def test_configure_needs_a_connection_string() -> None:
    """Without APPLICATIONINSIGHTS_CONNECTION_STRING nothing is configured or imported."""
    settings = Settings.from_env(
        {
            "TENANT_IDS": TENANT,
            "CLIENT_ID": TENANT,
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }
    )
    assert telemetry.configure(settings) is False
    assert settings.appinsights_connection_string == ""


def test_credential_from_the_authentication_string() -> None:
    """`Authorization=AAD` names the managed identity; anything else means no credential."""
    assert telemetry._credential("") is None
    credential = telemetry._credential(f"ClientId={TENANT};Authorization=AAD")
    assert type(credential).__name__ == "ManagedIdentityCredential"


def test_configure_wires_azure_monitor_once_in_a_fresh_process() -> None:
    """With a connection string: configured once (a second call is a no-op), the exporter's log
    handler sits on the `calsync` logger with the redactor, and real providers are set."""
    code = (
        "import logging\n"
        "from opentelemetry import metrics, trace\n"
        "from shared import redact, telemetry\n"
        "from shared.settings import Settings\n"
        f"s = Settings.from_env({{'TENANT_IDS': {TENANT!r}, 'CLIENT_ID': {TENANT!r},\n"
        "    'AzureWebJobsStorage': 'UseDevelopmentStorage=true',\n"
        f"    'APPLICATIONINSIGHTS_CONNECTION_STRING': 'InstrumentationKey={TENANT};'\n"
        "        'IngestionEndpoint=https://127.0.0.1:9/'})\n"
        "assert telemetry.configure(s) and telemetry.configure(s)\n"
        "[handler] = logging.getLogger('calsync').handlers\n"
        "assert redact.REDACTOR in handler.filters\n"
        "assert logging.getLogger('calsync').level == logging.INFO\n"
        "assert type(metrics.get_meter_provider()).__name__ == 'MeterProvider'\n"
        "assert type(trace.get_tracer_provider()).__name__ == 'TracerProvider'\n"
        "print('configured')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "configured", done.stderr[-2000:]
