"""The `calendar-changes` queue as a delivery target of the change feed, against the simulator
and Azurite: each change of the log published, pages in order, at least once across a crash
between any two steps, and a queue outage holding up neither the mirror nor the webhooks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.storage import StorageClients
from shared.compose import Services, build_services
from shared.core.feed import ChangeEvent
from shared.core.model import DeltaItem, MailboxKey, SyncRequest, Trigger
from shared.core.reconcile import plan_page
from shared.core.rounds import stamp_request
from shared.errors import StateConflict
from shared.names import CHANGES_QUEUE
from shared.secrets import EnvSecrets
from shared.services import delivery, feed, mailboxes, publish, webhooks
from shared.services.sync import run_sync_request
from tests.receiver import Receiver, run_receiver
from tests.services.simworld import app_settings, seed_tenant
from tests.services.test_webhooks import Clock, drain

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=41) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, MailboxKey, str, Clock]]:
    """A fresh tenant with one poll-mode mailbox after its first round, its work items run."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["ines"])
    ((upn, user_id),) = users.items()
    settings = app_settings(
        sim,
        azurite,
        tenant,
        client,
        WEBHOOK_TIMEOUT_SECONDS="2",
        WEBHOOK_ALLOW_HTTP_LOOPBACK="true",
    )
    clock = Clock()
    svc = build_services(
        settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}), clock=clock
    )
    key = MailboxKey(tenant, user_id)
    mailboxes.enrol(svc, tenant, user_id, {"mode": "poll"})
    assert _round(svc, key).startswith("ok")
    drain(svc)
    yield svc, key, upn, clock
    for sub in webhooks.list_all(svc):
        webhooks.remove(svc, sub["id"])
    svc.graph.close()


def _round(svc: Services, key: MailboxKey) -> str:
    request = SyncRequest(
        key.tenant_id, key.user_id, Trigger.POLL, requested_at=stamp_request(svc.now())
    )
    return run_sync_request(svc, request).result


def _feed(svc: Services, key: MailboxKey) -> list[ChangeEvent]:
    assert svc.changes is not None
    return svc.changes.read_after(key, limit=1000)


def _published(svc: Services, key: MailboxKey) -> list[dict[str, Any]]:
    """The `calendar-changes` messages of this mailbox, in the order the queue hands them out
    (every message of other mailboxes is taken off too)."""
    queue = StorageClients(svc.settings.storage).queue(CHANGES_QUEUE)
    found: list[dict[str, Any]] = []
    while True:
        batch = list(queue.receive_messages(messages_per_page=32, visibility_timeout=30))
        if not batch:
            return [m for m in found if m["mailboxId"] == key.user_id]
        for message in batch:
            found.append(json.loads(message.content))
            queue.delete_message(message)


def _start(days: int) -> str:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=days)
    return start.strftime("%Y-%m-%dT%H:%M:%S")


def test_each_change_is_published_once_pages_in_order(
    world: tuple[Services, MailboxKey, str, Clock], sim: SimHandle
) -> None:
    """A round of more changes than a page: every change of the log is on the queue once, with
    its id, and every message of the second page comes after every one of the first; the
    pair's cursor ends at the mailbox's last sequence."""
    svc, key, upn, _ = world
    _published(svc, key)
    count = publish.PAGE + 30
    sim.control.bulk_events(upn, count, _start(2), step_minutes=30)
    assert _round(svc, key).startswith("ok")
    assert "done" in drain(svc, queue_target=True)
    got = _published(svc, key)
    feed = _feed(svc, key)[-count:]
    assert sorted(m["id"] for m in got) == sorted(c.change_id for c in feed)
    assert len(got) == count
    first_page = {c.change_id for c in feed[: publish.PAGE]}
    pages = [0 if m["id"] in first_page else 1 for m in got]
    assert pages == sorted(pages)
    assert svc.webhooks is not None
    cursor = svc.webhooks.cursor(publish.QUEUE_TARGET.id, key.partition)
    assert cursor.delivered == feed[-1].sequence


