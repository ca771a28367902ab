"""The write API's services against the simulator and Azurite: a write reaches Graph once and
the mirror at once; a retried create makes one event; a stale changeKey is a conflict with the
current version; a throttled write is queued and done later; series, occurrence edits and
pattern changes, deletes and cancels are mirrored as Graph answers them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.queues import decode_write_message
from shared.compose import Services, build_services
from shared.core.graph import event_get, event_update
from shared.core.model import DeltaItem, MailboxKey
from shared.core.webhooks import Filter
from shared.core.writes import ORIGIN_PROPERTY, origin_of
from shared.errors import IdempotencyMismatch, InputError, NotFoundError, WriteConflict
from shared.names import EVENTS_TABLE, WRITES_TABLE
from shared.secrets import EnvSecrets
from shared.services import mailboxes, mirror, writes
from shared.services.sync import run_sync_request
from tests.services.simworld import (
    app_settings,
    empty_write_queue,
    event_body,
    mirror_rows,
    poll_request,
    seed_tenant,
    when,
    write,
)
from tests.services.tablewatch import ReadsMeet

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"
ROLES = ("Calendars.ReadWrite", "User.Read.All")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=11) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, MailboxKey, str]]:
    """A fresh tenant with one poll-mode mailbox enrolled and its first round done."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["ines"], roles=ROLES)
    ((upn, user_id),) = users.items()
    settings = app_settings(sim, azurite, tenant, client)
    svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
    key = MailboxKey(tenant, user_id)
    empty_write_queue(svc)
    mailboxes.enrol(svc, tenant, user_id, {"mode": "poll", "pollSeconds": 60})
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    yield svc, key, upn
    sim.control.clear_faults()
    svc.graph.close()


def _instances(svc: Services, key: MailboxKey) -> dict[str, dict[str, Any]]:
    """The mirrored rows other than series masters."""
    return {i: r for i, r in mirror_rows(svc, key).items() if r["type"] != "seriesMaster"}


def _graph_events(sim: SimHandle, upn: str) -> list[dict[str, Any]]:
    return sim.control.list_events(upn)


def _requests(sim: SimHandle, key: MailboxKey) -> int:
    return int(sim.control.counters()["requests_by_mailbox"].get(key.user_id, 0))


