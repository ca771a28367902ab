"""The change feed as the services make it, against the simulator and Azurite: one change event
per mirror change, written with the change itself (those rows are the feed), published to the
`calendar-changes` queue, with stable ids, changed fields and the mailbox's reference."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.change_rows import change_entity, queue_message
from shared.adapters.storage import StorageClients
from shared.adapters.tables import LOG_PREFIX, TableState
from shared.compose import Services, build_services
from shared.core.feed import ChangeEvent, format_sequence
from shared.core.model import DeltaItem, MailboxKey, SyncRequest, Trigger
from shared.core.reconcile import plan_page
from shared.core.rounds import stamp_request
from shared.errors import NotFoundError
from shared.names import CHANGES_TABLE
from shared.secrets import EnvSecrets
from shared.services import feed, mailboxes, mirror
from shared.services.sync import run_sync_request
from tests.services.simworld import app_settings, seed_tenant
from tests.services.tablewatch import TableCounter, diff
from tests.services.test_webhooks import drain

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=21) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, MailboxKey, str]]:
    """A fresh tenant with one poll-mode mailbox (reference "tech-7") and its first round."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["ravi"])
    ((upn, user_id),) = users.items()
    settings = app_settings(sim, azurite, tenant, client)
    svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
    key = MailboxKey(tenant, user_id)
    mailboxes.enrol(svc, tenant, user_id, {"mode": "poll", "reference": "tech-7"})
    assert _round(svc, key).startswith("ok")
    yield svc, key, upn
    svc.graph.close()


def _round(svc: Services, key: MailboxKey, *, full: bool = False) -> str:
    request = SyncRequest(
        key.tenant_id, key.user_id, Trigger.POLL, full=full, requested_at=stamp_request(svc.now())
    )
    return run_sync_request(svc, request).result


def _feed(svc: Services, key: MailboxKey) -> list[ChangeEvent]:
    assert svc.changes is not None
    return svc.changes.read_after(key, limit=1000)


def _slot(days: int = 2, minutes: int = 30) -> dict[str, dict[str, str]]:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=days)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=minutes)).strftime(fmt), "timeZone": "UTC"},
    }


