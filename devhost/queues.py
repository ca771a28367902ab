"""Storage queue triggers run with the host's semantics, against Azurite (or any account).

Rule, as the Functions host's QueueProcessor does it:
- poll with exponential back-off from 100 ms up to `maxPollingInterval` while the queue is empty;
  fetch `batchSize` messages and fetch again once no more than `newBatchThreshold` still run;
- each message is invisible while its function runs (the lease); `dequeue_count` is the
  service's own count;
- success deletes the message; failure makes it visible again after `visibilityTimeout`, unless
  its dequeue count has reached `maxDequeueCount`: then it is copied to `<queue>-poison`
  (created if missing) and deleted, with the host's log line. A message already dequeued more
  often than that (a crash mid-run) goes to poison without running;
- with `messageEncoding: base64`, a message that is not base64 cannot be decoded: it goes to the
  poison queue at once, logged, without running the function.
Doc: https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#poison-messages
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as TriggerMessage  # the worker's type
from azure.storage.queue import QueueClient, QueueMessage

from devhost.azurite import resolve_connection_string
from devhost.discovery import FunctionSpec, QueueOutputSpec, resolve_setting_refs
from devhost.hostconfig import QueueOptions
from devhost.invoke import Invoker
from shared.errors import ConfigError

log = logging.getLogger("calsync.devhost")
# Short client-side limits: a stopped Azurite must not hold the dev host's shutdown for minutes.
_CLIENT_OPTIONS: dict[str, Any] = {"retry_total": 2, "connection_timeout": 5, "read_timeout": 30}


def connection_string(connection: str | None, settings: Mapping[str, str]) -> str:
    """The connection string a trigger's `connection` names, looked up as the host does."""
    name = connection or "AzureWebJobsStorage"
    for key in (name, f"AzureWebJobs{name}"):
        if settings.get(key, "").strip():
            return resolve_connection_string(settings[key])
    raise ConfigError(
        [
            f"app setting {name} (a storage connection string) is not set; the dev host needs one "
            "(identity-based connections run only in Azure)"
        ]
    )


def queue_client(conn: str, name: str) -> QueueClient:
    """A client that sends and receives message text as is (encoding is done here)."""
    return QueueClient.from_connection_string(conn, name, **_CLIENT_OPTIONS)


def encode(body: bytes, encoding: str) -> str:
    return base64.b64encode(body).decode("ascii") if encoding == "base64" else body.decode()


class QueueSender:
    """Writes queue output bindings after a function succeeded (creating queues as needed)."""

    def __init__(self, settings: Mapping[str, str], options: QueueOptions) -> None:
        self.settings = settings
        self.options = options

    async def __call__(self, output: QueueOutputSpec, value: Any) -> None:
        items = value if isinstance(value, list) else [value]
        bodies = [_to_bytes(item, output) for item in items]
        name = resolve_setting_refs(output.queue_name, self.settings, output.arg_name).lower()
        client = queue_client(connection_string(output.connection, self.settings), name)
        texts = [encode(b, self.options.message_encoding) for b in bodies]
        await asyncio.to_thread(_send_creating, client, texts)


def _to_bytes(item: Any, output: QueueOutputSpec) -> bytes:
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, bytes):
        return item
    if isinstance(item, func.QueueMessage):
        return item.get_body()
    raise TypeError(
        f"queue output {output.arg_name!r} got {type(item).__name__}; set str, bytes, "
        "func.QueueMessage or a list of them"
    )


def _send_creating(client: QueueClient, texts: list[str]) -> None:
    for text in texts:
        try:
            client.send_message(text)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            client.send_message(text)


class QueueListener:
    """Runs one queue-triggered function until stopped."""

    def __init__(
        self,
        spec: FunctionSpec,
        settings: Mapping[str, str],
        options: QueueOptions,
        invoker: Invoker,
    ) -> None:
        self.spec = spec
        self.options = options
        self.invoker = invoker
        self.name = resolve_setting_refs(spec.queue_name or "", settings, spec.name).lower()
        conn = connection_string(spec.connection, settings)
        self.queue = queue_client(conn, self.name)
        self.poison = queue_client(conn, f"{self.name}-poison")

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and dispatch; on stop, let running invocations finish."""
        opts = self.options
        delay = opts.min_polling_interval
        running: set[asyncio.Task[None]] = set()
        missing_logged = False
        while not stop.is_set():
            messages: list[QueueMessage] = []
            if len(running) <= opts.new_batch_threshold:
                try:
                    messages = await asyncio.to_thread(self._receive)
                except ResourceNotFoundError:
                    if not missing_logged:
                        log.warning("queue %r does not exist yet; polling until it does", self.name)
                        missing_logged = True
                except AzureError as exc:
                    log.warning("polling queue %r failed (%s); backing off", self.name, exc)
                    delay = opts.max_polling_interval
            for message in messages:
                task = asyncio.create_task(self._process(message))
                running.add(task)
                task.add_done_callback(running.discard)
            if messages:
                delay = opts.min_polling_interval
                continue
            waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait()), *running}
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters - running:
                waiter.cancel()
            delay = min(delay * 2, opts.max_polling_interval)
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def _receive(self) -> list[QueueMessage]:
        pager = self.queue.receive_messages(
            messages_per_page=self.options.batch_size,
            visibility_timeout=max(1, round(self.options.lease_seconds)),
        )
        return list(next(pager.by_page(), []))

    async def _process(self, message: QueueMessage) -> None:
        opts, count = self.options, int(message.dequeue_count or 1)
        try:
            if count > opts.max_dequeue_count:
                await self._to_poison(message)
                return
            try:
                body = _decode(str(message.content or ""), opts.message_encoding)
            except ValueError as exc:
                log.error(
                    "Message %s on queue %r cannot be decoded (%s); moving it to queue '%s'.",
                    message.id,
                    self.name,
                    exc,
                    self.poison.queue_name,
                )
                await self._to_poison(message, log_it=False)
                return
            trigger = TriggerMessage(  # type: ignore[no-untyped-call]  # untyped in the library
                id=message.id,
                body=body,
                dequeue_count=count,
                expiration_time=message.expires_on,
                insertion_time=message.inserted_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            try:
                await self.invoker.invoke(
                    self.spec, trigger, f"New queue message detected on '{self.name}'."
                )
            except Exception:
                if count >= opts.max_dequeue_count:
                    await self._to_poison(message)
                else:
                    await asyncio.to_thread(
                        self.queue.update_message,
                        message.id,
                        message.pop_receipt,
                        visibility_timeout=round(opts.visibility_timeout),
                    )
                return
            await asyncio.to_thread(self.queue.delete_message, message.id, message.pop_receipt)
        except AzureError as exc:  # the lease ran out, or storage went away: the host moves on
            log.warning("queue %r: could not settle message %s (%s)", self.name, message.id, exc)

    async def _to_poison(self, message: QueueMessage, log_it: bool = True) -> None:
        if log_it:
            log.warning(
                "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
                self.options.max_dequeue_count,
                self.poison.queue_name,
            )
        await asyncio.to_thread(_send_creating, self.poison, [str(message.content or "")])
        await asyncio.to_thread(self.queue.delete_message, message.id, message.pop_receipt)


def _decode(text: str, encoding: str) -> bytes:
    """The message body: base64-decoded (strictly, whitespace aside) or the text's UTF-8 bytes."""
    if encoding != "base64":
        return text.encode()
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not valid base64: {exc}") from None
