"""Sync requests on the Storage queue (azure-storage-queue), base64 JSON as the Functions queue
trigger expects. A message that cannot be written raises StorageError, so the intake answers 5xx
and Graph retries: nothing is acknowledged that is not on a queue."""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

from shared.adapters.storage import StorageClients
from shared.core.messages import decode_sync_request
from shared.core.model import SyncRequest
from shared.errors import InputError, StorageError
from shared.names import QUEUES, SYNC_QUEUE, WRITES_QUEUE

MAX_VISIBILITY_DELAY = 7 * 24 * 3600 - 1  # the queue service's limit on visibility_timeout


def encode_request(request: SyncRequest) -> str:
    return json.dumps(asdict(request), separators=(",", ":"))


def decode_request(body: bytes | str) -> SyncRequest:
    """A queue message body → SyncRequest, or InputError naming what is wrong (→ poison queue).
    Only the JSON is read here; the fields are validated by core.messages."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data: Any = json.loads(text)
    except ValueError:  # UnicodeDecodeError and JSONDecodeError both are ValueErrors
        shown = body[:80] if isinstance(body, str) else body[:80].decode("utf-8", "replace")
        raise InputError(f"sync request is not JSON: {shown!r}") from None
    return decode_sync_request(data)


def visibility_seconds(delay: float) -> int:
    """The queue's whole-second visibility timeout for `delay`: rounded up, never early (a
    Retry-After of 2.5 s must not be retried after 2), within the service's limit."""
    if not math.isfinite(delay):
        return MAX_VISIBILITY_DELAY if delay == math.inf else 0
    return min(MAX_VISIBILITY_DELAY, max(0, math.ceil(delay)))


class SyncQueue:
    """Writes sync requests; `delay` seconds of invisibility debounce bursts and pace retries."""

    def __init__(self, clients: StorageClients, name: str = SYNC_QUEUE) -> None:
        self._clients = clients
        self._name = name
        self._queue: QueueClient = clients.queue(name)

    def ensure(self) -> None:
        for name in QUEUES:
            try:
                self._clients.queue(name).create_queue()
            except ResourceExistsError:
                pass
            except AzureError as exc:
                raise StorageError(f"creating queue {name} failed ({type(exc).__name__})") from None

    def poison(self, body: bytes) -> None:
        """Park an unreadable message where the host parks poison messages: `<queue>-poison`,
        with the message's own bytes. Creating that queue is idempotent: two workers poisoning
        at once both succeed."""
        poison = self._clients.queues.get_queue_client(
            f"{self._name}-poison", message_encode_policy=BinaryBase64EncodePolicy()
        )
        try:
            try:
                poison.send_message(body)
            except ResourceNotFoundError:
                with contextlib.suppress(ResourceExistsError):  # another worker created it
                    poison.create_queue()
                poison.send_message(body)
        except AzureError as exc:
            raise StorageError(f"could not park a poison message ({type(exc).__name__})") from None

    def put(self, request: SyncRequest, *, delay: float = 0.0) -> None:
        seconds = visibility_seconds(delay)
        try:
            self._queue.send_message(encode_request(request), visibility_timeout=seconds)
        except AzureError as exc:
            raise StorageError(
                f"could not queue a sync request for {request.user_id} ({type(exc).__name__})"
            ) from None


class WriteQueue:
    """Queued writes (throttled or failed transiently): `{"writeId": ...}`, made visible when
    the write may be tried again (Graph's Retry-After, or the backoff)."""

    def __init__(self, clients: StorageClients, name: str = WRITES_QUEUE) -> None:
        self._queue: QueueClient = clients.queue(name)

    def put(self, write_id: str, *, delay: float = 0.0) -> None:
        body = json.dumps({"writeId": write_id}, separators=(",", ":"))
        try:
            self._queue.send_message(body, visibility_timeout=visibility_seconds(delay))
        except AzureError as exc:
            raise StorageError(f"could not queue write {write_id} ({type(exc).__name__})") from None


def decode_write_message(body: bytes | str) -> str:
    """The write id of a queued write, or InputError (-> poison queue)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data: Any = json.loads(text)
    except ValueError:
        raise InputError("queued write is not JSON") from None
    write_id = data.get("writeId") if isinstance(data, dict) else None
    if not isinstance(write_id, str) or not write_id.isalnum() or len(write_id) > 64:
        raise InputError(f"queued write has no valid writeId: {str(data)[:80]!r}")
    return write_id
