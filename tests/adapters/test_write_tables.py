"""Write records and written versions in the real `writes` table (Azurite): a write is created
once, read back whole (a large event split and joined), versions recorded in batches; queued
writes are base64 JSON naming the write."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.queues import WriteQueue, decode_write_message
from shared.adapters.storage import StorageClients
from shared.adapters.write_tables import WriteStore
from shared.core import writes as w
from shared.core.model import MailboxKey
from shared.errors import InputError
from shared.names import WRITES_TABLE
from shared.settings import StorageSettings

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(azurite: str) -> WriteStore:
    clients = StorageClients(StorageSettings(connection_string=azurite))
    clients.tables.create_table_if_not_exists(WRITES_TABLE)
    return WriteStore(clients)


def _record(key: MailboxKey) -> w.WriteRecord:
    request = w.parse_write(
        {
            "action": "create",
            "writer": "helpdesk",
            "event": {
                "subject": "Visit",
                "start": {"dateTime": "2026-12-02T09:00:00"},
                "end": {"dateTime": "2026-12-02T10:00:00"},
            },
        }
    )
    return w.new_record(key, request, f"k-{uuid.uuid4().hex}", NOW)


def test_a_write_is_created_once_and_read_back_whole(store: WriteStore) -> None:
    """create() is False for an existing id; get() returns the record as saved, a 100,000
    character body included (split over properties and joined)."""
    key = MailboxKey("t", uuid.uuid4().hex)
    record = _record(key)
    assert store.create(record) is True
    assert store.create(record) is False
    assert store.get(record.write_id) == record
    big = {"id": "e1", "changeKey": "ck", "body": {"content": "x" * 100_000}}
    done = replace(
        w.plan_retry(w.plan_done(record, big, NOW), "TooManyRequests", "429", 2, NOW),
        status="done",
    )
    store.save(done)
    assert store.get(record.write_id) == done
    assert done.retry_at == NOW + timedelta(seconds=2)
    assert store.digest(record.write_id) == record.request.digest()
    assert store.get("0" * 32) is None


def test_written_versions_are_recorded_in_batches(store: WriteStore) -> None:
    """150 versions of one write (over one 100-operation transaction) are each readable; an
    event calsync never wrote has none."""
    key = MailboxKey("t", uuid.uuid4().hex)
    versions = [(f"AAMk/{i}+=", f"ck{i}") for i in range(150)]
    store.record_written(key, versions, idempotency_key="k", writer="helpdesk", write_id="w")
    assert store.written_version(key, "AAMk/149+=") == ("ck149", "k", "helpdesk")
    assert store.written_version(key, "AAMk/0+=") == ("ck0", "k", "helpdesk")
    assert store.written_version(key, "never") is None
    assert store.written_version(MailboxKey("t", "other"), "AAMk/0+=") is None
    twice = [("e", "first"), ("e", "")]  # removed after a change, in one write
    store.record_written(key, twice, idempotency_key="", writer="w", write_id="w2")
    assert store.written_version(key, "e") == ("", "", "w")


def test_queued_writes_name_the_write(azurite: str) -> None:
    """A queued write is {"writeId"} on the queue; a message without one is refused."""
    clients = StorageClients(StorageSettings(connection_string=azurite))
    name = f"writes-{uuid.uuid4().hex[:8]}"
    clients.queue(name).create_queue()
    WriteQueue(clients, name).put("abc123")
    message = clients.queue(name).receive_message()
    assert message is not None
    assert decode_write_message(message.content) == "abc123"
    for bad in ("{}", "[1]", '{"writeId": "../x"}', "not json"):
        with pytest.raises(InputError):
            decode_write_message(bad)
