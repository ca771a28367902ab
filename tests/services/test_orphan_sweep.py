"""The orphan check pages Graph's subscription list within its list limit, against the
simulator and Azurite: one run reads at most ORPHAN_PAGES_PER_RUN pages per tenant and the next
run goes on from the stored position; a 429 ends a run's paging at that page, which the next
run asks for again. The simulator's list pages are scaled down to 2 subscriptions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.pacing_tables import PacingTable
from shared.compose import Services, build_services
from shared.core.model import SubscriptionRecord
from shared.names import PACING_TABLE
from shared.secrets import EnvSecrets
from shared.services.subscriptions import ORPHAN_PAGES_PER_RUN, _delete_graph_orphans
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"
PUBLIC = "https://calsync.example"
PAGE = 2
KNOWN = 2 * ORPHAN_PAGES_PER_RUN * PAGE  # two runs' worth of pages of subscriptions on record


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=45) as handle:
        handle.control.knobs(subscription_list_page_size=PAGE)
        yield handle


def _world(sim: SimHandle, azurite: str) -> tuple[Services, str]:
    """A tenant whose app holds KNOWN subscriptions on record (one mailbox's), then one orphan
    (a subscription to our URL for a user not enrolled), last in Graph's list."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["ana", "stray"])
    (ana, ana_id), (stray, _) = users.items()
    settings = app_settings(sim, azurite, tenant, client, PUBLIC_BASE_URL=PUBLIC)
    svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
    sim.control.bulk_subscriptions(ana, client, KNOWN)
    for s in sim.control.subscriptions():
        if ana_id in s["resource"].lower() or ana in s["resource"]:
            expiry = datetime.fromisoformat(s["expirationDateTime"].replace("Z", "+00:00"))
            svc.state.put_subscription(
                SubscriptionRecord(s["id"], tenant, ana_id, s["resource"], expiry, "")
            )
    url = f"{PUBLIC}/api/notifications"
    ((orphan,),) = sim.control.seed_subscriptions([stray], client, notification_url=url).values()
    return svc, orphan


def _lists(sim: SimHandle, status: int) -> int:
    counts: dict[str, int] = sim.control.counters()["requests_by_endpoint_status"]
    return counts.get(f"subscriptions.list {status}", 0)


def _live(sim: SimHandle) -> set[str]:
    return {s["id"] for s in sim.control.subscriptions()}


def test_the_sweep_reads_a_few_pages_a_run_and_goes_on_where_it_stopped(
    sim: SimHandle, azurite: str
) -> None:
    """41 subscriptions in pages of 2 (21 pages), runs 21 s apart on Graph's clock: each run
    lists at most 10 pages (no 429 under Graph's 25 per 20 s), the first stops at the 11th
    page's link, and the orphan (wherever Graph's order puts it) is deleted within three runs,
    exactly once."""
    svc, orphan = _world(sim, azurite)
    sim.control.reset_throttle()
    table = PacingTable(svc.state._clients.table(PACING_TABLE))
    tenant = svc.settings.tenant_ids[0]
    per_run, positions, deleted = [], [], 0
    try:
        for _ in range(3):
            before = _lists(sim, 200)
            deleted += _delete_graph_orphans(svc, set())
            per_run.append(_lists(sim, 200) - before)
            positions.append(table.sweep_position(tenant))
            sim.control.advance(21)  # the timer's runs are 15 minutes apart
    finally:
        svc.graph.close()
    assert per_run[0] == ORPHAN_PAGES_PER_RUN
    assert max(per_run) == ORPHAN_PAGES_PER_RUN
    assert sum(per_run) >= 21
    assert positions[0].endswith(f"$skiptoken={ORPHAN_PAGES_PER_RUN * PAGE}")
    assert deleted == 1
    assert orphan not in _live(sim)
    assert _lists(sim, 429) == 0


def test_the_sweep_starts_again_after_the_last_page(sim: SimHandle, azurite: str) -> None:
    """A run that reaches the list's end leaves no position: the next one lists from the start
    (runs 21 s apart on Graph's clock, as the 15-minute timer's are)."""
    svc, _ = _world(sim, azurite)
    sim.control.reset_throttle()
    table = PacingTable(svc.state._clients.table(PACING_TABLE))
    tenant = svc.settings.tenant_ids[0]
    positions = []
    try:
        for _ in range(4):
            _delete_graph_orphans(svc, set())
            positions.append(table.sweep_position(tenant))
            sim.control.advance(21)
    finally:
        svc.graph.close()
    step = ORPHAN_PAGES_PER_RUN * PAGE
    assert "" in positions[1:3]
    assert positions[positions.index("", 1) + 1].endswith(f"$skiptoken={step}")


def test_a_throttled_page_is_where_the_next_run_begins(sim: SimHandle, azurite: str) -> None:
    """Graph allowing 3 list requests per 20 s: the run's fourth page is answered 429 and the
    run stops there; the next run, once the window has passed, asks for that page again."""
    svc, _ = _world(sim, azurite)
    table = PacingTable(svc.state._clients.table(PACING_TABLE))
    tenant = svc.settings.tenant_ids[0]
    sim.control.knobs(subscription_list_per_window=3)
    sim.control.reset_throttle()
    throttled = _lists(sim, 429)
    try:
        _delete_graph_orphans(svc, set())
        first = table.sweep_position(tenant)
        assert _lists(sim, 429) == throttled + 1
        sim.control.advance(21)
        _delete_graph_orphans(svc, set())
        second = table.sweep_position(tenant)
    finally:
        sim.control.knobs(subscription_list_per_window=25)
        svc.graph.close()
    assert first.endswith(f"$skiptoken={3 * PAGE}")
    assert second.endswith(f"$skiptoken={6 * PAGE}")
