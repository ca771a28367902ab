"""azure-data-tables: the subscription-write budget all hosts share, one row per tenant and slot
(`pacing` table: PartitionKey the tenant, RowKey the slot's number, `used` the tokens given
out). A reservation reads the row and writes it back with its ETag, so two hosts reserving at
once never both get the last tokens: the loser reads again. core.renewals.SlotBudget decides
how many a reservation gets. The same table keeps, per tenant, where the orphan check's paging
of Graph's subscription list stands (RowKey `orphan-sweep`, after every slot's number in text
order, so the prune never takes it)."""

from __future__ import annotations

from collections.abc import Callable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.tables import mapped_errors
from shared.core.reconcile import batch_operations
from shared.errors import StateConflict

ATTEMPTS = 16  # hosts racing for one row: each lost race means another got its block
SWEEP_ROW = "orphan-sweep"


def slot_key(slot: int) -> str:
    """A slot's RowKey: its number as 14 digits, so text order is time order."""
    return f"{slot:014d}"


class PacingTable:
    """Token reservations per (tenant, slot), ETag-guarded."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    def reserve(self, tenant_id: str, slot: int, grant: Callable[[int], int]) -> int:
        """Tokens reserved in the tenant's slot: `grant(used)` of them, written with the ETag
        read (0 when the slot is spent). StateConflict after ATTEMPTS lost races."""
        row = slot_key(slot)
        with mapped_errors("reserving subscription writes"):
            for _ in range(ATTEMPTS):
                try:
                    entity = self.table.get_entity(tenant_id, row)
                except ResourceNotFoundError:
                    granted = grant(0)
                    if granted == 0:
                        return 0
                    try:
                        self.table.create_entity(
                            {"PartitionKey": tenant_id, "RowKey": row, "used": granted}
                        )
                    except ResourceExistsError:
                        continue  # another host made the row first: read it
                    return granted
                used = int(entity.get("used", 0))
                granted = grant(used)
                if granted == 0:
                    return 0
                try:
                    self.table.update_entity(
                        {"PartitionKey": tenant_id, "RowKey": row, "used": used + granted},
                        mode=UpdateMode.REPLACE,
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                except ResourceModifiedError:
                    continue  # another host reserved meanwhile: read again
                return granted
        raise StateConflict(f"the subscription-write budget of {tenant_id} is contended; retry")

    def sweep_position(self, tenant_id: str) -> str:
        """The next link the tenant's orphan check resumes from ("" for the list's start)."""
        with mapped_errors("reading the orphan check's position"):
            try:
                entity = self.table.get_entity(tenant_id, SWEEP_ROW)
            except ResourceNotFoundError:
                return ""
        return str(entity.get("nextLink", ""))

    def save_sweep_position(self, tenant_id: str, next_link: str) -> None:
        """Store where the tenant's orphan check resumes (last writer wins: two hosts checking
        at once list the same pages, and deleting an orphan twice is harmless)."""
        with mapped_errors("storing the orphan check's position"):
            self.table.upsert_entity(
                {"PartitionKey": tenant_id, "RowKey": SWEEP_ROW, "nextLink": next_link},
                mode=UpdateMode.REPLACE,
            )

    def prune(self, before_slot: int) -> int:
        """Delete every tenant's rows of slots before `before_slot`; the number deleted."""
        deleted = 0
        with mapped_errors("pruning the subscription-write budget"):
            old = list(
                self.table.query_entities(
                    "RowKey lt @row",
                    parameters={"row": slot_key(before_slot)},
                    select=["PartitionKey", "RowKey"],
                )
            )
            by_tenant: dict[str, list[str]] = {}
            for e in old:
                by_tenant.setdefault(str(e["PartitionKey"]), []).append(str(e["RowKey"]))
            for tenant, rows in by_tenant.items():
                for batch in batch_operations(rows, size_of=lambda _: 200):
                    self.table.submit_transaction(
                        [("delete", {"PartitionKey": tenant, "RowKey": r}) for r in batch]
                    )
                    deleted += len(batch)
        return deleted
