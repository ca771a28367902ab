"""Common ground of the service-level tests: a fresh tenant seeded in the simulator, and the
app's settings pointed at the simulator (TLS with its CA) and at Azurite; and what the write
tests of both providers (Graph, EWS) build and read: event bodies, writes, the mirror, the
feed and a poll round's request."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from graphsim.testing import SimHandle
from shared.compose import Services
from shared.core.entity import join_properties
from shared.core.feed import ChangeEvent
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.services import writes
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


def poll_request(svc: Services, key: MailboxKey) -> SyncRequest:
    """A poll round's request stamped now: no earlier round can fold it."""
    return SyncRequest(
        key.tenant_id, key.user_id, Trigger.POLL, requested_at=stamp_request(svc.now())
    )


def when(days: int, hour: int, zone: str = "UTC") -> dict[str, str]:
    """A Graph dateTimeTimeZone `days` from today at `hour`:00."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    moment = day + timedelta(days=days, hours=hour)
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}


def event_body(subject: str, days: int = 1, **extra: Any) -> dict[str, Any]:
    """A write's event: an hour from 9:00 UTC, `days` from today."""
    return {"subject": subject, "start": when(days, 9), "end": when(days, 10), **extra}


def write(
    svc: Services, key: MailboxKey, body: dict[str, Any], idem: str | None = None
) -> tuple[dict[str, Any], int]:
    """One write through the write API's service (Idempotency-Key `idem`)."""
    return writes.run_write(svc, key.tenant_id, key.user_id, body, idem)


def mirror_rows(svc: Services, key: MailboxKey) -> dict[str, dict[str, Any]]:
    """event id -> the mirrored row, its properties joined."""
    return {str(r["event_id"]): join_properties(r) for r in svc.state.list_events(key)}


def feed_of(svc: Services, key: MailboxKey) -> list[ChangeEvent]:
    """The mailbox's change feed, oldest first."""
    assert svc.changes is not None
    return svc.changes.read_after(key, limit=1000)
