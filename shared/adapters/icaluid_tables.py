"""The iCalUId index over Azure Table Storage (azure-data-tables): the `icaluids` table, one
partition per tenant (keys and rules in shared.core.icaluid). Writes go in batch transactions
of at most 100 operations (one partition), falling back to one at a time when a batch fails;
storage errors become StorageError here only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.core import icaluid
from shared.errors import StorageError

BATCH = 100
_IN_FILTER = 14  # RowKeys per OR filter (Table queries allow 15 comparisons)


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except AzureError as exc:
        raise StorageError(f"{what}: Table storage failed ({type(exc).__name__})") from None


class TableIcalIndex:
    """The forward rows of one table; thread-safe like the SDK client."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def write(self, tenant_id: str, plan: icaluid.IndexPlan) -> None:
        part = icaluid.partition(tenant_id)
        ops: list[Any] = [("delete", {"PartitionKey": part, "RowKey": rk}) for rk in plan.deletes]
        ops += [
            ("upsert", {"PartitionKey": part, "RowKey": rk} | entity, {"mode": UpdateMode.REPLACE})
            for rk, entity in plan.upserts
        ]
        for i in range(0, len(ops), BATCH):
            batch = ops[i : i + BATCH]
            try:
                with _mapped("writing the iCalUId index"):
                    self._table.submit_transaction(batch)
            except StorageError:  # a delete of a row already gone fails the batch: one by one
                for op in batch:
                    with _mapped("writing the iCalUId index"):
                        if op[0] == "upsert":
                            self._table.upsert_entity(op[1], mode=UpdateMode.REPLACE)
                        else:
                            with contextlib.suppress(ResourceNotFoundError):
                                self._table.delete_entity(part, op[1]["RowKey"])

    def lookup(self, tenant_id: str, ical_uid: str) -> list[tuple[str, str]]:
        """(user id, event id) of every forward row of `ical_uid` in the tenant."""
        low, high = icaluid.forward_range(ical_uid)
        params = {"p": icaluid.partition(tenant_id), "lo": low, "hi": high}
        with _mapped("looking up an iCalUId"):
            rows = self._table.query_entities(
                "PartitionKey eq @p and RowKey ge @lo and RowKey lt @hi",
                parameters=params,
                select=["user_id", "event_id", "ical_uid"],
            )
            return [
                (str(r["user_id"]), str(r["event_id"])) for r in rows if r["ical_uid"] == ical_uid
            ]

    def drop(self, tenant_id: str, user_id: str, event_id: str, ical_uid: str) -> None:
        """Remove a stale forward row (the mirror no longer holds the event under this
        iCalUId)."""
        self.write(
            tenant_id, icaluid.IndexPlan(deletes=[icaluid.forward_row(ical_uid, user_id, event_id)])
        )
