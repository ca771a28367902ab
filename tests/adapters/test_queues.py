"""Sync requests on the real queue: base64 JSON the Functions trigger reads; bad bodies named."""

from __future__ import annotations

import base64
import json

import pytest

from shared.adapters.queues import SyncQueue, decode_request
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
        ('{"tenant_id": "t", "user_id": "u"}', "unknown trigger"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: str, names: str) -> None:
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
