"""Immutable ids end to end at the service level: the mirror keys events by the id Graph gives
with `Prefer: IdType="ImmutableId"`, so an event moved to another folder and back keeps its row."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from graphsim.testing import SimHandle, run_simulator, token_for
from shared.compose import Services, build_services
from shared.core.model import MailboxKey
from shared.secrets import EnvSecrets
from shared.services import mailboxes
from shared.services.sync import run_sync_request
from tests.services.simworld import app_settings, poll_request, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"
EVENT = {
    "subject": "Design review",
    "start": {"dateTime": "2026-12-03T09:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2026-12-03T10:00:00", "timeZone": "UTC"},
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=17) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, MailboxKey, str, str]]:
    """A fresh tenant: one poll-mode mailbox with one event, enrolled and synced once."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["adele"])
    ((upn, user_id),) = users.items()
    svc = build_services(
        app_settings(sim, azurite, tenant, client),
        secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}),
    )
    key = MailboxKey(tenant, user_id)
    event_id = str(sim.control.create_event(upn, EVENT)["id"])
    mailboxes.enrol(svc, tenant, user_id, {"mode": "poll", "pollSeconds": 60})
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    yield svc, key, upn, event_id
    svc.graph.close()


def test_the_mirrored_event_id_survives_a_move(
    sim: SimHandle, world: tuple[Services, MailboxKey, str, str]
) -> None:
    """After the event moves to another folder and back, the next round updates the same row
    (same id, the new changeKey) and adds none: the mirror holds the immutable id."""
    svc, key, upn, event_id = world
    before = svc.state.stored_versions(key)
    assert list(before) == [event_id]
    moved = sim.control.move_event(upn, event_id)
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    after = svc.state.stored_versions(key)
    assert list(after) == [event_id]
    assert after[event_id][0] == moved["changeKey"] != before[event_id][0]


def test_without_the_header_the_id_changes_on_a_move(
    sim: SimHandle, world: tuple[Services, MailboxKey, str, str]
) -> None:
    """The simulator is honest: a client that does not ask for immutable ids gets a REST id
    that a move replaces (the old one is then 404), and never the mirror's immutable id."""
    svc, key, upn, event_id = world
    token = token_for(sim, key.tenant_id, svc.settings.client_id, SECRET)
    with httpx.Client(
        base_url=sim.graph_base_url + "/",
        verify=sim.ssl_context(),
        headers={"Authorization": f"Bearer {token}"},
    ) as graph:
        listed = graph.get(f"users/{key.user_id}/events").json()["value"]
        [rest_before] = [e["id"] for e in listed]
        sim.control.move_event(upn, event_id)
        [rest_after] = [e["id"] for e in graph.get(f"users/{key.user_id}/events").json()["value"]]
        old = graph.get(f"users/{key.user_id}/events/{quote(rest_before, safe='')}")
    assert event_id not in (rest_before, rest_after)
    assert rest_before != rest_after
    assert old.status_code == 404
