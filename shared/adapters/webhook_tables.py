"""The webhook delivery's state over Azure Table Storage (azure-data-tables) and its work queue
(azure-storage-queue).

Tables:
- `webhooks`: PartitionKey "subscriber", RowKey the subscriber id; the subscriber and, in the
  `secret` column, its signing secret. Only `signing()` (the delivery worker's read) reads
  it; every other read selects the other columns, so a listing can never carry it.
- `deliveries`: PartitionKey the subscriber id, RowKey the mailbox partition (`tenant_user`):
  one `PairCursor` per pair, written only with its ETag (the lease is in it); and RowKey
  `~count~tenant_hour` (no mailbox partition starts with "~"): changes counted per tenant and
  hour, added in the transaction that moves a cursor past them (the status page's chart),
  deleted by the feed's retention prune.
- `deadletters`: PartitionKey the subscriber id, RowKey `partition~sequence`: a change whose
  delivery gave up, with the last error.
Queue `webhook-deliveries`: `WorkItem` JSON, base64 as the Functions queue trigger expects.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.queues import visibility_seconds
from shared.adapters.storage import StorageClients
from shared.adapters.tables import mapped_errors
from shared.core.feed import ChangeEvent, change_from_json, format_sequence
from shared.core.webhooks import Filter, PairCursor, Subscriber, WorkItem, decode_work_item
from shared.errors import InputError, NotFoundError, StateConflict, StorageError
from shared.names import DEADLETTERS_TABLE, DELIVERIES_TABLE, DELIVERY_QUEUE, WEBHOOKS_TABLE
from shared.redact import REDACTOR

log = logging.getLogger("calsync.webhooks")

SUBSCRIBER_PARTITION = "subscriber"
COUNT_PREFIX = "~count~"  # RowKey prefix of the change counts beside a partition's cursors
COUNT_ATTEMPTS = 8  # transactions tried while other pairs of the tenant count the same hour
_ID = re.compile(r"^[0-9a-f]{32}$")  # subscriber ids (uuid4 hex): safe as keys as they are


@dataclass(frozen=True)
class DeadLetter:
    row_key: str
    change: ChangeEvent
    error: str
    armed: bool


_SUBSCRIBER_COLUMNS = [
    "RowKey",
    "url",
    "filter",
    "description",
    "created_at",
    "enabled",
    "disabled_reason",
    "failing",
    "failing_since",
    "last_error",
    "last_delivered_at",
]


def _subscriber(entity: Any) -> Subscriber:
    data = json.loads(str(entity.get("filter") or "{}"))
    return Subscriber(
        id=str(entity["RowKey"]),
        url=str(entity.get("url", "")),
        filter=Filter(
            tuple(data.get("tenants", ())),
            tuple(data.get("mailboxes", ())),
            tuple(data.get("types", ())),
            tuple(data.get("excludeWriters", ())),
        ),
        description=str(entity.get("description", "")),
        created_at=entity.get("created_at"),
        enabled=bool(entity.get("enabled", True)),
        disabled_reason=str(entity.get("disabled_reason", "")),
        failing=bool(entity.get("failing", False)),
        failing_since=entity.get("failing_since") or None,
        last_error=str(entity.get("last_error", "")),
        last_delivered_at=entity.get("last_delivered_at") or None,
    )


def _cursor(entity: Any) -> PairCursor:
    status = entity.get("last_status")
    return PairCursor(
        subscriber_id=str(entity["PartitionKey"]),
        partition=str(entity["RowKey"]),
        delivered=int(entity.get("delivered", -1)),
        attempt=int(entity.get("attempt", 0)),
        next_at=entity.get("next_at") or None,
        lease_owner=str(entity.get("lease_owner", "")),
        lease_until=entity.get("lease_until") or None,
        last_error=str(entity.get("last_error", "")),
        last_status=int(status) if isinstance(status, int) and status else None,
        dead_letters=int(entity.get("dead_letters", 0)),
        etag=str(entity.metadata.get("etag", "")),
    )


class WebhookStore:
    """Subscribers, pair cursors, dead letters and the delivery queue."""

    def __init__(self, clients: StorageClients) -> None:
        self.subscribers: TableClient = clients.table(WEBHOOKS_TABLE)
        self.cursors: TableClient = clients.table(DELIVERIES_TABLE)
        self.dead: TableClient = clients.table(DEADLETTERS_TABLE)
        self._queue = clients.queue(DELIVERY_QUEUE)

    # --- subscribers ----------------------------------------------------------------------------
    def add(self, sub: Subscriber, secret: str) -> None:
        entity = {
            "PartitionKey": SUBSCRIBER_PARTITION,
            "RowKey": sub.id,
            "url": sub.url,
            "filter": json.dumps(sub.filter.to_json()),
            "description": sub.description,
            "created_at": sub.created_at,
            "enabled": True,
            "failing": False,
            "secret": secret,
        }
        with mapped_errors(f"adding webhook subscriber {sub.id}"):
            self.subscribers.create_entity(entity)

    def get(self, subscriber_id: str) -> Subscriber:
        if not _ID.match(subscriber_id):
            raise NotFoundError(
                f"webhook subscriber {subscriber_id[:40]!r} does not exist (ids are 32 hex "
                "digits); list them with GET /api/webhooks"
            )
        try:
            with mapped_errors(f"reading webhook subscriber {subscriber_id}"):
                entity = self.subscribers.get_entity(
                    SUBSCRIBER_PARTITION, subscriber_id, select=_SUBSCRIBER_COLUMNS
                )
        except (ResourceNotFoundError, ValueError):
            raise NotFoundError(
                f"webhook subscriber {subscriber_id!r} does not exist; list them with "
                "GET /api/webhooks"
            ) from None
        return _subscriber(entity)

    def all(self) -> list[Subscriber]:
        with mapped_errors("listing webhook subscribers"):
            rows = self.subscribers.query_entities(
                "PartitionKey eq @p",
                parameters={"p": SUBSCRIBER_PARTITION},
                select=_SUBSCRIBER_COLUMNS,
            )
            return [_subscriber(r) for r in rows]

    def signing(self, subscriber_id: str) -> tuple[Subscriber, str]:
        """The subscriber and its signing secret in one read (the secret registered with the
        log redactor)."""
        if not _ID.match(subscriber_id):
            raise NotFoundError(f"webhook subscriber {subscriber_id[:40]!r} does not exist")
        try:
            with mapped_errors(f"reading webhook subscriber {subscriber_id}"):
                entity = self.subscribers.get_entity(
                    SUBSCRIBER_PARTITION, subscriber_id, select=[*_SUBSCRIBER_COLUMNS, "secret"]
                )
        except (ResourceNotFoundError, ValueError):
            raise NotFoundError(f"webhook subscriber {subscriber_id!r} does not exist") from None
        value = str(entity.get("secret", ""))
        REDACTOR.register(value)
        return _subscriber(entity), value

    def update(self, subscriber_id: str, **changes: Any) -> None:
        """Merge these fields into the subscriber row (a removed subscriber stays removed)."""
        entity: dict[str, Any] = {"PartitionKey": SUBSCRIBER_PARTITION, "RowKey": subscriber_id}
        for name, value in changes.items():
            entity[name] = "" if value is None else value
        with (
            contextlib.suppress(ResourceNotFoundError),
            mapped_errors(f"updating webhook subscriber {subscriber_id}"),
        ):
            self.subscribers.update_entity(entity, mode=UpdateMode.MERGE)

    def remove(self, subscriber_id: str) -> None:
        """Delete the subscriber, its pair cursors and its dead letters."""
        self.get(subscriber_id)
        for table in (self.cursors, self.dead):
            with mapped_errors(f"removing the rows of webhook subscriber {subscriber_id}"):
                rows = list(
                    table.query_entities(
                        "PartitionKey eq @p",
                        parameters={"p": subscriber_id},
                        select=["PartitionKey", "RowKey"],
                    )
                )
                for row in rows:
                    with contextlib.suppress(ResourceNotFoundError):
                        table.delete_entity(row["PartitionKey"], row["RowKey"])
        with contextlib.suppress(ResourceNotFoundError), mapped_errors("removing a subscriber"):
            self.subscribers.delete_entity(SUBSCRIBER_PARTITION, subscriber_id)

    # --- pair cursors (ETag-guarded) ------------------------------------------------------------
    def cursor(self, subscriber_id: str, partition: str) -> PairCursor:
        """The pair's cursor; a fresh one (no ETag) when the pair has never been delivered."""
        try:
            with mapped_errors("reading a delivery cursor"):
                entity = self.cursors.get_entity(subscriber_id, partition)
        except ResourceNotFoundError:
            return PairCursor(subscriber_id, partition)
        return _cursor(entity)

    def cursors_of(self, subscriber_id: str | None = None) -> list[PairCursor]:
        """Every pair cursor (of one subscriber, or of all)."""
        with mapped_errors("listing delivery cursors"):
            if subscriber_id is None:
                rows = self.cursors.list_entities()
            else:
                rows = self.cursors.query_entities(
                    "PartitionKey eq @p", parameters={"p": subscriber_id}
                )
            return [_cursor(r) for r in rows if not str(r["RowKey"]).startswith(COUNT_PREFIX)]

    def save_cursor(
        self, cursor: PairCursor, counts: Mapping[tuple[str, datetime], int] | None = None
    ) -> PairCursor:
        """Write the cursor only if unchanged since read (ETag); StateConflict otherwise.
        `counts` ((tenant, hour) -> changes) are added to the counts kept in the cursor's
        partition in the same transaction: counted exactly when the cursor moves."""
        entity = _cursor_entity(cursor)
        if counts:
            return self._save_counted(cursor, entity, counts)
        with mapped_errors("saving a delivery cursor"):
            if cursor.etag:
                meta = self.cursors.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=cursor.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            else:
                meta = self.cursors.create_entity(entity)
        return replace(cursor, etag=str(meta.get("etag", "")))

    def _save_counted(
        self,
        cursor: PairCursor,
        entity: dict[str, Any],
        counts: Mapping[tuple[str, datetime], int],
    ) -> PairCursor:
        """The cursor and its counts in one transaction of the cursor's partition; a count row
        another pair changed meanwhile is read again and the transaction retried."""
        save: Any = (
            ("update", entity, _if_match(cursor.etag)) if cursor.etag else ("create", entity)
        )
        for _ in range(COUNT_ATTEMPTS):
            ops: list[Any] = [save]
            with mapped_errors("reading the change counts"):
                for (tenant_id, hour), n in sorted(counts.items()):
                    row_key = f"{COUNT_PREFIX}{tenant_id}_{hour.strftime('%Y%m%d%H')}"
                    try:
                        row = self.cursors.get_entity(cursor.subscriber_id, row_key)
                    except ResourceNotFoundError:
                        fresh = {"PartitionKey": cursor.subscriber_id, "RowKey": row_key}
                        ops.append(("create", fresh | {"count": n, "hour": hour}))
                        continue
                    total = {"count": int(row.get("count", 0)) + n, "hour": hour}
                    ops.append(("update", dict(row) | total, _if_match(str(row.metadata["etag"]))))
            try:
                with mapped_errors("saving a delivery cursor and its counts"):
                    answers = self.cursors.submit_transaction(ops)
                return replace(cursor, etag=str(answers[0].get("etag", "")))
            except (StorageError, StateConflict):
                # Which operation failed: the cursor (another host moved it) or a count row
                # (another pair of the tenant counted first: read it again).
                if self.cursor(cursor.subscriber_id, cursor.partition).etag != cursor.etag:
                    raise StateConflict(
                        "saving a delivery cursor: changed by someone else"
                    ) from None
        log.warning("changes of %s not counted: too many writers at once", cursor.partition)
        return self.save_cursor(cursor)

    def counts(self, subscriber_id: str, since: datetime, until: datetime) -> dict[datetime, int]:
        """Changes per hour (every tenant) counted in the partition, from `since` to `until`."""
        out: dict[datetime, int] = {}
        with mapped_errors("reading the change counts"):
            rows = self.cursors.query_entities(
                "PartitionKey eq @p and RowKey ge @lo and RowKey lt @hi "
                "and hour ge @since and hour lt @until",
                parameters={
                    "p": subscriber_id,
                    "lo": COUNT_PREFIX,
                    "hi": COUNT_PREFIX + "~",
                    "since": since,
                    "until": until,
                },
                select=["hour", "count"],
            )
            for row in rows:
                hour = row["hour"]
                out[hour] = out.get(hour, 0) + int(row.get("count", 0))
        return out

    def prune_counts(self, subscriber_id: str, before: datetime) -> int:
        """Delete the partition's change counts of the hours before `before`; how many."""
        with mapped_errors("pruning the change counts"):
            rows = list(
                self.cursors.query_entities(
                    "PartitionKey eq @p and RowKey ge @lo and RowKey lt @hi and hour lt @before",
                    parameters={
                        "p": subscriber_id,
                        "lo": COUNT_PREFIX,
                        "hi": COUNT_PREFIX + "~",
                        "before": before,
                    },
                    select=["PartitionKey", "RowKey"],
                )
            )
            for start in range(0, len(rows), 100):  # a transaction holds 100 operations
                batch = rows[start : start + 100]
                self.cursors.submit_transaction([("delete", dict(r)) for r in batch])
        return len(rows)

    # --- dead letters ---------------------------------------------------------------------------
    # A row is a dead letter (`replay` false) or a change armed for redelivery (`replay` true:
    # the pair's worker sends armed rows before its next new change, and drops each delivered).
    def dead_letter(
        self, subscriber_id: str, change: ChangeEvent, error: str, *, replay: bool = False
    ) -> None:
        entity = {
            "PartitionKey": subscriber_id,
            "RowKey": f"{change.partition}~{format_sequence(change.sequence)}",
            "change": json.dumps(change.to_json(), separators=(",", ":")),
            "error": error[:2000],
            "replay": replay,
        }
        with mapped_errors("writing a dead letter"):
            self.dead.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def dead_letters(
        self, subscriber_id: str, partition: str | None = None, *, armed: bool | None = None
    ) -> list[DeadLetter]:
        """The subscriber's dead letters (of one mailbox partition; armed or not), in feed
        order."""
        query, params = "PartitionKey eq @p", {"p": subscriber_id}
        if partition is not None:
            query += " and RowKey gt @low and RowKey lt @high"
            params |= {"low": f"{partition}~", "high": f"{partition}~~"}
        out = []
        with mapped_errors("reading dead letters"):
            for row in self.dead.query_entities(query, parameters=params):
                if armed is not None and bool(row.get("replay", False)) != armed:
                    continue
                try:
                    change = change_from_json(json.loads(str(row.get("change", ""))))
                except (ValueError, InputError):
                    continue
                out.append(
                    DeadLetter(
                        str(row["RowKey"]),
                        change,
                        str(row.get("error", "")),
                        bool(row.get("replay", False)),
                    )
                )
        return out

    def drop_dead_letter(self, subscriber_id: str, row_key: str) -> None:
        with contextlib.suppress(ResourceNotFoundError), mapped_errors("dropping a dead letter"):
            self.dead.delete_entity(subscriber_id, row_key)

    # --- the work queue -------------------------------------------------------------------------
    def enqueue(self, item: WorkItem, *, delay: float = 0.0) -> None:
        text = json.dumps(item.to_json(), separators=(",", ":"))
        try:
            self._queue.send_message(text, visibility_timeout=visibility_seconds(delay))
        except AzureError as exc:
            raise StorageError(
                f"could not queue a delivery for subscriber {item.subscriber_id} "
                f"({type(exc).__name__})"
            ) from None


def decode_item(body: bytes | str) -> WorkItem:
    """A delivery queue message body as a WorkItem; InputError when it is not one."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except ValueError:
        raise InputError("a delivery work item is not JSON") from None
    return decode_work_item(data)


def _if_match(etag: str) -> dict[str, Any]:
    return {
        "mode": UpdateMode.REPLACE,
        "etag": etag,
        "match_condition": MatchConditions.IfNotModified,
    }


def _cursor_entity(cursor: PairCursor) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": cursor.subscriber_id,
        "RowKey": cursor.partition,
        "delivered": cursor.delivered,
        "attempt": cursor.attempt,
        "lease_owner": cursor.lease_owner,
        "last_error": cursor.last_error,
        "last_status": cursor.last_status or 0,
        "dead_letters": cursor.dead_letters,
    }
    for name in ("next_at", "lease_until"):
        value = getattr(cursor, name)
        if value is not None:
            entity[name] = value
    return entity