def test_a_crash_right_after_the_write_is_published_by_the_sweep(
    world: tuple[Services, MailboxKey, str, Clock], sim: SimHandle
) -> None:
    """A write whose host died after its transaction (no work item queued) is on the feed at
    once, and the delivery sweep gets it onto the queue."""
    svc, key, upn, _ = world
    _published(svc, key)
    event = sim.control.create_event(
        upn,
        {
            "subject": "Written, host died",
            "start": {"dateTime": _start(3), "timeZone": "UTC"},
            "end": {"dateTime": _start(4), "timeZone": "UTC"},
        },
    )
    [graph_shape] = [e for e in sim.control.list_events(upn) if e["id"] == event["id"]]
    mailbox = svc.state.get_mailbox(key)
    plan = plan_page([DeltaItem(event["id"], graph_shape)], {}, mailbox.options)
    [change] = svc.state.apply_changes(key, plan.upserts, plan.changes, at=svc.now())
    assert [c.change_id for c in _feed(svc, key)][-1] == change.change_id
    assert drain(svc, queue_target=True) == []
    assert delivery.run_sweep(svc)["publish"] >= 1
    assert "done" in drain(svc, queue_target=True)
    assert [m["id"] for m in _published(svc, key)] == [change.change_id]


def test_a_crash_before_the_cursor_moved_publishes_the_page_again(
    world: tuple[Services, MailboxKey, str, Clock], sim: SimHandle
) -> None:
    """Sent but the cursor not yet moved (the host died between the two): the next work item
    sends the same changes again with the same ids (at least once), then nothing more."""
    svc, key, upn, _ = world
    assert svc.webhooks is not None
    _published(svc, key)
    before = svc.webhooks.cursor(publish.QUEUE_TARGET.id, key.partition)
    sim.control.bulk_events(upn, 3, _start(5), step_minutes=30)
    assert _round(svc, key).startswith("ok")
    drain(svc)
    first = [m["id"] for m in _published(svc, key)]
    assert len(first) == 3
    after = svc.webhooks.cursor(publish.QUEUE_TARGET.id, key.partition)
    svc.webhooks.save_cursor(replace(after, delivered=before.delivered))  # as the crash left it
    assert delivery.run_sweep(svc)["publish"] >= 1
    drain(svc)
    assert sorted(m["id"] for m in _published(svc, key)) == sorted(first)
    delivery.run_sweep(svc)
    drain(svc)
    assert _published(svc, key) == []


@pytest.fixture
def receiver(sim: SimHandle) -> Iterator[Receiver]:
    with run_receiver(cert=(sim.host_cert_path, sim.host_key_path)) as r:
        yield r


def test_a_queue_outage_holds_up_neither_the_mirror_nor_the_webhooks(
    world: tuple[Services, MailboxKey, str, Clock], sim: SimHandle, receiver: Receiver
) -> None:
    """With `calendar-changes` gone, the round still mirrors and a webhook subscriber still
    gets the change; the publisher retries on its cursor (the error kept there) and, once the
    queue is back and the retry due, publishes the change."""
    svc, key, upn, clock = world
    assert svc.webhooks is not None
    created = webhooks.add(svc, {"url": receiver.url, "filter": {"mailboxes": [key.user_id]}})
    queue = StorageClients(svc.settings.storage).queue(CHANGES_QUEUE)
    _published(svc, key)
    queue.delete_queue()
    try:
        event = sim.control.create_event(
            upn,
            {
                "subject": "Queue is down",
                "start": {"dateTime": _start(6), "timeZone": "UTC"},
                "end": {"dateTime": _start(7), "timeZone": "UTC"},
            },
        )
        assert _round(svc, key).startswith("ok")
        assert event["id"] in svc.state.stored_versions(key, [event["id"]])
        outcomes = drain(svc, queue_target=True)
        assert "retry" in outcomes
        [body] = receiver.verified(created["secret"])
        assert body["eventId"] == event["id"]
        cursor = svc.webhooks.cursor(publish.QUEUE_TARGET.id, key.partition)
        assert cursor.attempt == 1
        assert "could not queue change" in cursor.last_error
        assert cursor.next_at is not None
    finally:
        queue.create_queue()
    clock.offset += timedelta(seconds=publish.RETRY_CAP + 10)
    assert delivery.run_sweep(svc)["publish"] >= 1
    drain(svc)
    assert [m["eventId"] for m in _published(svc, key)] == [event["id"]]
    cursor = svc.webhooks.cursor(publish.QUEUE_TARGET.id, key.partition)
    assert (cursor.attempt, cursor.last_error) == (0, "")


