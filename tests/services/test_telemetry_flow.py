"""Telemetry along one notification, against the simulator and Azurite: the intake's trace
survives the queue into the round, the round's log records carry their dimensions, and the
metrics (rounds, lag) are recorded on an in-memory reader; no secret reaches a dimension."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from graphsim.client import wait_for
from graphsim.testing import SimHandle, run_simulator
from shared import redact
from shared.adapters.queues import decode_request
from shared.compose import Services, build_services
from shared.core.model import MailboxKey, SubscriptionRecord, SyncRequest, Trigger
from shared.core.notifications import client_state_digest
from shared.core.rounds import stamp_request
from shared.core.tracing import parse_traceparent
from shared.secrets import EnvSecrets
from shared.services import intake, mailboxes
from shared.services.sync import run_sync_request
from shared.telemetry import DIMENSIONS, Metrics
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-telemetry-secret-value-0123456789"
CLIENT_STATE = "telemetry-client-state-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=11) as handle:
        yield handle


@pytest.fixture
def world(
    sim: SimHandle, azurite: str
) -> Iterator[tuple[Services, MailboxKey, InMemoryMetricReader]]:
    """A poll-mode mailbox enrolled and synced once, a subscription record for it (so the
    intake accepts its notifications), and metrics on an in-memory reader."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["alex"])
    (user_id,) = users.values()
    settings = app_settings(sim, azurite, tenant, client)
    reader = InMemoryMetricReader()
    built = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
    svc = replace(built, metrics=Metrics(MeterProvider(metric_readers=[reader])))
    key = MailboxKey(tenant, user_id)
    mailboxes.enrol(svc, tenant, key.user_id, {"mode": "poll", "pollSeconds": 60})
    first = SyncRequest(tenant, key.user_id, Trigger.POLL, requested_at=stamp_request(svc.now()))
    assert run_sync_request(svc, first).result == "ok"
    svc.state.put_subscription(
        SubscriptionRecord(
            f"sub-{uuid.uuid4().hex}",
            tenant,
            key.user_id,
            f"users/{key.user_id}/events",
            datetime.now(UTC) + timedelta(days=1),
            client_state_digest(CLIENT_STATE),
        )
    )
    redact.REDACTOR.register(SECRET)
    redact.REDACTOR.register(CLIENT_STATE)
    yield svc, key, reader
    svc.graph.close()


def _notification(svc: Services, key: MailboxKey) -> bytes:
    [sub] = svc.state.list_tenant_subscriptions(key.tenant_id)
    item = {
        "subscriptionId": sub.subscription_id,
        "clientState": CLIENT_STATE,
        "tenantId": key.tenant_id,
        "changeType": "updated",
        "resource": f"Users/{key.user_id}/Events/e1",
        "resourceData": {"id": "e1"},
    }
    return json.dumps({"value": [item]}).encode()


def _take(svc: Services, key: MailboxKey) -> list[SyncRequest]:
    """The visible notification requests for this mailbox on the sync queue (taken off it)."""
    found = []
    queue = svc.queue._queue
    for message in queue.receive_messages(max_messages=32, visibility_timeout=1):
        request = decode_request(message.content)
        if request.mailbox == key and request.trigger is Trigger.NOTIFICATION:
            queue.delete_message(message)
            found.append(request)
    return found


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_traceparent_survives_intake_queue_and_round_with_dimensions_and_metrics(
    world: tuple[Services, MailboxKey, InMemoryMetricReader], caplog: pytest.LogCaptureFixture
) -> None:
    """A notification's trace id, made at the intake, is on the queued message and on the
    round's log records (with tenant, mailbox, trigger, round id); rounds and lag are
    measured; no dimension holds the secret or the client state."""
    svc, key, reader = world
    caplog.set_level(logging.DEBUG, logger="calsync")
    assert intake.run_notifications(svc, _notification(svc, key)).queued == 1
    summary = next(r for r in caplog.records if r.name == "calsync.intake")
    [request] = wait_for(lambda: _take(svc, key), timeout=15, what="the queued request")
    parent = parse_traceparent(request.traceparent)
    assert parent is not None, request
    assert summary.__dict__["trace_id"] == parent.trace_id
    assert (summary.__dict__["items"], summary.__dict__["queued"]) == (1, 1)

    caplog.clear()
    assert run_sync_request(svc, request).result == "ok"
    begin = next(r for r in caplog.records if r.getMessage().startswith("round begin"))
    end = next(r for r in caplog.records if r.getMessage().startswith("round end"))
    for record in (begin, end):
        found = record.__dict__
        assert found["trace_id"] == parent.trace_id
        assert (found["tenant_id"], found["user_id"]) == (key.tenant_id, key.user_id)
        assert found["trigger"] == "notification"
        assert len(found["round_id"]) == 16
        assert found["round_id"] != parent.span_id
    assert begin.__dict__["round_id"] == end.__dict__["round_id"]

    points = _points(reader)
    rounds = {
        (p.attributes["trigger"], p.attributes["result"]): p.value for p in points["calsync.rounds"]
    }
    assert rounds[("notification", "ok")] == 1
    assert rounds[("poll", "ok")] == 1
    [lag] = [p for p in points["calsync.sync.lag"] if p.attributes["trigger"] == "notification"]
    assert lag.count == 1
    assert 0 <= lag.sum < 60
    for record in caplog.records:
        for name in DIMENSIONS & set(record.__dict__):
            assert SECRET not in str(record.__dict__[name])
            assert CLIENT_STATE not in str(record.__dict__[name])


def test_a_request_without_traceparent_gets_a_round_trace_of_its_own(
    world: tuple[Services, MailboxKey, InMemoryMetricReader], caplog: pytest.LogCaptureFixture
) -> None:
    """A request from an older writer (no traceparent) still runs, its records carrying a round
    id and no trace id taken from nowhere."""
    svc, key, _ = world
    caplog.set_level(logging.INFO, logger="calsync")
    request = SyncRequest(
        key.tenant_id, key.user_id, Trigger.POLL, requested_at=stamp_request(svc.now())
    )
    assert run_sync_request(svc, request).result == "ok"
    begin = next(r for r in caplog.records if r.getMessage().startswith("round begin"))
    assert len(begin.__dict__["round_id"]) == 16
    assert "trace_id" not in begin.__dict__


def test_a_lifecycle_transition_carries_its_dimensions(
    world: tuple[Services, MailboxKey, InMemoryMetricReader], caplog: pytest.LogCaptureFixture
) -> None:
    """Removing a mailbox logs its transition with tenant, mailbox, the new state and the
    change as dimensions."""
    svc, key, _ = world
    caplog.set_level(logging.INFO, logger="calsync")
    mailboxes.remove(svc, key.tenant_id, key.user_id, purge=False)
    [moved] = [r for r in caplog.records if r.name == "calsync.lifecycle" and " -> " in r.msg]
    found = moved.__dict__
    assert (found["tenant_id"], found["user_id"]) == (key.tenant_id, key.user_id)
    assert found["state"] == "removed"
    assert found["result"].endswith("-> removed on Removed")
