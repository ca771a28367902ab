"""The change feed over Azure Table Storage (azure-data-tables): the `changes` table, and the
`calendar-changes` queue (azure-storage-queue) for apps that bind to it.

Rows: PartitionKey = the mailbox partition (`tenant_user`), RowKey = the change's 20-digit
sequence, so a partition range query reads a mailbox's changes in order (the row form is
`change_rows`). Writing a change twice writes the same row (upsert by sequence): the relay may
repeat itself after a crash.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.change_rows import change_entity, change_of, queue_message
from shared.adapters.storage import StorageClients
from shared.adapters.tables import mapped_errors
from shared.core.entity import payload_size
from shared.core.feed import ChangeEvent, format_sequence
from shared.core.model import MailboxKey
from shared.core.reconcile import batch_operations
from shared.errors import StateConflict, StorageError
from shared.names import CHANGES_QUEUE, CHANGES_TABLE

log = logging.getLogger("calsync.feed")

PUBLISH_THREADS = 8  # within the storage clients' connection pool (10)


@functools.cache
def _publish_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=PUBLISH_THREADS, thread_name_prefix="calsync-publish")


HOURLY_PARTITION = "~hourly"  # changes per tenant and hour; no mailbox partition starts with "~"
COUNT_ATTEMPTS = 5


class ChangeLog:
    """Reads and writes the `changes` table and the `calendar-changes` queue."""

    def __init__(self, clients: StorageClients) -> None:
        self.table: TableClient = clients.table(CHANGES_TABLE)
        self._queue = clients.queue(CHANGES_QUEUE)

    def put(self, changes: Sequence[ChangeEvent]) -> None:
        """Write changes (any mailboxes) in batch transactions per mailbox."""
        by_partition: dict[str, list[dict[str, Any]]] = {}
        for change in changes:
            entity = change_entity(change, format_sequence(change.sequence))
            by_partition.setdefault(change.partition, []).append(entity)
        for partition, entities in by_partition.items():
            for batch in batch_operations(entities, size_of=payload_size):
                actions: list[Any] = [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in batch]
                with mapped_errors(f"writing changes of {partition}"):
                    self.table.submit_transaction(actions)

    def publish(self, changes: Sequence[ChangeEvent]) -> None:
        """Put each change on the `calendar-changes` queue, side by side (a Storage queue does
        not keep order anyway: consumers order a mailbox's changes by `sequence`)."""

        def send(change: ChangeEvent) -> None:
            try:
                self._queue.send_message(queue_message(change))
            except AzureError as exc:
                raise StorageError(
                    f"could not queue change {change.change_id} ({type(exc).__name__})"
                ) from None

        if len(changes) <= 1:
            for change in changes:
                send(change)
            return
        for _ in _publish_pool().map(send, changes):
            pass

    def read_after(self, key: MailboxKey, after: int = -1, limit: int = 100) -> list[ChangeEvent]:
        """Up to `limit` changes of a mailbox with a sequence above `after`, in order."""
        query = "PartitionKey eq @p"
        params: dict[str, Any] = {"p": key.partition}
        if after >= 0:
            query += " and RowKey gt @after"
            params["after"] = format_sequence(after)
        out: list[ChangeEvent] = []
        with mapped_errors(f"reading changes of {key.user_id}"):
            rows = self.table.query_entities(query, parameters=params, results_per_page=limit)
            for row in rows:
                out.append(change_of(row))
                if len(out) >= limit:
                    break
        return out

    def latest(self, key: MailboxKey) -> int:
        """The highest sequence stored for a mailbox (-1: none). Reads only keys."""
        last = -1
        with mapped_errors(f"reading changes of {key.user_id}"):
            rows = self.table.query_entities(
                "PartitionKey eq @p", parameters={"p": key.partition}, select=["RowKey"]
            )
            for row in rows:
                last = max(last, int(row["RowKey"]))
        return last

    def count(self, tenant_id: str, hour: datetime, n: int) -> None:
        """Add `n` to the tenant's count of changes in `hour` (the status page's chart):
        an ETag-guarded read-modify-write, retried when another host counted meanwhile."""
        row_key = f"{tenant_id}_{hour.strftime('%Y%m%d%H')}"
        for _ in range(COUNT_ATTEMPTS):
            try:
                with mapped_errors("counting changes"):
                    try:
                        row = self.table.get_entity(HOURLY_PARTITION, row_key)
                    except ResourceNotFoundError:
                        entity = {"PartitionKey": HOURLY_PARTITION, "RowKey": row_key}
                        self.table.create_entity(entity | {"count": n, "hour": hour})
                        return
                    self.table.update_entity(
                        {"PartitionKey": HOURLY_PARTITION, "RowKey": row_key}
                        | {"count": int(row.get("count", 0)) + n, "hour": hour},
                        mode=UpdateMode.MERGE,
                        etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                    return
            except StateConflict:
                continue
        log.warning("changes of %s in %s not counted: too many writers at once", tenant_id, hour)

    def hourly(self, since: datetime, until: datetime) -> dict[datetime, int]:
        """Changes per hour (every tenant) for the hours from `since` up to `until`."""
        out: dict[datetime, int] = {}
        with mapped_errors("reading the change counts"):
            rows = self.table.query_entities(
                "PartitionKey eq @p and hour ge @since and hour lt @until",
                parameters={"p": HOURLY_PARTITION, "since": since, "until": until},
                select=["hour", "count"],
            )
            for row in rows:
                hour = row["hour"]
                out[hour] = out.get(hour, 0) + int(row.get("count", 0))
        return out

    def prune(self, key: MailboxKey, before: datetime) -> int:
        """Delete a mailbox's changes that occurred before `before` (the retention); returns
        how many."""
        with mapped_errors(f"pruning changes of {key.user_id}"):
            rows = list(
                self.table.query_entities(
                    "PartitionKey eq @p and occurred_at lt @before",
                    parameters={"p": key.partition, "before": before},
                    select=["PartitionKey", "RowKey"],
                )
            )
            for batch in batch_operations(rows, size_of=lambda _: 200):
                self.table.submit_transaction([("delete", dict(r)) for r in batch])
        return len(rows)
