"""Invariant 1: a notification is acknowledged with 2xx only once it is on a queue. With the
queue unreachable (tables fine), the intake answers 503 so that Graph retries."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from shared.compose import build_services
from shared.core.model import SubscriptionRecord
from shared.core.notifications import client_state_digest
from shared.errors import StorageError
from shared.secrets import EnvSecrets
from shared.services import intake
from shared.settings import Settings
from shared.web import intake_error

pytestmark = pytest.mark.integration
TENANT = "11111111-2222-3333-4444-555555555555"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_queue_down_means_503_not_202(azurite: str) -> None:
    """A valid notification whose sync request cannot be queued gets a 503 from the intake."""
    parts = dict(p.split("=", 1) for p in azurite.split(";") if p)
    parts["QueueEndpoint"] = f"http://127.0.0.1:{_dead_port()}/devstoreaccount1"
    broken = ";".join(f"{k}={v}" for k, v in parts.items())
    settings = Settings.from_env(
        {"TENANT_IDS": TENANT, "CLIENT_ID": TENANT, "AzureWebJobsStorage": broken}
    )
    svc = build_services(settings, secrets=EnvSecrets({}), ensure=False)
    svc.state.ensure()
    svc.state.put_subscription(
        SubscriptionRecord(
            "sub-1",
            TENANT,
            "user-1",
            "users/user-1/events",
            datetime.now(UTC) + timedelta(days=1),
            client_state_digest("secret-state"),
        )
    )
    body = json.dumps(
        {
            "value": [
                {
                    "subscriptionId": "sub-1",
                    "clientState": "secret-state",
                    "changeType": "updated",
                    "tenantId": TENANT,
                    "resource": "Users/user-1/Events/e1",
                    "resourceData": {"id": "e1"},
                }
            ]
        }
    ).encode()
    with pytest.raises(StorageError) as info:
        intake.run_notifications(svc, body)
    response: func.HttpResponse = intake_error(info.value)
    assert response.status_code == 503
    svc.graph.close()
