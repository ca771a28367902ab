"""The expiry watch reads the app registration's own credentials where Application.Read.All
allows: the end of the secret in use counts (not another secret's), the test connection and
the status page say so; without the permission the watch says why it could not read them and
carries on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.compose import build_services
from shared.core.times import iso_utc
from shared.secrets import EnvSecrets
from shared.services.credential_watch import run_watch
from shared.services.diagnostics import run_test_connection
from shared.services.status_page import run_status_page
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "registration-secret-value-0123456789"
OTHER = "another-secret-value-9876543210"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=31) as handle:
        yield handle


def test_the_registrations_end_of_the_secret_in_use_counts(sim: SimHandle, azurite: str) -> None:
    """Key Vault tells no date here; the registration's date for the secret in use (not the
    other secret's, which ends sooner) makes the reading, in the watch and the test connection."""
    roles = ("Calendars.Read", "User.Read.All", "Application.Read.All")
    tenant, client, _ = seed_tenant(sim, secret=OTHER, names=["adele"], roles=roles)
    start = datetime.now(UTC)
    sim.control.add_app_secret(client, SECRET, iso_utc(start + timedelta(days=10, hours=2)))
    svc = build_services(
        app_settings(sim, azurite, tenant, client),
        secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}),
    )
    try:
        expiry = run_watch(svc)
        assert (expiry.level, expiry.days_left, expiry.threshold) == ("warning", 10, 14)
        assert "app registration's client secret ends on" in expiry.registration
        steps = {s.name: s for s in run_test_connection(svc, tenant).steps}
        assert steps["credential expiry"].status == "warning"
        assert "app registration's client secret ends on" in steps["credential expiry"].detail
        assert SECRET not in str(expiry.as_dict())
    finally:
        svc.graph.close()


def test_without_the_permission_the_watch_says_why_and_carries_on(
    sim: SimHandle, azurite: str
) -> None:
    """Calendars and users only: the reading is Key Vault's (here: unknown), the registration
    note names Application.Read.All; the test connection's step is not failed and the status
    page shows the note."""
    tenant, client, _ = seed_tenant(sim, secret=SECRET, names=["adele"])
    svc = build_services(
        app_settings(sim, azurite, tenant, client),
        secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}),
    )
    try:
        expiry = run_watch(svc)
        assert expiry.level == "unknown"
        assert "Application.Read.All is not granted" in expiry.registration
        steps = {s.name: s for s in run_test_connection(svc, tenant).steps}
        assert steps["credential expiry"].status == "ok"
        assert "Application.Read.All" in steps["credential expiry"].detail
        assert "Application.Read.All is not granted" in run_status_page(svc)
    finally:
        svc.graph.close()
