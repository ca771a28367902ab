"""Sync requests on the Storage queue (azure-storage-queue), base64 JSON as the Functions queue
trigger expects. A message that cannot be written raises StorageError, so the intake answers 5xx
and Graph retries: nothing is acknowledged that is not on a queue."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient

from shared.adapters.storage import StorageClients
from shared.core.model import SyncRequest, Trigger
from shared.errors import InputError, StorageError
from shared.names import QUEUES, SYNC_QUEUE

MAX_VISIBILITY_DELAY = 7 * 24 * 3600 - 1  # the queue service's limit on visibility_timeout


def encode_request(request: SyncRequest) -> str:
    return json.dumps(asdict(request), separators=(",", ":"))


_TRIGGERS = {t.value: t for t in Trigger}


def decode_request(text: str) -> SyncRequest:
    """A queue message body → SyncRequest, or InputError naming what is wrong (→ poison queue).
    Messages written before requests were typed carry `reason` ("lifecycle:missed:<id>")."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise InputError(f"sync request is not JSON: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise InputError("sync request must be a JSON object with tenant_id and user_id")
    missing = [k for k in ("tenant_id", "user_id") if not isinstance(data.get(k), str)]
    if missing:
        raise InputError(f"sync request lacks {', '.join(missing)}")
    if "trigger" not in data and isinstance(data.get("reason"), str):
        head, _, rest = data["reason"].partition(":")
        data["trigger"] = head
        if head == Trigger.LIFECYCLE:
            data["lifecycle_event"], _, data["subscription_id"] = rest.partition(":")
    trigger = _TRIGGERS.get(str(data.get("trigger", "")))
    if trigger is None:
        raise InputError(
            f"sync request has an unknown trigger {str(data.get('trigger'))[:40]!r}; "
            f"expected one of {', '.join(_TRIGGERS)}"
        )
    fields = {"full": bool, "requested_at": str, "lifecycle_event": str, "subscription_id": str}
    values = {k: data[k] for k, kind in fields.items() if isinstance(data.get(k), kind)}
    return SyncRequest(data["tenant_id"], data["user_id"], trigger, **values)


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

    def poison(self, text: str) -> None:
        """Park an unreadable message where the host parks poison messages: `<queue>-poison`."""
        poison = self._clients.queue(f"{self._name}-poison")
        try:
            try:
                poison.send_message(text)
            except ResourceNotFoundError:
                poison.create_queue()
                poison.send_message(text)
        except AzureError as exc:
            raise StorageError(f"could not park a poison message ({type(exc).__name__})") from None

    def put(self, request: SyncRequest, *, delay: float = 0.0) -> None:
        seconds = min(MAX_VISIBILITY_DELAY, max(0, round(delay)))
        try:
            self._queue.send_message(encode_request(request), visibility_timeout=seconds)
        except AzureError as exc:
            raise StorageError(
                f"could not queue a sync request for {request.user_id} ({type(exc).__name__})"
            ) from None
