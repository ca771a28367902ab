"""Subscription writes paced per tenant across hosts, against the simulator and Azurite: three
hosts renewing at once share one budget in the `pacing` table and Graph's throttle never
answers 429; the same hosts pacing alone (each its own budget) are throttled. The simulator's
window is scaled down (60 writes per 4 s) and the hosts' budget with it (54 per 4 s)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.pacing_tables import PacingTable
from shared.adapters.storage import StorageClients
from shared.compose import Services, build_services
from shared.core.model import SubscriptionRecord
from shared.core.renewals import SlotBudget
from shared.names import PACING_TABLE
from shared.secrets import EnvSecrets
from shared.services import mailboxes
from shared.services.subscriptions import renew_one
from shared.services.write_budget import SharedPacer
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"
HOSTS, PER_HOST = 3, 40
SCALED = SlotBudget(limit=54, per=timedelta(seconds=4), slots_per_window=4, block=3)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=44) as handle:
        handle.control.knobs(subscription_writes_per_window=60, subscription_window_s=4.0)
        yield handle


def _hosts(
    sim: SimHandle, azurite: str, *, shared: bool
) -> tuple[list[Services], list[list[SubscriptionRecord]]]:
    """HOSTS services for one tenant (each its own clients and pacer), each with PER_HOST
    subscriptions of one poll-mode mailbox to renew."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["ana"])
    ((upn, user_id),) = users.items()
    settings = app_settings(sim, azurite, tenant, client)
    hosts: list[Services] = []
    for _ in range(HOSTS):
        svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
        table = PacingTable(StorageClients(settings.storage).table(PACING_TABLE))
        hosts.append(replace(svc, pacer=SharedPacer(table, SCALED) if shared else None))
    mailboxes.enrol(hosts[0], tenant, user_id, {"mode": "poll"})
    sim.control.bulk_subscriptions(upn, client, HOSTS * PER_HOST)
    subs = [
        SubscriptionRecord(
            s["id"],
            tenant,
            user_id,
            s["resource"],
            datetime.fromisoformat(s["expirationDateTime"].replace("Z", "+00:00")),
            "",
        )
        for s in sim.control.subscriptions()
        if user_id in s["resource"].lower() or upn in s["resource"]
    ]
    assert len(subs) == HOSTS * PER_HOST
    sim.control.reset_throttle()
    return hosts, [subs[i::HOSTS] for i in range(HOSTS)]


def _expiry(sub: dict[str, str]) -> datetime:
    return datetime.fromisoformat(sub["expirationDateTime"].replace("Z", "+00:00"))


def _renew_all(hosts: list[Services], work: list[list[SubscriptionRecord]]) -> list[str]:
    """Every host renews its share at once, retrying what its pacer deferred (as the next
    timer run would); the outcomes."""
    outcomes: list[str] = []
    lock = threading.Lock()

    def host(svc: Services, subs: list[SubscriptionRecord]) -> None:
        pending = list(subs)
        for _ in range(20):
            later = []
            for sub in pending:
                result, _ = renew_one(svc, sub, svc.now() + timedelta(days=6))
                if result == "deferred":
                    later.append(sub)
                else:
                    with lock:
                        outcomes.append(result)
            pending = later
            if not pending:
                return

    threads = [threading.Thread(target=host, args=(h, w)) for h, w in zip(hosts, work, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return outcomes


def _close(hosts: list[Services]) -> None:
    for svc in hosts:
        svc.graph.close()


def _throttled(sim: SimHandle) -> int:
    counts: dict[str, int] = sim.control.counters()["requests_by_endpoint_status"]
    return sum(
        n for k, n in counts.items() if k.startswith("subscriptions.") and k.endswith(" 429")
    )


@pytest.mark.slow
def test_hosts_sharing_the_budget_are_never_throttled(sim: SimHandle, azurite: str) -> None:
    """Three hosts renewing 120 subscriptions of one tenant at once: every one renewed, no
    429 from Graph's per-tenant write limit, and far fewer Table requests than writes."""
    hosts, work = _hosts(sim, azurite, shared=True)
    before = _throttled(sim)
    try:
        outcomes = _renew_all(hosts, work)
    finally:
        _close(hosts)
    assert outcomes.count("renewed") == HOSTS * PER_HOST
    assert _throttled(sim) == before
    rows = list(PacingTable(hosts[0].state._clients.table(PACING_TABLE)).table.list_entities())
    tenant_rows = [r for r in rows if r["PartitionKey"] == hosts[0].settings.tenant_ids[0]]
    assert all(int(r["used"]) <= SCALED.per_slot for r in tenant_rows)
    assert sum(int(r["used"]) for r in tenant_rows) >= HOSTS * PER_HOST


def test_hosts_pacing_alone_are_throttled(sim: SimHandle, azurite: str) -> None:
    """The control: the same three hosts, each pacing only itself, overrun the tenant's limit
    and Graph answers 429 (so the test above can fail)."""
    hosts, work = _hosts(sim, azurite, shared=False)
    before = _throttled(sim)
    try:
        _renew_all(hosts, work)
    finally:
        _close(hosts)
    assert _throttled(sim) > before


def test_a_slot_is_never_overdrawn_by_racing_hosts(azurite: str) -> None:
    """Eight threads reserving blocks in one slot at once get exactly the slot's tokens in all."""
    from shared.settings import StorageSettings

    clients = StorageClients(StorageSettings(connection_string=azurite))
    clients.tables.create_table_if_not_exists(PACING_TABLE)
    table = PacingTable(clients.table(PACING_TABLE))
    budget = SlotBudget(limit=450, block=4)
    got: list[int] = []
    lock = threading.Lock()

    def reserve() -> None:
        while True:
            n = table.reserve(
                "racing-tenant", 123456, lambda used: budget.grant(used, budget.block)
            )
            if n == 0:
                return
            with lock:
                got.append(n)

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(got) == budget.per_slot
    assert max(got) <= budget.block
