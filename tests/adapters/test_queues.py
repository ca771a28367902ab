"""Sync requests on the real queue: base64 JSON the Functions trigger reads; bad bodies named."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.storage.queue import BinaryBase64DecodePolicy

from shared.adapters.queues import (
    MAX_VISIBILITY_DELAY,
    SyncQueue,
    decode_request,
    visibility_seconds,
)
from shared.adapters.storage import StorageClients
from shared.core.model import SyncRequest, Trigger
from shared.errors import InputError
from shared.settings import StorageSettings

pytestmark = pytest.mark.integration


def test_requests_are_base64_json_on_the_wire(azurite: str) -> None:
    """A queued request is base64 text whose JSON decodes back to the same request."""
    clients = StorageClients(StorageSettings(connection_string=azurite))
    queue = SyncQueue(clients, name="wire-test")
    clients.queue("wire-test").create_queue()
    request = SyncRequest("t", "u", Trigger.NOTIFICATION, False, "2026-11-21T12:00:00Z")
    queue.put(request)
    from azure.storage.queue import QueueClient

    raw = QueueClient.from_connection_string(azurite, "wire-test").receive_message()
    assert raw is not None
    text = base64.b64decode(raw.content).decode()
    assert json.loads(text)["user_id"] == "u"
    assert decode_request(text) == request


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
        ('{"tenant_id": "t"}', "user_id"),
        ('{"tenant_id": "t", "user_id": "u", "trigger": "whim"}', "unknown trigger 'whim'"),
        ('{"tenant_id": "t", "user_id": "u"}', "trigger is missing"),
        ('{"tenant_id": "t", "user_id": "u", "trigger": 5}', "trigger must be a string"),
        ('{"tenant_id": "t", "user_id": "u", "trigger": "poll", "full": "no"}', "full must be"),
        (b'\xff\xfe{"tenant_id"', "not JSON"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: str | bytes, names: str) -> None:
    """A message that is not a sync request raises InputError naming the problem."""
    with pytest.raises(InputError, match=names):
        decode_request(body)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("notification", SyncRequest("t", "u", Trigger.NOTIFICATION, requested_at="x")),
        ("safety-net", SyncRequest("t", "u", Trigger.SAFETY_NET, requested_at="x")),
        (
            "lifecycle:missed:sub/1",
            SyncRequest(
                "t",
                "u",
                Trigger.LIFECYCLE,
                requested_at="x",
                lifecycle_event="missed",
                subscription_id="sub/1",
            ),
        ),
    ],
)
def test_messages_queued_before_typed_requests_still_decode(
    reason: str, expected: SyncRequest
) -> None:
    """A message written with the old free-text `reason` decodes to the typed request."""
    body = json.dumps({"tenant_id": "t", "user_id": "u", "reason": reason, "requested_at": "x"})
    assert decode_request(body) == expected


def test_visibility_delay_is_rounded_up_never_early() -> None:
    """0.4 s waits 1 s and 2.5 s waits 3 s: a Retry-After is never cut short."""
    cases = {0.0: 0, -3.0: 0, 0.4: 1, 1.0: 1, 2.5: 3, 4.0: 4, 1e12: MAX_VISIBILITY_DELAY}
    assert {d: visibility_seconds(d) for d in cases} == cases
    assert visibility_seconds(float("inf")) == MAX_VISIBILITY_DELAY
    assert visibility_seconds(float("nan")) == 0


def test_poison_keeps_the_original_bytes(azurite: str) -> None:
    """A message that is not UTF-8 is parked byte for byte, not as replacement characters."""
    clients = StorageClients(StorageSettings(connection_string=azurite))
    name = f"bytes-{uuid.uuid4().hex[:8]}"
    body = b'\xff\xfe{"tenant_id": "t"}'
    SyncQueue(clients, name=name).poison(body)
    parked = clients.queues.get_queue_client(
        f"{name}-poison", message_decode_policy=BinaryBase64DecodePolicy()
    ).receive_message()
    assert parked is not None
    assert parked.content == body


def test_poisoning_at_once_from_many_workers_never_fails(azurite: str) -> None:
    """Workers racing to create the poison queue all park their message (creation is idempotent)."""
    clients = StorageClients(StorageSettings(connection_string=azurite))
    for _ in range(5):
        name = f"race-{uuid.uuid4().hex[:8]}"
        gate = threading.Barrier(6)

        def poison(n: int, name: str = name, gate: threading.Barrier = gate) -> None:
            gate.wait()
            SyncQueue(clients, name=name).poison(f"bad {n}".encode())

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(poison, range(6)))  # re-raises a worker's StorageError
        props = clients.queue(f"{name}-poison").get_queue_properties()
        assert props.approximate_message_count == 6
