"""A rejected credential, as the services meet it against the simulator's Entra and Azurite:
the mailbox goes to credential_invalid visibly, keeps being probed at its poll interval, and
returns to its mode by itself once the credential works again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.compose import Services, build_services
from shared.core.lifecycle import State
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.secrets import EnvSecrets
from shared.services import mailboxes, timers
from shared.services.sync import run_sync_request
from tests.services.simworld import app_settings

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=5) as handle:
        yield handle


def _services(sim: SimHandle, azurite: str, world: dict[str, str], secret: str) -> Services:
    settings = app_settings(sim, azurite, world["tenant"], world["client"])
    return build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": secret}))


def test_rejected_credential_is_a_state_and_heals(sim: SimHandle, azurite: str) -> None:
    """AADSTS7000215 in a round: credential_invalid with the code; the next poll after the
    secret is fixed restores poll mode and clears the error."""
    tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
    seeded = sim.control.seed(
        tenants=[{"id": tenant, "domain": "contoso.example"}],
        apps=[{"client_id": client, "tenant": tenant, "secrets": [{"value": SECRET}]}],
        consents=[
            {"tenant": tenant, "client_id": client, "roles": ["Calendars.Read", "User.Read.All"]}
        ],
        users=[{"tenant": tenant, "upn": "adele@contoso.example"}],
    )
    world = {"tenant": tenant, "client": client}
    user = seeded["users"]["adele@contoso.example"].lower()
    good = _services(sim, azurite, world, SECRET)
    bad = _services(sim, azurite, world, "a-wrong-secret-value-0123456789")
    key = MailboxKey(tenant, user)
    mailboxes.enrol(good, tenant, user, {"mode": "poll", "pollSeconds": 60})

    def poll() -> SyncRequest:  # stamped now: no earlier round can fold it
        return SyncRequest(tenant, user, Trigger.POLL, requested_at=stamp_request(good.now()))

    assert run_sync_request(good, poll()).result == "ok"

    assert run_sync_request(bad, poll()).result == "failed"
    record = good.state.find_mailbox(key)
    assert record is not None
    assert record.state is State.CREDENTIAL_INVALID
    assert record.status.mode == "poll"
    assert record.status.last_error_code == "7000215"
    assert "credential was rejected" in record.status.mode_reason
    assert record.health(good.now()).startswith("error: 7000215")

    good.state.update_status(key, next_poll=None)  # the poll interval has passed
    assert timers.run_poll(good)["polled"] == 1
    assert run_sync_request(good, poll()).result.startswith("ok")
    healed = good.state.find_mailbox(key)
    assert healed is not None
    assert healed.state is State.POLL_CHOSEN
    assert (healed.status.last_error, healed.health(good.now())) == (
        "",
        "ok (poll mode: poll mode chosen)",
    )
    for svc in (good, bad):
        svc.graph.close()
