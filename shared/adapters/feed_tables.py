"""The change feed over Azure Table Storage (azure-data-tables) and the `calendar-changes`
queue (azure-storage-queue) for apps that bind to it.

The feed's durable log is the mailbox's change rows in its `events` partition: RowKey
`~o~` + the change's 20-digit sequence (`TableState.apply_changes` writes them in the same
transaction as the mirror change, so a range query reads a mailbox's changes in order, gapless,
and a change exists exactly when its mirror change landed). Nothing copies or removes them but
the retention prune. The row form is `change_rows`. A purged mailbox (its mailbox row gone)
keeps its change rows for their retention: a row of partition `~removed` in the `changes` table
remembers it for the prune and for `GET .../changes` until they are past it.

Besides those `~removed` rows, the `changes` table holds what an earlier version wrote there,
read only: its counts of changes per tenant and hour (the status page's chart adds them to
today's, which webhook_tables keeps beside the queue's cursors) and the rows it copied there
(PartitionKey the mailbox partition, RowKey the sequence): a read whose range starts before
the first change row of the partition is filled from them, and the prune deletes them as they
age. Once a read has found where they end (for most mailboxes: that there are none), later
reads of the partition no longer ask that table.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.change_rows import change_of, queue_message
from shared.adapters.storage import StorageClients
from shared.adapters.tables import LOG_PREFIX, SEQUENCE_ROW, mapped_errors
from shared.core.feed import ChangeEvent, format_sequence
from shared.core.model import MailboxKey
from shared.core.reconcile import batch_operations
from shared.errors import StorageError
from shared.names import CHANGES_QUEUE, CHANGES_TABLE, EVENTS_TABLE

log = logging.getLogger("calsync.feed")

PUBLISH_THREADS = 8  # within the storage clients' connection pool (10)


@functools.cache
def _publish_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=PUBLISH_THREADS, thread_name_prefix="calsync-publish")


HOURLY_PARTITION = "~hourly"  # changes per tenant and hour; no mailbox partition starts with "~"
REMOVED_PARTITION = "~removed"  # purged mailboxes whose change rows await the retention prune


def _log_key(sequence: int) -> str:
    return LOG_PREFIX + format_sequence(sequence)


class ChangeLog:
    """Reads the change rows of the `events` partitions (and what an earlier version left in
    the `changes` table) and sends changes to the `calendar-changes` queue."""

    def __init__(self, clients: StorageClients) -> None:
        self.table: TableClient = clients.table(CHANGES_TABLE)
        self.events: TableClient = clients.table(EVENTS_TABLE)
        self._queue = clients.queue(CHANGES_QUEUE)
        # partition -> a sequence above which the `changes` table holds no earlier copy of
        # the partition's changes (learnt by a read; spares the table for every later read).
        self._legacy_clear: dict[str, int] = {}

    def publish(self, changes: Sequence[ChangeEvent]) -> None:
        """Put each change on the `calendar-changes` queue, side by side (a Storage queue does
        not keep order anyway: consumers order a mailbox's changes by `sequence`); returns once
        every one is on the queue, StorageError when any could not be sent."""

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
        out: list[ChangeEvent] = []
        with mapped_errors(f"reading changes of {key.user_id}"):
            rows = self.events.query_entities(
                "PartitionKey eq @p and RowKey gt @lo and RowKey lt @hi",
                parameters={
                    "p": key.partition,
                    "lo": _log_key(after) if after >= 0 else LOG_PREFIX,
                    "hi": LOG_PREFIX + "~",
                },
                results_per_page=limit,
            )
            for row in rows:
                out.append(change_of(row))
                if len(out) >= limit:
                    break
        if out and out[0].sequence == after + 1:
            return out  # the common case: the log goes on right after the cursor
        # Older changes may be rows an earlier version copied to the `changes` table, unless
        # this process already knows that none lie above `after` there.
        clear = self._legacy_clear.get(key.partition)
        if clear is not None and after >= clear:
            return out
        if clear is None and after >= 0 and not self._legacy_after(key, -1, None, 1):
            self._legacy_clear[key.partition] = -1  # none at all (most mailboxes)
            return out
        first = out[0].sequence if out else None
        older = self._legacy_after(key, after, first, limit)
        if len(older) < limit:
            # That range is read to its end: no earlier copy lies above its last row (or
            # `after`). Nothing adds such rows any more (the prune only removes them) and they
            # all predate the log, so the fact holds for every later read.
            top = older[-1].sequence if older else after
            self._legacy_clear[key.partition] = min(top, clear if clear is not None else top)
        return (older + out)[:limit]

    def _legacy_after(
        self, key: MailboxKey, after: int, below: int | None, limit: int
    ) -> list[ChangeEvent]:
        query = "PartitionKey eq @p"
        params: dict[str, Any] = {"p": key.partition}
        if after >= 0:
            query += " and RowKey gt @after"
            params["after"] = format_sequence(after)
        if below is not None:
            query += " and RowKey lt @below"
            params["below"] = format_sequence(below)
        out: list[ChangeEvent] = []
        with mapped_errors(f"reading earlier changes of {key.user_id}"):
            rows = self.table.query_entities(query, parameters=params, results_per_page=limit)
            for row in rows:
                out.append(change_of(row))
                if len(out) >= limit:
                    break
        return out

    def latest(self, key: MailboxKey) -> int:
        """The highest sequence of a mailbox (-1: none): one point read of its sequence row."""
        try:
            with mapped_errors(f"reading the change sequence of {key.user_id}"):
                row = self.events.get_entity(key.partition, SEQUENCE_ROW)
        except ResourceNotFoundError:
            return -1
        return int(row.get("last", "-1"))

    def first_after(self, key: MailboxKey, after: int) -> int | None:
        """The sequence of the mailbox's first change row above `after` (keys only), or None."""
        with mapped_errors(f"reading changes of {key.user_id}"):
            rows = self.events.query_entities(
                "PartitionKey eq @p and RowKey gt @lo and RowKey lt @hi",
                parameters={
                    "p": key.partition,
                    "lo": _log_key(after) if after >= 0 else LOG_PREFIX,
                    "hi": LOG_PREFIX + "~",
                },
                select=["RowKey"],
                results_per_page=1,
            )
            row = next(iter(rows), None)
        return int(str(row["RowKey"])[len(LOG_PREFIX) :]) if row is not None else None

    def hourly(self, since: datetime, until: datetime) -> dict[datetime, int]:
        """Changes per hour (every tenant) an earlier version counted, from `since` to `until`."""
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

    def note_removed(self, key: MailboxKey, upn: str, at: datetime) -> None:
        """Remember a mailbox whose mailbox row goes (a purge) while its change rows stay for
        their retention: the prune and `GET .../changes` find them through this row."""
        entity: dict[str, Any] = {"PartitionKey": REMOVED_PARTITION, "RowKey": key.partition}
        entity |= {"tenant_id": key.tenant_id, "label": key.label, "upn": upn, "removed_at": at}
        with mapped_errors(f"noting the removal of {key.user_id}"):
            self.table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def removed(self) -> list[tuple[MailboxKey, str, datetime]]:
        """(key, UPN, removed at) of every purged mailbox whose change rows may remain."""
        with mapped_errors("listing removed mailboxes"):
            rows = self.table.query_entities(
                "PartitionKey eq @p", parameters={"p": REMOVED_PARTITION}
            )
            return [
                (
                    MailboxKey.from_label(str(r["tenant_id"]), str(r["label"])),
                    str(r.get("upn", "")),
                    r["removed_at"],
                )
                for r in rows
            ]

    def forget_removed(self, key: MailboxKey) -> None:
        """Drop the row `note_removed` wrote (its changes are past retention, or the mailbox
        is enrolled again)."""
        with mapped_errors(f"forgetting the removal of {key.user_id}"):
            self.table.delete_entity(REMOVED_PARTITION, key.partition)  # none: no error

    def prune(self, key: MailboxKey, before: datetime) -> int:
        """Delete a mailbox's changes that occurred before `before` (the retention), from its
        change rows and from the earlier copies; returns how many."""
        pruned = 0
        with mapped_errors(f"pruning changes of {key.user_id}"):
            rows = list(
                self.events.query_entities(
                    "PartitionKey eq @p and RowKey gt @lo and RowKey lt @hi "
                    "and occurred_at lt @before",
                    parameters={
                        "p": key.partition,
                        "lo": LOG_PREFIX,
                        "hi": LOG_PREFIX + "~",
                        "before": before,
                    },
                    select=["PartitionKey", "RowKey"],
                )
            )
            for batch in batch_operations(rows, size_of=lambda _: 200):
                self.events.submit_transaction([("delete", dict(r)) for r in batch])
            pruned += len(rows)
            rows = list(
                self.table.query_entities(
                    "PartitionKey eq @p and occurred_at lt @before",
                    parameters={"p": key.partition, "before": before},
                    select=["PartitionKey", "RowKey"],
                )
            )
            for batch in batch_operations(rows, size_of=lambda _: 200):
                self.table.submit_transaction([("delete", dict(r)) for r in batch])
            pruned += len(rows)
        return pruned
