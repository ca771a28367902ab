"""The dev host's queue path against real Azurite: base64, retries, visibility, poison queue.

The dev host runs with visibilityTimeout 1 s, maxDequeueCount 3 and polling every <= 0.2 s
(see conftest.py); the sample `work` function records every attempt in a table.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
from typing import Any

import httpx
import pytest
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devhost import DevHost

from . import sample_app
from .conftest import QUEUE_OPTIONS
from .helpers import table_rows, wait_until

pytestmark = pytest.mark.integration
POISON = f"{sample_app.WORK_QUEUE}-poison"


@pytest.fixture(scope="module")
def queue(devhost: DevHost, azurite: str) -> QueueClient:
    """The work queue, sending base64 text as the host expects (created if missing)."""
    client = QueueClient.from_connection_string(
        azurite, sample_app.WORK_QUEUE, message_encode_policy=TextBase64EncodePolicy()
    )
    if not _exists(client):
        client.create_queue()
    return client


@pytest.fixture(scope="module")
def attempts_table(azurite: str) -> TableClient:
    return TableClient.from_connection_string(azurite, sample_app.ATTEMPTS)


def _exists(client: QueueClient) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        client.get_queue_properties()
    except ResourceNotFoundError:
        return False
    return True


def attempts(table: TableClient, message_id: str) -> list[dict[str, Any]]:
    return sorted(table_rows(table, f"PartitionKey eq '{message_id}'"), key=lambda r: r["RowKey"])


def poison_texts(azurite: str) -> list[str]:
    client = QueueClient.from_connection_string(azurite, POISON)
    if not _exists(client):
        return []
    return [str(m.content) for m in client.peek_messages(max_messages=32)]


def test_good_message_runs_once_and_is_deleted(
    queue: QueueClient, attempts_table: TableClient
) -> None:
    """A base64 JSON message is decoded, run once with dequeue_count 1, then deleted."""
    sent = queue.send_message(json.dumps({"n": 1}))
    rows = wait_until(lambda: attempts(attempts_table, sent.id), 10, "the attempt")
    assert [(r["RowKey"], r["body"]) for r in rows] == [("001", '{"n": 1}')]
    wait_until(lambda: queue.get_queue_properties().approximate_message_count == 0, 10, "deletion")


def test_failure_is_retried_after_the_visibility_timeout(
    queue: QueueClient, attempts_table: TableClient, azurite: str
) -> None:
    """A message failing twice comes back after visibilityTimeout with a higher dequeue count."""
    sent = queue.send_message(json.dumps({"fail_until": 3}))

    def three_tries() -> list[dict[str, Any]]:
        rows = attempts(attempts_table, sent.id)
        return rows if len(rows) == 3 else []

    rows = wait_until(three_tries, 15, "three tries")
    assert [r["RowKey"] for r in rows] == ["001", "002", "003"]
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(rows)]
    assert all(g >= QUEUE_OPTIONS.visibility_timeout * 0.9 for g in gaps), gaps
    assert all(g < QUEUE_OPTIONS.visibility_timeout + 3 for g in gaps), gaps
    assert json.dumps({"fail_until": 3}) not in [_decoded(t) for t in poison_texts(azurite)]


def test_failing_and_non_json_messages_end_in_poison_nothing_else_lost(
    queue: QueueClient, attempts_table: TableClient, azurite: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Failing and non-JSON messages go to poison after 3 tries, logged; good ones run once."""
    caplog.set_level(logging.INFO, logger="calsync.devhost")
    bad_json = queue.send_message(json.dumps({"fail": True, "tag": "bad-json"}))
    not_json = queue.send_message("this is not JSON")
    good = [queue.send_message(json.dumps({"good": i})) for i in range(20)]

    def in_poison() -> list[str]:
        texts = [_decoded(t) for t in poison_texts(azurite)]
        wanted = [json.dumps({"fail": True, "tag": "bad-json"}), "this is not JSON"]
        return texts if all(w in texts for w in wanted) else []

    wait_until(in_poison, 20, "both bad messages in the poison queue")
    for bad in (bad_json, not_json):
        assert [r["RowKey"] for r in attempts(attempts_table, bad.id)] == ["001", "002", "003"]
    for message in good:
        assert len(attempts(attempts_table, message.id)) == 1, message.content
    assert "Message has reached MaxDequeueCount of 3. Moving message to queue" in caplog.text
    assert POISON in caplog.text
    wait_until(lambda: queue.get_queue_properties().approximate_message_count == 0, 10, "empty")


def test_message_that_is_not_base64_goes_straight_to_poison(
    azurite: str, queue: QueueClient, attempts_table: TableClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Text that cannot be base64-decoded never runs: it is poison-queued at once, logged."""
    caplog.set_level(logging.INFO, logger="calsync.devhost")
    raw = QueueClient.from_connection_string(azurite, sample_app.WORK_QUEUE)  # no encoding
    sent = raw.send_message("{not base64!}")
    wait_until(lambda: "{not base64!}" in poison_texts(azurite), 10, "the poison copy")
    assert attempts(attempts_table, sent.id) == []
    assert f"Message {sent.id} on queue 'devhost-work' cannot be decoded" in caplog.text


def test_queue_output_binding_feeds_the_queue_trigger(
    devhost: DevHost, queue: QueueClient, attempts_table: TableClient
) -> None:
    """An HTTP function's queue output is enqueued base64 after it returns and then processed."""
    tag = json.dumps({"via": "output binding"})
    r = httpx.post(f"{devhost.url}/api/enqueue", content=tag, trust_env=False)
    assert r.status_code == 202

    def processed() -> list[dict[str, Any]]:
        return [r for r in table_rows(attempts_table, "RowKey eq '001'") if r["body"] == tag]

    wait_until(processed, 10, "the enqueued message to run")


def _decoded(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode()
    except ValueError:
        return text
