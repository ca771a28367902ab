"""The operations log against the simulator and Azurite: a sync round's Graph calls and a
notification POST are recorded with their fields, queryable by mailbox, direction and time, old
days are pruned, and no secret (clientState, token, client secret, delta token) is in any row."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.compose import Services, build_services
from shared.core import oplog as core
from shared.core.model import MailboxKey, SubscriptionRecord, SyncRequest, Trigger
from shared.core.notifications import client_state_digest
from shared.core.rounds import stamp_request
from shared.errors import InputError
from shared.secrets import EnvSecrets
from shared.services import intake, mailboxes
from shared.services.oplog import run_log_query, run_prune
from shared.services.sync import run_sync_request
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "oplog-client-secret-value-0123456789"
CLIENT_STATE = "oplog-client-state-0123456789"
GUID = 36


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=11) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, MailboxKey]]:
    """A fresh tenant with one poll-mode mailbox enrolled."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["lee"])
    ((upn, user_id),) = users.items()
    settings = app_settings(sim, azurite, tenant, client)
    svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
    key = MailboxKey(tenant, user_id)
    mailboxes.enrol(svc, tenant, key.user_id, {"mode": "poll", "pollSeconds": 60})
    sim.control.create_event(
        upn,
        {
            "subject": "Logged",
            "start": {"dateTime": "2026-12-02T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-02T10:00:00", "timeZone": "UTC"},
        },
    )
    yield svc, key
    svc.graph.close()


def _rows(svc: Services, tenant: str) -> list[dict[str, Any]]:
    """Every stored row of the tenant, raw (all properties), from every day partition."""
    assert svc.oplog is not None
    svc.oplog.flush()
    table = svc.oplog._table
    return [
        dict(e) | {"PartitionKey": e["PartitionKey"]}
        for e in table.list_entities()
        if e.get("tenant") == tenant.lower()
    ]


def _notify(svc: Services, key: MailboxKey) -> intake.IntakeResult:
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    svc.state.put_subscription(
        SubscriptionRecord(
            sub,
            key.tenant_id,
            key.user_id,
            f"users/{key.user_id}/events",
            datetime.now(UTC) + timedelta(days=1),
            client_state_digest(CLIENT_STATE),
        )
    )
    item = {
        "subscriptionId": sub,
        "clientState": CLIENT_STATE,
        "tenantId": key.tenant_id,
        "changeType": "updated",
        "resource": f"Users/{key.user_id}/Events/e1",
        "resourceData": {"id": "e1"},
    }
    forged = item | {"clientState": "forged-state-value-0123456789"}
    body = json.dumps({"value": [item, forged]}).encode()
    return asyncio.run(intake.run_callback(lambda: svc, "change", body))


def test_a_round_and_a_notification_are_logged_without_secrets(
    world: tuple[Services, MailboxKey],
) -> None:
    """The round's delta calls (out) and the POST (in) are in the mailbox's log with status,
    duration, request ids and counts; no secret, clientState, token or delta token anywhere."""
    svc, key = world
    request = SyncRequest(
        key.tenant_id, key.user_id, Trigger.POLL, requested_at=stamp_request(svc.now())
    )
    assert run_sync_request(svc, request).result.startswith("ok")
    assert _notify(svc, key).status == 202

    found = run_log_query(svc, {"tenant": key.tenant_id, "user": key.user_id})["value"]
    outbound = [r for r in found if r["direction"] == "out"]
    inbound = [r for r in found if r["direction"] == "in"]
    assert outbound, found
    delta = [r for r in outbound if "calendarView/delta" in r["path"]]
    assert delta
    for row in delta:
        assert row["method"] == "GET"
        assert row["status"] == 200
        assert row["durationMs"] >= 0
        assert row["requestId"]
        assert len(row["clientRequestId"]) == GUID
        assert row["path"].startswith(f"users/{key.user_id}/calendarView/delta")
    assert len({r["clientRequestId"] for r in delta}) == len(delta)  # fresh per call
    (post,) = inbound
    assert (post["status"], post["items"], post["queued"], post["ignored"]) == (202, 2, 1, 1)
    assert post["path"] == "/api/notifications"
    assert post["kind"] == "notifications"
    assert found == sorted(found, key=lambda r: r["at"], reverse=True)  # newest first

    only_in = run_log_query(svc, {"tenant": key.tenant_id, "user": key.user_id, "direction": "in"})
    assert [r["direction"] for r in only_in["value"]] == ["in"]
    future = (svc.now() + timedelta(hours=1)).isoformat()
    assert (
        run_log_query(svc, {"tenant": key.tenant_id, "since": future, "until": future})["value"]
        == []
    )

    cursor = svc.state.get_cursor(key)
    link_secrets = [v for _, v in parse_qsl(urlsplit(cursor.delta_link or "").query) if len(v) > 8]
    text = json.dumps(_rows(svc, key.tenant_id), default=str)
    assert link_secrets  # the test would be vacuous without a delta token to look for
    for secret in (SECRET, CLIENT_STATE, "forged-state-value", "Bearer", "code=", *link_secrets):
        assert secret not in text, secret


def test_bad_parameters_are_input_errors_naming_them(
    world: tuple[Services, MailboxKey],
) -> None:
    """The service refuses a bad parameter by name (the route answers a 400 problem body)."""
    svc, _ = world
    with pytest.raises(InputError, match="direction"):
        run_log_query(svc, {"direction": "up"})


def test_days_past_the_retention_are_pruned(world: tuple[Services, MailboxKey]) -> None:
    """The daily prune drops partitions older than LOG_RETENTION_DAYS and keeps the rest."""
    svc, key = world
    assert svc.oplog is not None
    now = svc.now()

    def record(at: datetime) -> core.LogRecord:
        return core.LogRecord("out", at, key.tenant_id, key.user_id, "GET", "users/x", 200, 1.0)

    svc.oplog.record(record(now - timedelta(days=10)), record(now - timedelta(days=1)))
    svc.oplog.flush()
    assert run_prune(svc) >= 1
    days = {row["PartitionKey"][:8] for row in _rows(svc, key.tenant_id)}
    assert core.day_key(now - timedelta(days=10)) not in days
    assert core.day_key(now - timedelta(days=1)) in days


def test_storage_down_never_fails_the_logged_request(world: tuple[Services, MailboxKey]) -> None:
    """A flush that cannot write drops the batch and counts it; record() never raises."""
    svc, key = world
    assert svc.oplog is not None
    broken = type(svc.oplog)(
        svc.oplog._table.__class__.from_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            "TableEndpoint=http://127.0.0.1:1/devstoreaccount1;",
            "log",
            retry_total=0,
            connection_timeout=1,
        ),
        flush_seconds=3600,
    )  # no background flush before ours
    broken.record(core.LogRecord("out", svc.now(), key.tenant_id, "", "GET", "x", 200, 1.0))
    assert broken.flush() == 0
    assert broken.dropped == 1
