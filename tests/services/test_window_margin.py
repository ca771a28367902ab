"""The window's margin through the services, against the simulator and Azurite: events in the
margin are mirrored but neither read nor on the feed; one entering the user's window (moved by
a change, or by the days passing and the daily roll's slide) reaches the feed as created, one
leaving it as deleted; the roll's slide costs no Graph request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.compose import Services, build_services
from shared.core.feed import ChangeEvent
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.secrets import EnvSecrets
from shared.services import mailboxes, reads
from shared.services.sync import run_sync_request
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=33) as handle:
        yield handle


World = tuple[Services, MailboxKey, str, list[datetime]]


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[World]:
    """A poll-mode mailbox whose user's window is today and the next 7 days (margin 7 days),
    on a clock the test moves (it starts at 01:00 UTC today)."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["mina"])
    ((upn, user_id),) = users.items()
    clock = [TODAY + timedelta(hours=1)]
    settings = app_settings(sim, azurite, tenant, client, WINDOW_MARGIN_DAYS="7")
    svc = build_services(
        settings,
        secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}),
        clock=lambda: clock[0],
    )
    key = MailboxKey(tenant, user_id)
    mailboxes.enrol(svc, tenant, user_id, {"mode": "poll", "weeksBack": 0, "weeksAhead": 1})
    assert _round(svc, key).startswith("ok")
    yield svc, key, upn, clock
    svc.graph.close()


def _round(svc: Services, key: MailboxKey, trigger: Trigger = Trigger.POLL) -> str:
    request = SyncRequest(
        key.tenant_id, key.user_id, trigger, requested_at=stamp_request(svc.now())
    )
    return run_sync_request(svc, request).result


def _feed(svc: Services, key: MailboxKey) -> list[tuple[str, str]]:
    assert svc.changes is not None
    found: list[ChangeEvent] = svc.changes.read_after(key, limit=1000)
    return [(c.event_id, c.type) for c in found]


def _slot(days: float) -> dict[str, dict[str, str]]:
    start = TODAY + timedelta(days=days, hours=10)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"},
    }


def _agenda_ids(svc: Services, key: MailboxKey, start_day: int, end_day: int) -> set[str]:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    answer: dict[str, Any] = reads.agenda(
        svc,
        key.tenant_id,
        key.user_id,
        (TODAY + timedelta(days=start_day)).strftime(fmt),
        (TODAY + timedelta(days=end_day)).strftime(fmt),
    )
    return {item["id"] for item in answer["value"]}


def _graph_requests(sim: SimHandle) -> int:
    counts: dict[str, int] = sim.control.counters()["requests_by_endpoint_status"]
    return sum(n for k, n in counts.items() if not k.startswith("entra."))


def test_the_margin_is_mirrored_but_neither_read_nor_on_the_feed(
    sim: SimHandle, world: World
) -> None:
    """An event 10 days ahead (in the margin) is in the mirror, not in the agenda, not on the
    feed; one 2 days ahead is in all three."""
    svc, key, upn, _ = world
    near = sim.control.create_event(upn, {"subject": "near", **_slot(2)})["id"]
    far = sim.control.create_event(upn, {"subject": "far", **_slot(10)})["id"]
    assert _round(svc, key).startswith("ok")
    assert set(svc.state.stored_versions(key)) >= {near, far}
    assert _feed(svc, key) == [(near, "created")]
    assert _agenda_ids(svc, key, 0, 14) == {near}


def test_changes_across_the_users_window_edge_are_created_and_deleted(
    sim: SimHandle, world: World
) -> None:
    """Moved from the margin into the user's window an event is created on the feed; moved back
    out, deleted; changed or deleted while in the margin, nothing."""
    svc, key, upn, _ = world
    eid = sim.control.create_event(upn, {"subject": "moves", **_slot(12)})["id"]
    assert _round(svc, key).startswith("ok")
    sim.control.update_event(upn, eid, _slot(3))
    assert _round(svc, key).startswith("ok")
    sim.control.update_event(upn, eid, _slot(11))
    assert _round(svc, key).startswith("ok")
    sim.control.update_event(upn, eid, {"subject": "moved again"})
    assert _round(svc, key).startswith("ok")
    sim.control.delete_event(upn, eid)
    assert _round(svc, key).startswith("ok")
    assert _feed(svc, key) == [(eid, "created"), (eid, "deleted")]
    assert eid not in svc.state.stored_versions(key)


def test_the_daily_slide_shows_what_the_days_bring_in_and_hides_what_they_take_out(
    sim: SimHandle, world: World
) -> None:
    """Three days later the roll makes no Graph request: the event 9 days ahead entered the
    user's window (created, with its event) and the one of tomorrow left it (deleted); the
    agenda follows; a second roll changes nothing."""
    svc, key, upn, clock = world
    leaving = sim.control.create_event(upn, {"subject": "tomorrow", **_slot(1)})["id"]
    entering = sim.control.create_event(upn, {"subject": "in 9 days", **_slot(9)})["id"]
    assert _round(svc, key).startswith("ok")
    assert _feed(svc, key) == [(leaving, "created")]
    clock[0] += timedelta(days=3)
    before = _graph_requests(sim)
    assert _round(svc, key, Trigger.ROLL) == "slid"
    assert _graph_requests(sim) == before
    assert _feed(svc, key) == [(leaving, "created"), (entering, "created"), (leaving, "deleted")]
    assert svc.changes is not None
    created = [c for c in svc.changes.read_after(key, limit=10) if c.event_id == entering]
    assert created[0].event is not None
    assert created[0].event["subject"] == "in 9 days"
    assert _agenda_ids(svc, key, -3, 14) == {entering}
    listed = mailboxes.events(svc, key.tenant_id, key.user_id, None, None)["value"]
    assert {e["event_id"] for e in listed} == {entering}
    assert _round(svc, key, Trigger.ROLL) == "slid"
    assert len(_feed(svc, key)) == 3


def test_a_row_mirrored_before_the_margin_still_leaves_the_feed(
    sim: SimHandle, world: World
) -> None:
    """A row without the `hidden` property (mirrored before the margin existed) that the days
    take out of the user's window is deleted on the feed by the slide."""
    from azure.data.tables import UpdateMode

    from shared.core.keys import encode_key

    svc, key, upn, clock = world
    old = sim.control.create_event(upn, {"subject": "old row", **_slot(1)})["id"]
    assert _round(svc, key).startswith("ok")
    row = dict(svc.state.events.get_entity(key.partition, encode_key(old)))
    del row["hidden"]
    svc.state.events.upsert_entity(row, mode=UpdateMode.REPLACE)
    clock[0] += timedelta(days=2)
    assert _round(svc, key, Trigger.ROLL) == "slid"
    assert _feed(svc, key) == [(old, "created"), (old, "deleted")]


def test_the_icaluid_lookup_shows_the_users_window_only(sim: SimHandle, world: World) -> None:
    """GET /api/events?iCalUId= finds an event in the margin only once the days bring it into
    the user's window."""
    from shared.services import icaluid_index

    svc, key, upn, clock = world
    eid = sim.control.create_event(upn, {"subject": "later", **_slot(9)})["id"]
    assert _round(svc, key).startswith("ok")
    row = svc.state.list_events(key, columns=("event_id", "ical_uid"))
    (uid,) = [r["ical_uid"] for r in row if r["event_id"] == eid]
    assert icaluid_index.find(svc, key.tenant_id, uid)["count"] == 0
    clock[0] += timedelta(days=3)
    assert _round(svc, key, Trigger.ROLL) == "slid"
    assert icaluid_index.find(svc, key.tenant_id, uid)["count"] == 1
