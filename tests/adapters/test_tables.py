"""The Table state store against real Azurite: keys, batches, idempotence, ETag-guarded cursors."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.storage import StorageClients
from shared.adapters.tables import TableState
from shared.core.events import normalize_event
from shared.core.model import MailboxKey, MailboxOptions
from shared.core.state import MailboxRecord
from shared.errors import NotFoundError, StateConflict
from shared.settings import StorageSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def state(azurite: str) -> TableState:
    store = TableState(StorageClients(StorageSettings(connection_string=azurite)))
    store.ensure()
    return store


def _key() -> MailboxKey:
    return MailboxKey(str(uuid.uuid4()), str(uuid.uuid4()))


def _event(event_id: str, subject: str = "Standup", body: str = "<p>hi</p>") -> dict[str, object]:
    return {
        "id": event_id,
        "changeKey": f"ck-{subject}-{len(body)}",
        "subject": subject,
        "type": "singleInstance",
        "body": {"contentType": "html", "content": body},
        "start": {"dateTime": "2026-11-23T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-23T09:30:00.0000000", "timeZone": "UTC"},
        "isAllDay": False,
        "sensitivity": "normal",
        "showAs": "busy",
    }


def test_graph_ids_with_forbidden_characters_round_trip(state: TableState) -> None:
    """Ids with '/', '+', '=', '#', '?' and mixed case are stored and read back unchanged."""
    key = _key()
    ids = ["AAMk/AB+c==", "aamk/ab+C==", "x#y?z\\w"]
    events = [normalize_event(_event(i), MailboxOptions()) for i in ids]
    state.apply_events(key, events, ())
    assert set(state.stored_versions(key)) == set(ids)
    assert set(state.stored_versions(key, ["AAMk/AB+c==", "missing"])) == {"AAMk/AB+c=="}


def test_batches_over_100_and_replays_are_idempotent(state: TableState) -> None:
    """250 upserts then the same again then deletes (twice) leave exactly the expected rows."""
    key = _key()
    events = [normalize_event(_event(f"id/{n}"), MailboxOptions()) for n in range(250)]
    state.apply_events(key, events, ())
    state.apply_events(key, events, ())
    assert len(state.stored_versions(key)) == 250
    gone = [f"id/{n}" for n in range(0, 250, 2)]
    state.apply_events(key, (), gone)
    state.apply_events(key, (), gone)  # deleting rows already gone is not an error
    assert len(state.stored_versions(key)) == 125


def test_a_body_over_the_property_limit_survives_whole(state: TableState) -> None:
    """A 200,000-character body is split over properties and read back in full."""
    key = _key()
    body = "<p>" + "x" * 200_000 + "</p>"
    state.apply_events(key, [normalize_event(_event("big", body=body), MailboxOptions())], ())
    from shared.core.entity import join_properties

    (row,) = state.list_events(key)
    assert join_properties(row)["body"] == body


def test_events_are_listed_by_overlap_with_the_asked_range(state: TableState) -> None:
    """list_events(start, end) returns events overlapping [start, end) only."""
    key = _key()
    state.apply_events(key, [normalize_event(_event("a"), MailboxOptions())], ())
    day = datetime(2026, 11, 23, tzinfo=UTC)
    assert len(state.list_events(key, day, day + timedelta(days=1))) == 1
    assert state.list_events(key, day + timedelta(hours=10), day + timedelta(days=1)) == []


def test_cursor_writes_are_guarded_by_etag(state: TableState) -> None:
    """Two hosts that read the same cursor: the first write wins, the second gets StateConflict."""
    key = _key()
    first = state.save_cursor(state.get_cursor(key))
    a, b = state.get_cursor(key), state.get_cursor(key)
    assert a.etag == b.etag == first.etag
    state.save_cursor(replace(a, lease_owner="host-a"))
    with pytest.raises(StateConflict):
        state.save_cursor(replace(b, lease_owner="host-b"))
    assert state.get_cursor(key).lease_owner == "host-a"


def test_creating_a_cursor_twice_conflicts(state: TableState) -> None:
    """Two hosts creating the same new cursor: only one succeeds."""
    key = _key()
    fresh = state.get_cursor(key)
    state.save_cursor(fresh)
    with pytest.raises(StateConflict):
        state.save_cursor(fresh)


def test_mailbox_record_round_trips(state: TableState) -> None:
    """A mailbox with options and status reads back equal; a missing one is NotFoundError."""
    key = _key()
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    record = MailboxRecord(
        key, "adele@contoso.test", MailboxOptions(weeks_back=2, mode="poll"), enrolled_at=now
    ).with_status(mode="poll", mode_reason="chosen", last_sync=now, event_count=3)
    state.put_mailbox(record)
    assert state.get_mailbox(key) == record
    state.delete_mailbox(key)
    with pytest.raises(NotFoundError):
        state.get_mailbox(key)


def test_status_updates_merge_fields_and_clear_values(state: TableState) -> None:
    """Writers of different status fields don't undo each other; None clears a value."""
    key = _key()
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    state.put_mailbox(MailboxRecord(key, "x@contoso.test").with_status(next_subscribe_attempt=now))
    state.update_status(key, last_sync=now, last_sync_result="ok")
    state.update_status(key, mode="webhook", subscription_id="s1", next_subscribe_attempt=None)
    status = state.get_mailbox(key).status
    assert (status.last_sync, status.last_sync_result) == (now, "ok")
    assert (status.mode, status.subscription_id) == ("webhook", "s1")
    assert status.next_subscribe_attempt is None
    state.delete_mailbox(key)
    state.update_status(key, last_sync=now)  # a removed mailbox is not brought back
    with pytest.raises(NotFoundError):
        state.get_mailbox(key)