def test_create_is_in_graph_and_in_the_mirror_at_once(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A created event is in the mirror when the call returns, with Graph's changeKey, and the
    next delta round finds nothing to change."""
    svc, key, upn = world
    view, status = write(svc, key, {"action": "create", "event": event_body("Boiler service")})
    assert (status, view["status"]) == (201, "done")
    event_id = view["eventId"]
    assert [e["id"] for e in _graph_events(sim, upn)] == [event_id]
    row = mirror_rows(svc, key)[event_id]
    assert (row["subject"], row["change_key"]) == ("Boiler service", view["changeKey"])
    outcome = run_sync_request(svc, poll_request(svc, key))
    assert (outcome.upserts, outcome.deletes) == (0, 0)
    assert writes.get_write(svc, view["id"])["status"] == "done"


def test_write_options_and_origin_marker_reach_graph(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """The mailbox's write options fill what the create left out, the origin marker names
    writer and write, and no attendee is invented."""
    svc, key, _ = world
    mailboxes.enrol(
        svc,
        key.tenant_id,
        key.user_id,
        {
            "reminderMinutes": 45,
            "writeTimeZone": "Europe/Berlin",
            "writePrivate": True,
            "writeBodyType": "text",
        },
    )
    event = {
        "subject": "Site visit",
        "start": {"dateTime": when(2, 9)["dateTime"]},
        "end": {"dateTime": when(2, 10)["dateTime"]},
        "body": "Gate code 1234",
    }
    view, _ = write(svc, key, {"action": "create", "writer": "fieldapp", "event": event})
    answer = view["event"]
    assert (answer["isReminderOn"], answer["reminderMinutesBeforeStart"]) == (True, 45)
    assert answer["sensitivity"] == "private"
    assert answer["originalStartTimeZone"] == "Europe/Berlin"
    assert answer["attendees"] == []
    assert "Gate code 1234" in answer["body"]["content"]
    read = svc.graph.send(
        event_get(key, view["eventId"], origin_property=ORIGIN_PROPERTY, body_type="html")
    )
    assert origin_of(read) == f"calsync;writer=fieldapp;write={view['id']}"
    assert svc.writes is not None
    assert svc.writes.written_version(key, view["eventId"]) == (view["changeKey"], "", "fieldapp")


def test_a_retried_create_with_the_same_key_makes_one_event(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """The same Idempotency-Key answers the same write without calling Graph again; the key with
    another body is refused; the written version remembers the key."""
    svc, key, upn = world
    body = {"action": "create", "event": event_body("Once only")}
    first, _ = write(svc, key, body, "booking-17")
    before = _requests(sim, key)
    again, status = write(svc, key, body, "booking-17")
    assert (again["id"], again["eventId"], status) == (first["id"], first["eventId"], 201)
    assert _requests(sim, key) == before
    assert len(_graph_events(sim, upn)) == 1
    with pytest.raises(IdempotencyMismatch):
        write(svc, key, {"action": "create", "event": event_body("Other")}, "booking-17")
    assert svc.writes is not None
    found = svc.writes.written_version(key, first["eventId"])
    assert found == (first["changeKey"], "booking-17", "calsync")


def test_a_create_tried_again_finds_the_event_its_first_try_made(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A pending create whose first POST reached Graph is done with that event: the repeated
    transactionId is refused and the origin marker finds the event; still one event."""
    svc, key, upn = world
    first, _ = write(svc, key, {"action": "create", "event": event_body("Lost answer")}, "k-9")
    assert svc.writes is not None
    stored = svc.writes.get(first["id"])
    assert stored is not None
    svc.writes.save(replace(stored, status="pending", event_id="", change_key="", event=None))
    assert writes.run_write_message(svc, f'{{"writeId":"{first["id"]}"}}').endswith("done")
    assert writes.get_write(svc, first["id"])["eventId"] == first["eventId"]
    assert len(_graph_events(sim, upn)) == 1


def test_update_and_delete_tried_again_after_their_first_try_got_through(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A queued update whose first PATCH reached Graph meets a 412 on the retry, finds its own
    marker on the event and is done; a queued delete that meets a 404 is done; the same 412 or
    404 on a first try is a conflict or not found."""
    svc, key, _ = world
    assert svc.writes is not None
    made, _ = write(svc, key, {"action": "create", "event": event_body("Twice")})
    update = {
        "action": "update",
        "eventId": made["eventId"],
        "changeKey": made["changeKey"],
        "event": {"subject": "Once more"},
    }
    changed, _ = write(svc, key, update, "u-1")
    stored = svc.writes.get(changed["id"])
    assert stored is not None
    svc.writes.save(replace(stored, status="pending", attempts=1))
    assert writes.run_write_message(svc, f'{{"writeId":"{changed["id"]}"}}').endswith("done")
    assert writes.get_write(svc, changed["id"])["event"]["subject"] == "Once more"
    with pytest.raises(WriteConflict):  # the same stale changeKey, a new write: a conflict
        write(svc, key, update, "u-2")
    gone, _ = write(svc, key, {"action": "delete", "eventId": made["eventId"]}, "d-1")
    stored = svc.writes.get(gone["id"])
    assert stored is not None
    svc.writes.save(replace(stored, status="pending", attempts=1))
    assert writes.run_write_message(svc, f'{{"writeId":"{gone["id"]}"}}').endswith("done")
    with pytest.raises(NotFoundError):
        write(svc, key, {"action": "delete", "eventId": made["eventId"]}, "d-2")


def test_a_retry_of_an_abandoned_create_completes_it_once(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A write left pending by a process that stopped after Graph created the event (never
    queued, older than ABANDONED_SECONDS), or queued but overdue by as much, is completed by the
    caller's retry, with that event; a pending write younger than that is only shown."""
    svc, key, upn = world
    body = {"action": "create", "event": event_body("Half done")}
    first, _ = write(svc, key, body, "k-10")
    assert svc.writes is not None
    stored = svc.writes.get(first["id"])
    assert stored is not None
    pending = replace(stored, status="pending", event_id="", change_key="", event=None)
    svc.writes.save(pending)
    shown, status = write(svc, key, body, "k-10")
    assert (shown["status"], status) == ("pending", 202)
    old = svc.now() - timedelta(seconds=writes.ABANDONED_SECONDS + 1)
    svc.writes.save(replace(pending, updated=old))
    again, status = write(svc, key, body, "k-10")
    assert (again["status"], again["eventId"], status) == ("done", first["eventId"], 201)
    assert len(_graph_events(sim, upn)) == 1
    lost = replace(pending, attempts=1, retry_at=old, updated=old)  # queued, message lost
    svc.writes.save(lost)
    third, status = write(svc, key, body, "k-10")
    assert (third["status"], third["eventId"], status) == ("done", first["eventId"], 201)
    assert len(_graph_events(sim, upn)) == 1


def test_a_stale_change_key_is_a_conflict_with_the_current_version(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """Someone changed the event in Outlook since the mirror's changeKey: the update is refused
    (412 -> WriteConflict), nothing is overwritten, and the current version comes back and is
    mirrored."""
    svc, key, upn = world
    made, _ = write(svc, key, {"action": "create", "event": event_body("Original")})
    sim.control.update_event(upn, made["eventId"], {"subject": "Changed in Outlook"})
    update = {"action": "update", "eventId": made["eventId"], "event": {"subject": "Mine"}}
    with pytest.raises(WriteConflict) as info:
        write(svc, key, update)
    assert info.value.current is not None
    assert info.value.current["subject"] == "Changed in Outlook"
    assert _graph_events(sim, upn)[0]["subject"] == "Changed in Outlook"
    assert mirror_rows(svc, key)[made["eventId"]]["subject"] == "Changed in Outlook"
    view, status = write(svc, key, update)  # the mirror now has the current changeKey
    assert (status, view["event"]["subject"]) == (200, "Mine")


def test_a_throttled_write_is_queued_and_done_on_retry(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A 429 with Retry-After answers pending, queues the write to be visible after the
    Retry-After, and the queue worker then does it: done, with the event, in the mirror."""
    svc, key, upn = world
    sim.control.fault(429, count=1, method="POST", path_contains="/events", retry_after_s=1)
    view, status = write(svc, key, {"action": "create", "event": event_body("Busy Graph")}, "t-1")
    assert (status, view["status"], view["attempts"]) == (202, "pending", 1)
    assert view["error"]["code"] == "TooManyRequests"
    assert view["retryAt"] - view["updatedAt"] == timedelta(seconds=1)
    assert _graph_events(sim, upn) == []
    assert svc.write_queue is not None
    queue = svc.write_queue._queue
    assert list(queue.peek_messages()) == []  # invisible until the Retry-After has passed
    message = next(iter(queue.receive_messages(visibility_timeout=30, max_messages=1)), None)
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while message is None and datetime.now(UTC) < deadline:
        message = next(iter(queue.receive_messages(visibility_timeout=30, max_messages=1)), None)
    assert message is not None
    assert decode_write_message(message.content) == view["id"]
    assert writes.run_write_message(svc, message.content).endswith("done")
    done = writes.get_write(svc, view["id"])
    assert done["status"] == "done"
    assert done["eventId"] in mirror_rows(svc, key)
    assert [e["id"] for e in _graph_events(sim, upn)] == [done["eventId"]]


def test_a_write_waits_out_the_mailboxs_retry_after(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """While a round's Retry-After holds the mailbox, a write is queued until then without a
    Graph call and without spending an attempt; delivered early, it is put back."""
    svc, key, upn = world
    cursor = svc.state.get_cursor(key)
    until = svc.now() + timedelta(seconds=30)
    svc.state.save_cursor(replace(cursor, throttled_until=until))
    before = _requests(sim, key)
    view, status = write(svc, key, {"action": "create", "event": event_body("Held")})
    assert (status, view["status"], view["attempts"]) == (202, "pending", 0)
    assert view["retryAt"] == until
    assert _requests(sim, key) == before
    assert writes.run_write_message(svc, f'{{"writeId":"{view["id"]}"}}').endswith("re-queued")
    assert _graph_events(sim, upn) == []


def test_series_create_occurrence_edit_and_pattern_change_are_mirrored(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A weekly series is mirrored as its 4 instances at once; editing one makes it an exception
    in the mirror; shortening the pattern to 2 removes the other instances (and the exception)."""
    svc, key, _ = world
    start = when(1, 9)
    day = datetime.fromisoformat(start["dateTime"])
    recurrence = {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": [day.strftime("%A").lower()],
        },
        "range": {
            "type": "numbered",
            "startDate": day.date().isoformat(),
            "numberOfOccurrences": 4,
        },
    }
    made, _ = write(
        svc, key, {"action": "create", "event": event_body("Stand-up", recurrence=recurrence)}
    )
    master_id = made["eventId"]
    rows = _instances(svc, key)
    assert sorted(r["type"] for r in rows.values()) == ["occurrence"] * 4
    assert mirror_rows(svc, key)[master_id]["type"] == "seriesMaster"  # the series itself too
    assert {r["series_master_id"] for r in rows.values()} == {master_id}
    last = max(rows.values(), key=lambda r: r["start"])
    edit = {"action": "update", "eventId": last["event_id"], "event": {"subject": "Retro"}}
    write(svc, key, edit)
    edited = mirror_rows(svc, key)[last["event_id"]]
    assert (edited["type"], edited["subject"]) == ("exception", "Retro")
    outcome = run_sync_request(svc, poll_request(svc, key))
    assert (outcome.upserts, outcome.deletes) == (0, 0)  # the siblings' new changeKeys too
    assert svc.writes is not None
    sibling = min(rows.values(), key=lambda r: r["start"])["event_id"]
    written = svc.writes.written_version(key, sibling)
    assert written is not None
    assert written[0] == mirror_rows(svc, key)[sibling]["change_key"]
    shorter = {**recurrence, "range": {**recurrence["range"], "numberOfOccurrences": 2}}
    write(svc, key, {"action": "update", "eventId": master_id, "event": {"recurrence": shorter}})
    rows = _instances(svc, key)
    assert len(rows) == 2
    assert last["event_id"] not in rows
    assert 'numberOfOccurrences":2' in mirror_rows(svc, key)[master_id]["recurrence_json"].replace(
        " ", ""
    )
    outcome = run_sync_request(svc, poll_request(svc, key))
    assert outcome.deletes == 0


def test_delete_and_cancel_leave_graph_and_the_mirror(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """Delete removes a single event, cancel an occurrence of a series: gone from Graph and
    from the mirror when the call returns."""
    svc, key, upn = world
    single, _ = write(svc, key, {"action": "create", "event": event_body("Drop me")})
    view, status = write(svc, key, {"action": "delete", "eventId": single["eventId"]})
    assert (status, view["status"]) == (200, "done")
    assert single["eventId"] not in mirror_rows(svc, key)
    assert _graph_events(sim, upn) == []
    daily = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {
            "type": "numbered",
            "startDate": when(1, 9)["dateTime"][:10],
            "numberOfOccurrences": 3,
        },
    }
    write(svc, key, {"action": "create", "event": event_body("Daily", recurrence=daily)})
    first = min(_instances(svc, key).values(), key=lambda r: r["start"])
    cancel = {"action": "cancel", "eventId": first["event_id"], "comment": "Holiday"}
    write(svc, key, cancel)
    assert first["event_id"] not in mirror_rows(svc, key)
    assert len(_instances(svc, key)) == 2
    outcome = run_sync_request(svc, poll_request(svc, key))
    assert (outcome.upserts, outcome.deletes) == (0, 0)
    assert svc.writes is not None
    assert svc.writes.written_version(key, first["event_id"]) == ("", "", "calsync")
    for row in _instances(svc, key).values():  # the siblings' new versions came from the cancel
        assert svc.writes.written_version(key, row["event_id"]) == (
            row["change_key"],
            "",
            "calsync",
        )


def test_bad_input_and_unknown_mailbox_call_no_graph(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """A malformed write is refused naming the field, an unknown mailbox is not found, an
    unknown event id is not found; the first two before any Graph call."""
    svc, key, _ = world
    before = _requests(sim, key)
    with pytest.raises(InputError) as info:
        write(svc, key, {"action": "create", "event": event_body("x", showAs="away")})
    assert info.value.message.startswith("event.showAs")
    with pytest.raises(NotFoundError):
        writes.run_write(svc, key.tenant_id, "nobody@nowhere.example", {"action": "create"}, None)
    assert _requests(sim, key) == before
    with pytest.raises(NotFoundError):
        writes.get_write(svc, "0" * 32)


def test_a_write_reaches_the_feed_once_marked_with_its_origin(
    world: tuple[Services, MailboxKey, str],
) -> None:
    """A create through calsync is one change event carrying the write's key and writer; the
    next delta round of the same version adds none, and a subscriber that excludes the writer
    does not match it while others do (no echo loop)."""
    svc, key, _ = world
    view, _ = write(
        svc, key, {"action": "create", "event": event_body("Booked"), "writer": "helpdesk"}, "b-1"
    )
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    assert svc.changes is not None
    mine = [c for c in svc.changes.read_after(key, limit=1000) if c.event_id == view["eventId"]]
    assert [(c.type, c.write_key, c.writer) for c in mine] == [("created", "b-1", "helpdesk")]
    assert mine[0].to_json()["origin"] == {"writeKey": "b-1", "writer": "helpdesk"}
    assert not Filter(exclude_writers=("helpdesk",)).matches(mine[0])
    assert Filter(exclude_writers=("crm",)).matches(mine[0])
    assert Filter().matches(mine[0])


def test_a_round_that_meets_a_write_before_its_mirror_marks_it_as_the_write(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """The race of a round with a write: Graph has answered the write and its version is
    recorded, but the round reads Graph before the write mirrors its answer. The round's change
    carries the write's key and writer (so `excludeWriters` keeps it from its writer), and a
    change by someone else afterwards carries none."""
    svc, key, upn = world
    event_id = sim.control.create_event(upn, event_body("Raced"))["id"]
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    assert svc.writes is not None
    # The write, up to its mirror step: Graph's answer, then the versions recorded first.
    answer = svc.graph.send(
        event_update(
            key, event_id, {"subject": "Raced (by the crm)"}, change_key="", body_type="html"
        )
    )
    svc.writes.record_written(
        key, [(event_id, answer["changeKey"])], idempotency_key="crm-1", writer="crm", write_id="w1"
    )
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")  # the round, first
    sim.control.update_event(upn, event_id, {"subject": "Raced (by a person)"})
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    sim.control.delete_event(upn, event_id)
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    assert svc.changes is not None
    mine = [c for c in svc.changes.read_after(key, limit=1000) if c.event_id == event_id]
    assert [(c.type, c.write_key, c.writer) for c in mine] == [
        ("created", "", ""),
        ("updated", "crm-1", "crm"),
        ("updated", "", ""),
        ("deleted", "", ""),
    ]
    assert not Filter(exclude_writers=("crm",)).matches(mine[1])


def test_a_page_reads_our_writes_versions_side_by_side_with_the_mirrors(
    sim: SimHandle, azurite: str
) -> None:
    """Applying a page reads the `writes` table's versions (the echo marks) while the mirror's
    versions are read, not after: both queries are in flight together."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["olu"], roles=ROLES)
    ((user_id,),) = [users.values()]
    with ReadsMeet(azurite) as proxy:
        settings = app_settings(sim, proxy.connection_string, tenant, client)
        svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
        key = MailboxKey(tenant, user_id)
        try:
            mailboxes.enrol(svc, tenant, user_id, {"mode": "poll", "pollSeconds": 60})
            record = svc.state.get_mailbox(key)
            assert record is not None
            event = {**event_body("Side by side"), "id": "AAMk-side", "changeKey": "ck-1"}
            event |= {"type": "singleInstance", "showAs": "busy"}
            proxy.arm(EVENTS_TABLE, WRITES_TABLE)
            mirror.apply_items(svc, record, [DeltaItem("AAMk-side", event)])
        finally:
            svc.graph.close()
        assert proxy.met is True
        assert "AAMk-side" in mirror_rows(svc, key)
