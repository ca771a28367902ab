"""The subscriptions admin service against the simulator and Azurite, on records it stores
itself: each state (active, renewDue, expired), Graph's list beside them, a renewal skipped
within 10 minutes of a reauthorize, and one Graph no longer has recreated (its record gone)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.compose import Services, build_services
from shared.core.model import SubscriptionRecord
from shared.errors import InputError
from shared.secrets import EnvSecrets
from shared.services import subscription_admin
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=41) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, dict[str, SubscriptionRecord]]]:
    """A fresh tenant with three stored subscriptions Graph does not know."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["adele"])
    ((_, user_id),) = users.items()
    svc = build_services(
        app_settings(sim, azurite, tenant, client),
        secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}),
    )
    now = svc.now()
    made = {}
    for name, expires, reauthorized in (
        ("active", now + timedelta(days=5), None),
        ("due", now + timedelta(hours=20), now - timedelta(minutes=2)),
        ("expired", now - timedelta(minutes=1), None),
    ):
        record = SubscriptionRecord(
            str(uuid.uuid4()),
            tenant,
            user_id,
            f"users/{user_id}/events",
            expires,
            "digest",
            last_reauthorized=reauthorized,
        )
        svc.state.put_subscription(record)
        made[name] = record
    yield svc, made
    for record in made.values():
        svc.state.delete_subscription(record.tenant_id, record.subscription_id)
    svc.graph.close()


def test_each_stored_subscription_has_its_state_and_graph_is_compared(
    world: tuple[Services, dict[str, SubscriptionRecord]],
) -> None:
    """active / renewDue / expired from the expiry; with graph=true none is in Graph's list."""
    svc, made = world
    tenant = made["active"].tenant_id
    listed = subscription_admin.list_view(svc, {"tenant": tenant, "graph": "true"})
    states = {v["subscriptionId"]: v["state"] for v in listed["value"]}
    assert states == {
        made["active"].subscription_id: "active",
        made["due"].subscription_id: "renewDue",
        made["expired"].subscription_id: "expired",
    }
    assert {v["inGraph"] for v in listed["value"]} == {False}
    assert listed["graphErrors"] == {}
    with pytest.raises(InputError, match="graph"):
        subscription_admin.list_view(svc, {"graph": "perhaps"})
    with pytest.raises(InputError, match="tenant"):
        subscription_admin.list_view(svc, {"mailbox": "adele"})


def test_renew_skips_one_just_reauthorized_and_recreates_one_graph_lost(
    world: tuple[Services, dict[str, SubscriptionRecord]],
) -> None:
    """The one reauthorized 2 minutes ago is skipped (Graph would refuse the PATCH); the others
    are unknown to Graph: 404, handled as gone (their records go, nothing is left failed)."""
    svc, made = world
    result = subscription_admin.renew_now(svc, {"tenant": made["active"].tenant_id})
    outcome = {v["subscriptionId"]: v["result"] for v in result["value"]}
    assert outcome[made["due"].subscription_id] == "skipped"
    assert outcome[made["active"].subscription_id] == "recreated"
    assert (result["skipped"], result["failed"]) == (1, 0)
    assert (
        svc.state.get_subscription(made["active"].tenant_id, made["active"].subscription_id) is None
    )
    with pytest.raises(InputError, match="JSON object"):
        subscription_admin.renew_now(svc, ["x"])
