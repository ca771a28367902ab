"""Recovery after a credential fix is automatic, against the simulator's Entra and Key Vault and
Azurite: a wrong secret in the vault puts every mailbox of the tenant in credential_invalid and
the health check fails with the AADSTS code; once the right secret is stored in the vault, the
next poll run reads it past the secret cache, gets a token, and every mailbox of the tenant
returns to its mode and catches up, with no notification and no wait for the cache TTL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.keyvault import KeyVaultSecrets
from shared.compose import Services, build_services
from shared.core.lifecycle import State
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.secrets import EnvSecrets
from shared.services import mailboxes, timers
from shared.services.health import TokenCheck
from shared.services.sync import run_sync_request
from tests.services.simworld import app_settings

pytestmark = pytest.mark.integration
RIGHT = "the-right-secret-value-0123456789"
WRONG = "a-wrong-secret-value-0123456789"
NAME = "graph-client-secret"
_MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=7) as handle:
        yield handle


def test_fixing_the_secret_in_key_vault_heals_the_tenant(sim: SimHandle, azurite: str) -> None:
    """Wrong secret in the vault: both mailboxes credential_invalid, health failed 7000215 (no
    secret shown, cached); right secret stored: one poll run restores both, their rounds run."""
    tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
    seeded = sim.control.seed(
        tenants=[{"id": tenant, "domain": "fabrikam.example"}],
        apps=[{"client_id": client, "tenant": tenant, "secrets": [{"value": RIGHT}]}],
        consents=[
            {"tenant": tenant, "client_id": client, "roles": ["Calendars.Read", "User.Read.All"]}
        ],
        users=[
            {"tenant": tenant, "upn": u} for u in ("ann@fabrikam.example", "bo@fabrikam.example")
        ],
        vault_tenant=tenant,
        secrets=[{"name": NAME, "value": WRONG}],
    )
    users = [seeded["users"][u].lower() for u in ("ann@fabrikam.example", "bo@fabrikam.example")]
    settings = app_settings(sim, azurite, tenant, client)
    # Key Vault as the app reads it (the simulator's vault, through its challenge flow), with
    # the default 300 s cache: healing must not wait for it.
    vault_login = ClientSecretCredential(
        tenant,
        client,
        RIGHT,
        authority=sim.authority_host,
        connection_verify=sim.ca_pem_path,
        disable_instance_discovery=True,
    )
    vault = SecretClient(sim.key_vault_url, vault_login, connection_verify=sim.ca_pem_path)
    svc: Services = build_services(settings, secrets=KeyVaultSecrets(vault, ttl=300))
    enroller = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": RIGHT}))
    keys = [MailboxKey(tenant, u) for u in users]
    for user in users:
        mailboxes.enrol(enroller, tenant, user, {"mode": "poll", "pollSeconds": 60})

    def round_of(key: MailboxKey) -> str:
        request = SyncRequest(
            tenant, key.user_id, Trigger.POLL, requested_at=stamp_request(svc.now())
        )
        return run_sync_request(svc, request).result

    assert [round_of(k) for k in keys] == ["failed", "failed"]
    for key in keys:
        record = svc.state.find_mailbox(key)
        assert record is not None
        assert (record.state, record.status.last_error_code) == (
            State.CREDENTIAL_INVALID,
            "7000215",
        )
    clock = [0.0]
    check = TokenCheck(svc.tokens.token, clock=lambda: clock[0])
    assert check.report([tenant]) == {tenant: {"ok": False, "aadsts": 7000215}}
    assert WRONG not in json.dumps(check.report([tenant]))

    sim.control.seed(secrets=[{"name": NAME, "value": RIGHT}])  # the operator fixes the vault
    assert check.report([tenant])[tenant]["ok"] is False  # within a minute: the cached answer
    for key in keys:  # ann is due for its poll; bo was polled a moment ago
        svc.state.update_status(key, next_poll=None if key == keys[0] else svc.now() + _MINUTE)
    counts = timers.run_poll(svc)
    states = [getattr(svc.state.find_mailbox(k), "state", None) for k in keys]
    assert states == [State.POLL_CHOSEN, State.POLL_CHOSEN], counts
    assert counts.get("restored") == 2, counts
    for key in keys:
        assert round_of(key).startswith("ok")  # the round it queued (or a later one) succeeds
        healed = svc.state.find_mailbox(key)
        assert healed is not None
        assert healed.health(svc.now()) == "ok (poll mode: poll mode chosen)"
    clock[0] = 61.0
    assert check.report([tenant]) == {tenant: {"ok": True}}
    for s in (svc, enroller):
        s.graph.close()
    vault.close()
    vault_login.close()