def test_create_update_delete_each_make_one_change_in_order(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """Created, updated (changedFields names the subject) and deleted reach the feed once each,
    in sequence order, with the event's JSON, its changeKey and the mailbox's reference."""
    svc, key, upn = world
    event_id = sim.control.create_event(upn, {"subject": "Boiler check", **_slot()})["id"]
    assert _round(svc, key).startswith("ok")
    sim.control.update_event(upn, event_id, {"subject": "Boiler check (moved)"})
    assert _round(svc, key).startswith("ok")
    sim.control.delete_event(upn, event_id)
    assert _round(svc, key).startswith("ok")
    changes = [c for c in _feed(svc, key) if c.event_id == event_id]
    assert [c.type for c in changes] == ["created", "updated", "deleted"]
    assert [c.sequence for c in changes] == sorted(c.sequence for c in changes)
    created, updated, deleted = changes
    assert created.event is not None
    assert created.event["subject"] == "Boiler check"
    assert created.event["start"].endswith("Z")
    assert created.event["timeZone"]
    assert updated.changed_fields is not None
    assert "subject" in updated.changed_fields
    assert "start" not in updated.changed_fields
    assert updated.change_key
    assert updated.change_key != created.change_key
    assert deleted.event is None
    assert deleted.change_key == updated.change_key
    assert {c.mailbox_ref for c in changes} == {"tech-7"}
    assert len({c.change_id for c in changes}) == 3


def test_a_replayed_full_round_adds_no_change(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A full resync of an unchanged mailbox plans nothing: the feed stays as it was."""
    svc, key, upn = world
    sim.control.create_event(upn, {"subject": "Stays", **_slot(3)})
    assert _round(svc, key).startswith("ok")
    before = [c.change_id for c in _feed(svc, key)]
    assert _round(svc, key, full=True).startswith("ok")
    assert [c.change_id for c in _feed(svc, key)] == before


def test_a_change_written_is_on_the_feed_without_a_relay(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A write whose host died right after the transaction (nothing ran after it) is on the
    feed already: the change rows written with the mirror are the feed; the next round adds its
    own changes after it."""
    svc, key, upn = world
    event = sim.control.create_event(upn, {"subject": "Written, host died", **_slot(4)})
    mailbox = svc.state.get_mailbox(key)
    stored = svc.state.stored_versions(key, [event["id"]])
    plan = plan_page(
        [DeltaItem(event["id"], _graph_shape(sim, upn, event["id"]))], stored, mailbox.options
    )
    [written] = svc.state.apply_changes(
        key, plan.upserts, plan.changes, at=svc.now(), mailbox_ref="tech-7"
    )
    assert (_feed(svc, key)[-1].change_id, _feed(svc, key)[-1].sequence) == (
        written.change_id,
        written.sequence,
    )
    later = sim.control.create_event(upn, {"subject": "Next round", **_slot(4, 45)})
    assert _round(svc, key).startswith("ok")
    feed = _feed(svc, key)
    assert [c.type for c in feed if c.event_id == event["id"]] == ["created"]
    [after] = [c for c in feed if c.event_id == later["id"]]
    assert after.sequence == written.sequence + 1


def test_concurrent_writers_never_share_a_sequence(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """Four writers applying events to one mailbox at once (the ETag-guarded sequence row makes
    a writer that lost the race plan again): every change lands once, sequences unique and
    gapless, each event row beside exactly one change."""
    svc, key, upn = world
    mailbox = svc.state.get_mailbox(key)
    created = [
        sim.control.create_event(upn, {"subject": f"Raced {n}", **_slot(5, 10 + n)})
        for n in range(16)
    ]
    items = [DeltaItem(e["id"], _graph_shape(sim, upn, e["id"])) for e in created]

    def writer(share: list[DeltaItem]) -> None:
        for item in share:
            mirror.apply_items(svc, mailbox, [item])

    threads = [threading.Thread(target=writer, args=(items[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = {e["id"] for e in created}
    assert ids <= set(svc.state.stored_versions(key))
    feed = _feed(svc, key)
    mine = [c for c in feed if c.event_id in ids]
    assert sorted(c.event_id for c in mine) == sorted(ids)
    sequences = [c.sequence for c in feed]
    assert sequences == list(range(sequences[0], sequences[0] + len(feed)))


def test_the_calendar_changes_queue_carries_each_change(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """Every change is also a message on `calendar-changes` once its publisher's work item ran
    (services.publish), with its id and event."""
    svc, key, upn = world
    event_id = sim.control.create_event(upn, {"subject": "On the queue", **_slot(6)})["id"]
    assert _round(svc, key).startswith("ok")
    drain(svc)
    assert svc.changes is not None
    found: list[dict[str, Any]] = []
    queue = svc.changes._queue
    for _ in range(50):
        batch = list(queue.receive_messages(max_messages=32, visibility_timeout=1))
        if not batch:
            break
        for message in batch:
            found.append(json.loads(message.content))
            queue.delete_message(message)
    mine = [m for m in found if m["eventId"] == event_id]
    [change] = [c for c in _feed(svc, key) if c.event_id == event_id]
    assert [m["id"] for m in mine] == [change.change_id]
    assert mine[0]["event"]["subject"] == "On the queue"
    assert mine[0]["mailboxRef"] == "tech-7"


def test_private_exclude_never_mirrors_or_emits_private_events(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """With private "exclude", a private event is not mirrored and makes no change; an event
    that becomes private is deleted from the mirror and the feed says so."""
    svc, key, upn = world
    mailboxes.enrol(svc, key.tenant_id, key.user_id, {"private": "exclude"})
    assert _round(svc, key, full=True).startswith("ok")
    secret = sim.control.create_event(
        upn, {"subject": "Doctor", "sensitivity": "private", **_slot(7)}
    )
    public = sim.control.create_event(upn, {"subject": "Standup", **_slot(8)})
    assert _round(svc, key).startswith("ok")
    assert secret["id"] not in svc.state.stored_versions(key)
    assert secret["id"] not in {c.event_id for c in _feed(svc, key)}
    sim.control.update_event(upn, public["id"], {"sensitivity": "private"})
    assert _round(svc, key).startswith("ok")
    assert public["id"] not in svc.state.stored_versions(key)
    assert [c.type for c in _feed(svc, key) if c.event_id == public["id"]] == ["created", "deleted"]


def _graph_shape(sim: SimHandle, upn: str, event_id: str) -> dict[str, Any]:
    """The event as Graph's delta would give it (the simulator's own listing)."""
    [event] = [e for e in sim.control.list_events(upn) if e["id"] == event_id]
    return event


def test_a_series_with_an_exception_is_a_master_plus_instances(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A new series reaches the feed as its master (with the recurrence) and its occurrences,
    linked by seriesMasterId; an edited occurrence is an update of an exception and refreshes
    the master; deleting the series deletes the master and every instance."""
    svc, key, upn = world
    slot = _slot(2)
    recurrence = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {
            "type": "numbered",
            "startDate": slot["start"]["dateTime"][:10],
            "numberOfOccurrences": 4,
        },
    }
    master_id = sim.control.create_event(
        upn, {"subject": "Rota", "recurrence": recurrence, **slot}
    )["id"]
    assert _round(svc, key).startswith("ok")
    changes = _feed(svc, key)
    [master] = [c for c in changes if c.event_id == master_id]
    assert master.type == "created"
    assert master.event is not None
    assert master.event["type"] == "seriesMaster"
    assert master.event["recurrence"]["range"]["numberOfOccurrences"] == 4
    instances = [c for c in changes if c.series_master_id == master_id]
    assert len(instances) == 4
    assert {c.type for c in instances} == {"created"}
    target = sorted(instances, key=lambda c: str(c.event and c.event["start"]))[1].event_id
    sim.control.update_event(upn, target, {"subject": "Rota (swapped)"})
    assert _round(svc, key).startswith("ok")
    later = _feed(svc, key)[len(changes) :]
    [edited] = [c for c in later if c.event_id == target]
    assert edited.type == "updated"
    assert edited.event is not None
    assert edited.event["type"] == "exception"
    sim.control.delete_event(upn, master_id)
    assert _round(svc, key).startswith("ok")
    gone = {c.event_id for c in _feed(svc, key) if c.type == "deleted"}
    assert {master_id, *(c.event_id for c in instances)} <= gone
    assert master_id not in svc.state.stored_versions(key)


def test_a_two_megabyte_body_fits_its_change_and_its_queue_message(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """An event whose body is 2 MB still lands with its change event in one transaction: the
    mirror row and the change keep a shortened body marked truncated, and the queue message
    leaves the event out (eventOmitted) instead of failing the relay."""
    svc, key, upn = world
    made = sim.control.create_event(
        upn,
        {
            "subject": "Huge notes",
            "body": {"contentType": "text", "content": "x" * 2_000_000},
            **_slot(9),
        },
    )
    assert _round(svc, key).startswith("ok")
    [change] = [c for c in _feed(svc, key) if c.event_id == made["id"]]
    assert change.event is not None
    assert change.event["body"]["truncated"] is True
    assert 0 < len(change.event["body"]["content"]) < 2_000_000
    assert svc.changes is not None
    message = json.loads(queue_message(change))
    assert message["eventOmitted"] is True
    assert message["id"] == change.change_id


def test_rows_an_earlier_version_copied_to_the_changes_table_are_read_in_order(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """An upgraded mailbox whose older changes the earlier relay moved to the `changes` table
    (and cleared from the log) reads them first, then the log, gapless from any cursor."""
    svc, key, upn = world
    assert svc.changes is not None
    mailbox = svc.state.get_mailbox(key)
    created = [
        sim.control.create_event(upn, {"subject": f"Upgraded {n}", **_slot(8, 10 + n)})
        for n in range(3)
    ]
    for event in created:
        mirror.apply_items(
            svc, mailbox, [DeltaItem(event["id"], _graph_shape(sim, upn, event["id"]))]
        )
    feed = _feed(svc, key)
    moved = feed[-3:-1]
    for change in moved:  # what the earlier relay did: copy to `changes`, clear from the log
        svc.changes.table.upsert_entity(change_entity(change, format_sequence(change.sequence)))
        svc.state.events.delete_entity(key.partition, LOG_PREFIX + format_sequence(change.sequence))
    assert [c.change_id for c in _feed(svc, key)] == [c.change_id for c in feed]
    after = moved[0].sequence
    assert [c.sequence for c in svc.changes.read_after(key, after, limit=10)] == [
        after + 1,
        after + 2,
    ]
    assert svc.changes.latest(key) == feed[-1].sequence


def test_the_retention_prune_deletes_old_changes_from_the_log_and_the_old_copies(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """Changes older than CHANGES_RETENTION_DAYS go, whether in the log or copied to `changes`
    by an earlier version; newer ones and the mirror stay."""
    svc, key, upn = world
    assert svc.changes is not None
    mailbox = svc.state.get_mailbox(key)
    old_at = svc.now() - timedelta(days=svc.settings.changes_retention_days + 1)
    events = [
        sim.control.create_event(upn, {"subject": f"Kept {n}", **_slot(9, 10 + n)})
        for n in range(3)
    ]
    written: list[ChangeEvent] = []
    for n, event in enumerate(events):
        item = DeltaItem(event["id"], _graph_shape(sim, upn, event["id"]))
        plan = plan_page([item], {}, mailbox.options)
        at = old_at if n < 2 else svc.now()
        written += svc.state.apply_changes(key, plan.upserts, plan.changes, at=at)
    legacy = written[0]
    svc.changes.table.upsert_entity(change_entity(legacy, format_sequence(legacy.sequence)))
    svc.state.events.delete_entity(key.partition, LOG_PREFIX + format_sequence(legacy.sequence))
    assert feed.run_prune(svc) >= 2
    kept = {c.change_id for c in _feed(svc, key)}
    assert written[2].change_id in kept
    assert not kept & {written[0].change_id, written[1].change_id}
    assert {e["id"] for e in events} <= set(svc.state.stored_versions(key))


def test_a_writer_whose_remembered_sequence_went_stale_writes_on_without_a_conflict(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """Two hosts writing one mailbox in turn (each remembers the sequence row its last write
    left): the one whose memory another host made stale reads it again and writes, the
    sequences gapless across both."""
    svc, key, upn = world
    other = TableState(StorageClients(svc.settings.storage))
    mailbox = svc.state.get_mailbox(key)
    written: list[ChangeEvent] = []
    for n, state in enumerate([svc.state, other, svc.state, other, svc.state]):
        event = sim.control.create_event(upn, {"subject": f"Turn {n}", **_slot(10, 10 + n)})
        item = DeltaItem(event["id"], _graph_shape(sim, upn, event["id"]))
        plan = plan_page([item], {}, mailbox.options)
        written += state.apply_changes(key, plan.upserts, plan.changes, at=svc.now())
    numbers = [c.sequence for c in written]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    assert [c.sequence for c in _feed(svc, key)][-5:] == numbers


def test_a_mailbox_without_earlier_copies_asks_the_changes_table_once(
    sim: SimHandle, azurite: str
) -> None:
    """Reads of a mailbox that has no rows in the legacy `changes` table ask that table once
    (the first read that could need it); later reads at the end of the log and from before
    its first row ask the `events` partition only, and still read every change."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["kemi"])
    ((upn, user_id),) = users.items()
    with TableCounter(azurite) as counter:
        settings = app_settings(sim, counter.connection_string, tenant, client)
        svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
        key = MailboxKey(tenant, user_id)
        try:
            mailboxes.enrol(svc, tenant, user_id, {"mode": "poll"})
            mailbox = svc.state.get_mailbox(key)
            for n in range(3):
                event = sim.control.create_event(upn, {"subject": f"Read {n}", **_slot(6, n)})
                item = DeltaItem(event["id"], _graph_shape(sim, upn, event["id"]))
                mirror.apply_items(svc, mailbox, [item])
        finally:
            svc.graph.close()
        assert svc.changes is not None
        last = svc.changes.latest(key)
        first = svc.changes.read_after(key, limit=1)[0].sequence
        asked = []
        for after in (last, last, first - 1, first, -1):
            if after == -1:  # the first row gone (as the prune would take it)
                svc.state.events.delete_entity(key.partition, LOG_PREFIX + format_sequence(first))
            before = counter.snapshot()
            read = svc.changes.read_after(key, after, limit=10)
            asked.append(diff(counter.snapshot(), before)["by_table"].get(CHANGES_TABLE, 0))
            low = max(after, first) + 1
            assert [c.sequence for c in read] == list(range(low, last + 1))
        assert asked == [1, 0, 0, 0, 0]


def test_a_purged_mailbox_keeps_its_feed_until_retention_then_the_prune_takes_it(
    sim: SimHandle, azurite: str
) -> None:
    """A mailbox removed with purge=true: its changes are still read (by user id and UPN)
    and kept by the prune while inside CHANGES_RETENTION_DAYS; once they are past it the prune
    deletes them and the row remembering the mailbox, and the read is 404."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["rin", "sol"])
    settings = app_settings(sim, azurite, tenant, client)
    svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
    assert svc.changes is not None
    old_at = svc.now() - timedelta(days=svc.settings.changes_retention_days + 1)
    keys: dict[str, MailboxKey] = {}
    written: dict[str, list[ChangeEvent]] = {}
    try:
        for (upn, user_id), at in zip(users.items(), [svc.now(), old_at], strict=True):
            key = keys[upn] = MailboxKey(tenant, user_id)
            mailboxes.enrol(svc, tenant, user_id, {"mode": "poll"})
            mailbox = svc.state.get_mailbox(key)
            assert mailbox is not None
            event = sim.control.create_event(upn, {"subject": f"Last of {upn}", **_slot(5, 9)})
            item = DeltaItem(event["id"], _graph_shape(sim, upn, event["id"]))
            plan = plan_page([item], {}, mailbox.options)
            written[upn] = svc.state.apply_changes(key, plan.upserts, plan.changes, at=at)
            then = replace(svc, clock=lambda at=at: at + timedelta(minutes=1))
            mailboxes.remove(then, tenant, user_id, purge=True)
    finally:
        svc.graph.close()
    recent, old = users
    assert written[recent]
    with pytest.raises(NotFoundError):
        mailboxes.find(svc, tenant, recent)
    assert feed.run_prune(svc) >= 1
    for user in (recent, keys[recent].user_id):
        page = feed.read(svc, tenant, user, None, None)
        assert [c["id"] for c in page["value"]] == [c.change_id for c in written[recent]]
    remembered = {key for key, _, _ in svc.changes.removed()}
    assert keys[recent] in remembered
    assert keys[old] not in remembered
    assert svc.changes.read_after(keys[old]) == []
    with pytest.raises(NotFoundError):
        feed.read(svc, tenant, old, None, None)
