"""Subscription writes paced per tenant across hosts, against the simulator and Azurite: three
hosts renewing at once share one budget in the `pacing` table and Graph's throttle never
answers 429; the same hosts pacing alone (each its own budget) are throttled; the renewal
timer's run renews several at once within that budget, and one renewal's failure leaves the
others renewed. The simulator's window is scaled down (60 writes per 4 s) and the hosts'
budget with it (54 per 4 s)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import httpx
import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.graph_httpx import GraphClient
from shared.adapters.pacing_tables import PacingTable
from shared.adapters.storage import StorageClients
from shared.compose import Services, build_services
from shared.core.model import SubscriptionRecord
from shared.core.renewals import SlotBudget
from shared.names import PACING_TABLE
from shared.secrets import EnvSecrets
from shared.services import mailboxes
from shared.services.subscriptions import RENEWAL_WORKERS, renew_due, renew_one
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


class InFlight(httpx.BaseTransport):
    """The real transport, counting the PATCHes in flight at once (the most seen)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.now, self.most = inner, 0, 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        counted = request.method == "PATCH"
        if counted:
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
        try:
            response = self.inner.handle_request(request)
            response.read()
            return response
        finally:
            if counted:
                with self._lock:
                    self.now -= 1

    def close(self) -> None:
        self.inner.close()


def _counted(svc: Services, sim: SimHandle) -> tuple[Services, InFlight]:
    """`svc` with its Graph client over a transport that counts PATCHes in flight."""
    transport = InFlight(httpx.HTTPTransport(verify=sim.ssl_context()))
    http = httpx.Client(transport=transport, timeout=30.0)
    graph = GraphClient(http, svc.settings.graph_base_url, svc.tokens, clock=svc.now)
    return replace(svc, graph=graph), transport


def _due(svc: Services, subs: list[SubscriptionRecord]) -> list[SubscriptionRecord]:
    """`subs` on record as a PUT leaves them, expiring within the renewal window (a day)."""
    due = [replace(s, expiration=svc.now() + timedelta(days=1)) for s in subs]
    for sub in due:
        svc.state.put_subscription(sub)
    return due


@pytest.mark.slow
def test_a_renewal_run_renews_several_at_once_within_the_shared_budget(
    sim: SimHandle, azurite: str
) -> None:
    """One host's renewal run (its pool of workers) and another host renewing at the same time:
    several PATCHes in flight at once, every subscription renewed, no 429, no slot overdrawn."""
    hosts, work = _hosts(sim, azurite, shared=True)
    timer, transport = _counted(hosts[0], sim)
    due = _due(timer, work[0] + work[1])
    before = _throttled(sim)
    other: list[str] = []
    try:
        beside = threading.Thread(target=lambda: other.extend(_renew_all([hosts[2]], [work[2]])))
        beside.start()
        counts = renew_due(timer)
        beside.join(timeout=180)
    finally:
        _close(hosts)
        timer.graph.close()
    assert counts == {"renewed": len(due), "recreated": 0, "failed": 0, "deferred": 0}
    assert other.count("renewed") == PER_HOST
    assert 1 < transport.most <= RENEWAL_WORKERS
    assert _throttled(sim) == before
    for sub in due:
        record = timer.state.get_subscription(sub.tenant_id, sub.subscription_id)
        assert record is not None
        assert record.expiration > timer.now() + timedelta(days=5)
    rows = list(PacingTable(timer.state._clients.table(PACING_TABLE)).table.list_entities())
    tenant_rows = [r for r in rows if r["PartitionKey"] == timer.settings.tenant_ids[0]]
    assert all(int(r["used"]) <= SCALED.per_slot for r in tenant_rows)


def test_one_failed_renewal_leaves_the_others_renewed(sim: SimHandle, azurite: str) -> None:
    """Graph failing one subscription's PATCH (500, every retry) fails that renewal alone: the
    run's other workers renew every other one."""
    hosts, work = _hosts(sim, azurite, shared=True)
    svc = hosts[0]
    due = _due(svc, work[0])
    broken = due[len(due) // 2]
    sim.control.fault(500, 50, method="PATCH", path_contains=broken.subscription_id)
    try:
        counts = renew_due(svc)
    finally:
        sim.control.clear_faults()
        _close(hosts)
    assert counts == {"renewed": len(due) - 1, "recreated": 0, "failed": 1, "deferred": 0}
    kept = svc.state.get_subscription(broken.tenant_id, broken.subscription_id)
    assert kept is not None
    assert kept.expiration == broken.expiration


def test_one_host_gets_every_block_of_a_slot(azurite: str) -> None:
    """A host alone draws a slot's every token (three blocks of 25: 75), not one block a slot,
    then none from it: at 450 per 20 s one host may renew 15 a second, not 5."""
    from datetime import UTC

    from shared.settings import StorageSettings

    clients = StorageClients(StorageSettings(connection_string=azurite))
    clients.tables.create_table_if_not_exists(PACING_TABLE)
    budget = SlotBudget()
    pacer = SharedPacer(PacingTable(clients.table(PACING_TABLE)), budget)
    tenant = f"lone-host-{datetime.now(UTC).timestamp()}"
    start = datetime.fromtimestamp(budget.slot_start(budget.slot_of(datetime.now(UTC)) + 1), UTC)
    waits = []
    while (wait := pacer.delay(tenant, start, max_wait=0.0)) is not None:
        waits.append(wait)
    assert budget.per_slot == 75
    assert waits == [0.0] * budget.per_slot
