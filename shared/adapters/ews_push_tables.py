"""azure-data-tables: the push subscription of each EWS mailbox (table `ewspush`).

Rule: one row per mailbox (PartitionKey the mailbox's partition, RowKey `push`): the EWS
SubscriptionId, the last watermark seen, when it was made and when Exchange was last heard
from (a notification or a keep-alive). Storage failures are StorageError, as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.core.model import MailboxKey
from shared.errors import StorageError

EWS_PUSH_TABLE = "ewspush"
_ROW = "push"


@dataclass(frozen=True)
class PushRecord:
    subscription_id: str
    watermark: str
    subscribed_at: datetime
    last_seen: datetime


class PushTable:
    def __init__(self, table: Any) -> None:
        self._table = table  # an azure.data.tables TableClient

    def ensure(self) -> None:
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            self._table.create_table()
        except ResourceExistsError:
            pass
        except AzureError as exc:
            raise StorageError(f"creating table {EWS_PUSH_TABLE} failed: {exc}") from None

    def get(self, key: MailboxKey) -> PushRecord | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            row = self._table.get_entity(key.partition, _ROW)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageError(f"reading the push subscription of {key.user_id}: {exc}") from None
        return PushRecord(
            str(row["subscription_id"]),
            str(row.get("watermark", "")),
            row["subscribed_at"],
            row["last_seen"],
        )

    def put(self, key: MailboxKey, record: PushRecord) -> None:
        from azure.core.exceptions import AzureError
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": key.partition,
            "RowKey": _ROW,
            "subscription_id": record.subscription_id,
            "watermark": record.watermark,
            "subscribed_at": record.subscribed_at,
            "last_seen": record.last_seen,
        }
        try:
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as exc:
            raise StorageError(f"storing the push subscription of {key.user_id}: {exc}") from None
