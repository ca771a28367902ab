"""The credential expiry watch on a simulated clock, against the simulator's Key Vault (the
secret's `exp` attribute) and Azurite: ok, then one WARNING a day from 30 days before, failed in
the test connection once expired, and the status row health shows (days left, no value)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.keyvault import KeyVaultSecrets
from shared.compose import Services, build_services
from shared.core.times import iso_utc
from shared.services.credential_watch import run_watch
from shared.services.diagnostics import run_test_connection
from shared.services.health import TokenCheck, run_health
from shared.services.status_page import run_status_page
from shared.settings import Settings

pytestmark = pytest.mark.integration
SECRET = "expiry-client-secret-value-0123456789"
START = datetime.now(UTC).replace(microsecond=0)
EXPIRES = START + timedelta(days=40)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=12) as handle:
        yield handle


@pytest.fixture(scope="module")  # one vault tenant: azure-keyvault caches its challenge per URL
def world(
    sim: SimHandle, azurite: str
) -> Iterator[tuple[Services, list[datetime], dict[str, str]]]:
    """Services whose clock the test moves, reading the secret from the simulator's vault."""
    tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
    sim.control.seed(
        tenants=[{"id": tenant, "domain": f"e{tenant[:8]}.example"}],
        apps=[{"client_id": client, "tenant": tenant, "secrets": [{"value": SECRET}]}],
        consents=[{"tenant": tenant, "client_id": client, "roles": ["Calendars.Read"]}],
        vault_tenant=tenant,
        secrets=[{"name": "graph-client-secret", "value": SECRET, "exp": iso_utc(EXPIRES)}],
    )
    env = {
        "TENANT_IDS": tenant,
        "CLIENT_ID": client,
        "GRAPH_BASE_URL": sim.graph_base_url,
        "AUTHORITY_HOST": sim.authority_host,
        "CA_BUNDLE": sim.ca_pem_path,
        "AzureWebJobsStorage": azurite,
    }
    credential = ClientSecretCredential(
        tenant,
        client,
        SECRET,
        authority=sim.authority_host,
        connection_verify=sim.ca_pem_path,
        disable_instance_discovery=True,
    )
    vault = SecretClient(sim.key_vault_url, credential, connection_verify=sim.ca_pem_path)
    now = [START]
    svc = build_services(
        Settings.from_env(env), secrets=KeyVaultSecrets(vault, ttl=0), clock=lambda: now[0]
    )
    yield svc, now, env
    assert svc.oplog is not None
    svc.oplog._table.delete_entity("status", f"credential_{client}")
    svc.graph.close()
    vault.close()
    credential.close()


def test_warnings_fire_at_30_14_7_and_1_days_once_a_day(
    world: tuple[Services, list[datetime], dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    """40 days left: ok, no warning; 29, 13, 6, 0: a warning each day, never twice a day; past
    the expiry: expired."""
    svc, now, _ = world
    seen = []
    for days_before, level, threshold in [
        (40, "ok", None),
        (29, "warning", 30),
        (29, "warning", 30),  # the same day again: no second WARNING
        (13, "warning", 14),
        (6, "warning", 7),
        (0.5, "warning", 1),
        (-1, "expired", 0),
    ]:
        now[0] = EXPIRES - timedelta(days=days_before)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="calsync.credentials"):
            expiry = run_watch(svc)
        assert (expiry.level, expiry.threshold) == (level, threshold)
        warnings = [r for r in caplog.records if "credential expiry" in r.getMessage()]
        seen.append(len(warnings))
        assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert seen == [0, 1, 0, 1, 1, 1, 1]


def test_health_and_test_connection_show_the_days_left(
    world: tuple[Services, list[datetime], dict[str, str]],
) -> None:
    """Health shows the watch's last reading (days left, date, no value) and is degraded near
    expiry; the test connection's `credential expiry` step warns, then fails once expired."""
    svc, now, env = world
    tenant = svc.settings.tenant_ids[0]
    now[0] = EXPIRES - timedelta(days=10, hours=1)
    run_watch(svc)
    report = run_health(env, token_check=lambda _s: TokenCheck(lambda _t: "token"))
    assert report.body["credentialExpiry"]["daysLeft"] == 10
    assert report.body["credentialExpiry"]["status"] == "warning"
    assert report.body["status"] == "degraded"
    assert SECRET not in str(report.body)
    assert "(10 day(s) left)" in run_status_page(svc)
    steps = {s.name: s for s in run_test_connection(svc, tenant).steps}
    assert steps["credential expiry"].status == "warning"
    assert "10 day(s) left" in steps["credential expiry"].detail
    now[0] = EXPIRES + timedelta(hours=1)
    steps = {s.name: s for s in run_test_connection(svc, tenant).steps}
    assert steps["credential expiry"].status == "failed"
    assert steps["credential expiry"].code == "credential_expired"
