"""Common ground of the service-level tests: a fresh tenant seeded in the simulator, and the
app's settings pointed at the simulator (TLS with its CA) and at Azurite."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from graphsim.testing import SimHandle
from shared.compose import Services
from shared.settings import Settings

ROLES = ("Calendars.Read", "User.Read.All")


def seed_tenant(
    sim: SimHandle, *, secret: str, names: Sequence[str], roles: Sequence[str] = ROLES
) -> tuple[str, str, dict[str, str]]:
    """(tenant id, client id, {upn: user id}) of a new tenant whose app holds `secret` and is
    consented `roles`, with one user per name."""
    tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
    domain = f"d{uuid.uuid4().hex[:8]}.example"
    upns = [f"{name}@{domain}" for name in names]
    seeded: dict[str, Any] = sim.control.seed(
        tenants=[{"id": tenant, "domain": domain}],
        apps=[{"client_id": client, "tenant": tenant, "secrets": [{"value": secret}]}],
        consents=[{"tenant": tenant, "client_id": client, "roles": list(roles)}],
        users=[{"tenant": tenant, "upn": upn} for upn in upns],
    )
    return tenant, client, {upn: str(seeded["users"][upn]).lower() for upn in upns}


def app_settings(sim: SimHandle, azurite: str, tenant: str, client: str, **env: str) -> Settings:
    """The app's settings for `tenant` and `client`, against the simulator and Azurite."""
    return Settings.from_env(
        {
            "TENANT_IDS": tenant,
            "CLIENT_ID": client,
            "GRAPH_BASE_URL": sim.graph_base_url,
            "AUTHORITY_HOST": sim.authority_host,
            "CA_BUNDLE": sim.ca_pem_path,
            "AzureWebJobsStorage": azurite,
            **env,
        }
    )


def empty_write_queue(svc: Services) -> None:
    """Start a test with no write on the `calendar-writes` queue: the queue is shared by every
    test of the Azurite session, and tests that queue a write for later leave it there."""
    assert svc.write_queue is not None
    queue = svc.write_queue._queue
    with contextlib.suppress(ResourceNotFoundError):  # not made yet: nothing on it
        queue.clear_messages()