def _hour_count(svc: Services) -> int:
    """The status chart's count of the current hour (every tenant)."""
    return feed.hourly_counts(svc, hours=1)[-1][1]


def test_published_changes_are_counted_with_the_cursor_move(
    world: tuple[Services, MailboxKey, str, Clock], sim: SimHandle
) -> None:
    """Each published change adds one to the chart's hour, in the transaction that moves the
    queue's cursor past it: a cursor save that fails (another host moved it) counts nothing,
    so a crash can neither lose a page's count nor, published again, count it twice."""
    svc, key, upn, _ = world
    assert svc.webhooks is not None
    before = _hour_count(svc)
    sim.control.bulk_events(upn, 3, _start(8), step_minutes=30)
    assert _round(svc, key).startswith("ok")
    drain(svc)
    assert len(_published(svc, key)) == 3
    assert _hour_count(svc) == before + 3
    cursor = svc.webhooks.cursor(publish.QUEUE_TARGET.id, key.partition)
    svc.webhooks.save_cursor(replace(cursor, attempt=0))  # another host's save: ETag moves
    hour = svc.now().replace(minute=0, second=0, microsecond=0)
    with pytest.raises(StateConflict):
        svc.webhooks.save_cursor(replace(cursor, delivered=9), counts={(key.tenant_id, hour): 5})
    assert _hour_count(svc) == before + 3
    assert svc.webhooks.cursor(publish.QUEUE_TARGET.id, key.partition).delivered != 9


def test_pairs_of_one_tenant_counting_one_hour_at_once_lose_no_count(
    world: tuple[Services, MailboxKey, str, Clock],
) -> None:
    """Three pairs of one tenant save their cursors with counts for the same hour side by
    side (each count row change makes the others read it again): the hour holds every one,
    and the pair listing shows no count row."""
    svc, key, _, _ = world
    store = svc.webhooks
    assert store is not None
    before = _hour_count(svc)
    hour = svc.now().replace(minute=0, second=0, microsecond=0)
    partitions = [f"{key.tenant_id}_{uuid.uuid4()}" for _ in range(3)]

    def pair(partition: str) -> None:
        cursor = store.cursor(publish.QUEUE_TARGET.id, partition)
        for n in range(4):
            cursor = store.save_cursor(
                replace(cursor, delivered=n), counts={(key.tenant_id, hour): 2}
            )

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(pair, partitions))
    assert _hour_count(svc) == before + 3 * 4 * 2
    listed = {c.partition for c in store.cursors_of(publish.QUEUE_TARGET.id)}
    assert set(partitions) <= listed
    assert not any(p.startswith("~") for p in listed)


def test_the_retention_prune_takes_the_counts_of_hours_past_it(
    world: tuple[Services, MailboxKey, str, Clock],
) -> None:
    """The daily prune deletes the chart's counts of hours older than CHANGES_RETENTION_DAYS
    and keeps the recent ones (the chart shows a day; the rows would otherwise pile up)."""
    svc, key, _, _ = world
    store = svc.webhooks
    assert store is not None
    now = svc.now().replace(minute=0, second=0, microsecond=0)
    old = now - timedelta(days=svc.settings.changes_retention_days + 2)
    cursor = store.cursor(publish.QUEUE_TARGET.id, f"{key.tenant_id}_{uuid.uuid4()}")
    store.save_cursor(replace(cursor, delivered=1), counts={(key.tenant_id, old): 3})
    cursor = store.cursor(publish.QUEUE_TARGET.id, cursor.partition)
    store.save_cursor(replace(cursor, delivered=2), counts={(key.tenant_id, now): 4})
    hour = timedelta(hours=1)
    assert store.counts(publish.QUEUE_TARGET.id, old, old + hour)[old] >= 3
    recent = store.counts(publish.QUEUE_TARGET.id, now, now + hour)[now]
    feed.run_prune(svc)
    assert store.counts(publish.QUEUE_TARGET.id, old, old + hour) == {}
    assert store.counts(publish.QUEUE_TARGET.id, now, now + hour)[now] == recent
