"""The operations log over Azure Table Storage (azure-data-tables), written off the hot paths.

`record` only appends to a bounded in-memory buffer (never blocks, never raises); a daemon thread
flushes it every FLUSH_SECONDS in batch transactions of up to 100 rows per partition. A crash
loses at most the last few seconds of records, and a storage failure loses the batch (logged,
rate-limited); neither ever fails or slows the request that was logged. Keys and shapes are
`shared.core.oplog`'s.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.core import oplog
from shared.errors import StorageError

log = logging.getLogger("calsync.oplog")

FLUSH_SECONDS = 1.0
MAX_BUFFER = 20_000  # past it the oldest records are dropped, never the caller blocked
BATCH = 100  # Table Storage's limit per transaction
MAX_SCAN_PER_DAY = 5_000  # rows read per day of a query before sorting
_COMPLAINT_SECONDS = 60.0


class TableOpLog:
    """The log port: record (buffered), flush, query, prune, and the credential status row."""

    def __init__(self, table: TableClient, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._table = table
        self._flush_seconds = flush_seconds
        self._buffer: deque[oplog.LogRecord] = deque(maxlen=MAX_BUFFER)
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._complained = 0.0
        self.dropped = 0

    # --- writing ---------------------------------------------------------------------------
    def record(self, *records: oplog.LogRecord) -> None:
        """Buffer records for the background flush: O(1), never raises."""
        try:
            overflow = len(self._buffer) + len(records) - MAX_BUFFER
            if overflow > 0:  # the deque drops the oldest: count them as lost
                self.dropped += overflow
            self._buffer.extend(records)
            if self._thread is None and not self._closed:
                self._start()
        except Exception:
            self.dropped += len(records)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="calsync-oplog", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write what is buffered now; the number of rows written. Failures are logged."""
        with self._flush_lock:
            taken: list[oplog.LogRecord] = []
            while self._buffer:
                try:
                    taken.append(self._buffer.popleft())
                except IndexError:
                    break
            if not taken:
                return 0
            by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for record in taken:
                try:
                    entity = oplog.to_entity(record, secrets.token_hex(4))
                except Exception:
                    self.dropped += 1
                    continue
                by_partition[entity["PartitionKey"]].append(entity)
            written = 0
            for rows in by_partition.values():
                for start in range(0, len(rows), BATCH):
                    chunk = rows[start : start + BATCH]
                    try:
                        self._table.submit_transaction([("upsert", e) for e in chunk])
                        written += len(chunk)
                    except Exception as exc:
                        self.dropped += len(chunk)
                        self._complain(exc)
            return written

    def _complain(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._complained >= _COMPLAINT_SECONDS:
            self._complained = now
            log.warning(
                "operations log: a batch could not be written (%s); %d record(s) dropped so far",
                type(exc).__name__,
                self.dropped,
            )

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()

    # --- reading ---------------------------------------------------------------------------
    def query(self, plan: oplog.LogQuery) -> list[dict[str, Any]]:
        """The newest `plan.top` rows matching the plan, newest first, as the API shows them."""
        found: list[dict[str, Any]] = []
        for day in plan.days:
            text = (
                "PartitionKey ge @low and PartitionKey lt @high "
                "and RowKey ge @rlow and RowKey lt @rhigh"
            )
            params: dict[str, Any] = {
                "low": day.low,
                "high": day.high,
                "rlow": day.row_low,
                "rhigh": day.row_high,
            }
            if plan.direction:
                text += " and direction eq @direction"
                params["direction"] = plan.direction
            rows: list[dict[str, Any]] = []
            try:
                for entity in self._table.query_entities(text, parameters=params):
                    rows.append(dict(entity) | {"RowKey": entity["RowKey"]})
                    if len(rows) >= MAX_SCAN_PER_DAY:
                        break
            except AzureError as exc:
                raise StorageError(
                    f"reading the operations log failed ({type(exc).__name__})"
                ) from None
            rows.sort(key=lambda e: str(e["RowKey"]))  # inverted stamps: newest first
            found += [oplog.view(e) for e in rows[: plan.top - len(found)]]
            if len(found) >= plan.top:
                break
        return found

    def prune(self, bound: str) -> int:
        """Delete every day partition below `bound` (older than the retention); rows deleted."""
        deleted = 0
        try:
            rows = self._table.query_entities(
                "PartitionKey lt @bound",
                parameters={"bound": bound},
                select=["PartitionKey", "RowKey"],
            )
            by_partition: dict[str, list[str]] = defaultdict(list)
            for entity in rows:
                by_partition[entity["PartitionKey"]].append(entity["RowKey"])
            for partition, keys in by_partition.items():
                for start in range(0, len(keys), BATCH):
                    chunk = keys[start : start + BATCH]
                    ops: Iterable[Any] = [
                        ("delete", {"PartitionKey": partition, "RowKey": k}) for k in chunk
                    ]
                    self._table.submit_transaction(list(ops))
                    deleted += len(chunk)
        except AzureError as exc:
            raise StorageError(
                f"pruning the operations log failed ({type(exc).__name__})"
            ) from None
        return deleted

    # --- the credential status row ---------------------------------------------------------
    def put_status(self, row: str, values: dict[str, Any]) -> None:
        entity = {"PartitionKey": oplog.STATUS_PARTITION, "RowKey": row}
        entity |= {k: ("" if v is None else v) for k, v in values.items()}
        try:
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as exc:
            raise StorageError(f"saving the {row} status failed ({type(exc).__name__})") from None

    def get_status(self, row: str) -> dict[str, Any] | None:
        try:
            entity = self._table.get_entity(oplog.STATUS_PARTITION, row)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageError(f"reading the {row} status failed ({type(exc).__name__})") from None
        return {k: v for k, v in dict(entity).items() if k not in ("PartitionKey", "RowKey")}
