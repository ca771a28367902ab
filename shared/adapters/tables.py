"""The state store over Azure Table Storage (azure-data-tables): mailboxes, subscriptions,
cursors (ETag-guarded lease) and mirrored events (batched transactions per partition).

Keys: Graph ids are encoded with core.keys before they become RowKeys. The SDK's errors are
mapped to shared.errors in `mapped_errors` only.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.adapters.change_rows import BATCH_SHARE, change_entity
from shared.adapters.pools import io_pool
from shared.adapters.storage import StorageClients
from shared.core.entity import payload_size
from shared.core.feed import ChangeEvent, change_id, format_sequence
from shared.core.keys import decode_key, encode_key
from shared.core.model import (
    MailboxKey,
    MirrorEvent,
    PlannedChange,
    StoredVersion,
    SubscriptionRecord,
    Window,
)
from shared.core.options import options_to_dict, parse_options
from shared.core.reconcile import batch_operations
from shared.core.state import CursorRecord, MailboxRecord, MailboxStatus
from shared.errors import NotFoundError, StateConflict, StorageError
from shared.names import CURSORS_TABLE, EVENTS_TABLE, MAILBOXES_TABLE, SUBSCRIPTIONS_TABLE, TABLES

CALENDAR_ROW = "calendar"  # one cursor per mailbox: the default calendar
# A mailbox's events partition also holds its change sequence and its change log (the change
# feed's rows, feed_tables): RowKeys from "~" below U+00A0, which no encoded id takes
# (core.keys). Queries of events read the two key ranges around them (EVENT_RANGES): a range
# each, so the service never scans the change rows (kept CHANGES_RETENTION_DAYS) to skip them.
SEQUENCE_ROW = "~seq"
MAX_KEYS_PER_QUERY = 14  # RowKeys `or`ed in one filter beside the PartitionKey: 15 comparisons
LOG_PREFIX = "~o~"  # + the 20-digit sequence ("o": these rows began as an outbox)
EVENT_RANGES = ("RowKey lt '~'", "RowKey ge '\u00a0'")
_VERSION_COLUMNS = (
    "change_key",
    "content_hash",
    "field_digests",
    "series_master_id",
    "ical_uid",
    "type",
    "hidden",
)
_META = {"PartitionKey", "RowKey", "Timestamp", "etag"}


@contextlib.contextmanager
def mapped_errors(what: str) -> Iterator[None]:
    """Map the SDK's storage errors to StorageError/StateConflict, naming the operation."""
    try:
        yield
    except ResourceNotFoundError:
        raise  # callers that can meet a missing row handle it; it means "absent", not "failed"
    except (ResourceModifiedError, ResourceExistsError) as exc:
        raise StateConflict(f"{what}: changed by someone else ({type(exc).__name__})") from None
    except TableTransactionError as exc:
        raise StorageError(f"{what}: batch failed ({type(exc).__name__}); retried later") from None
    except AzureError as exc:
        raise StorageError(f"{what}: Table storage failed ({type(exc).__name__})") from None


def _plain_time(value: datetime) -> datetime:
    """A stored instant as a plain aware `datetime`: the SDK reads `TablesEntityDatetime`, a
    subclass that clients checking the exact type (exchangelib) refuse."""
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=value.tzinfo or UTC,
    )


class TableState:
    """All the app's Table state; one instance per process, thread-safe like the SDK clients."""

    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients
        self.mailboxes: TableClient = clients.table(MAILBOXES_TABLE)
        self.subscriptions: TableClient = clients.table(SUBSCRIPTIONS_TABLE)
        self.cursors: TableClient = clients.table(CURSORS_TABLE)
        self.events: TableClient = clients.table(EVENTS_TABLE)
        # partition -> (last sequence, ETag) as this process's last transaction left the
        # sequence row: the next write starts from it instead of reading the row again. A stale
        # entry (another writer came between) fails the ETag and is read afresh.
        self._sequences: dict[str, tuple[int, str]] = {}
        self._sequences_lock = threading.Lock()

    def ensure(self) -> None:
        """Create the tables if missing (idempotent; runs once per process)."""
        with mapped_errors("creating tables"):
            for name in TABLES:
                self._clients.tables.create_table_if_not_exists(name)

    # --- mailboxes -------------------------------------------------------------------------------
    def put_mailbox(self, record: MailboxRecord) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": record.key.tenant_id,
            "RowKey": record.key.label,
            "upn": record.upn,
            "enabled": record.enabled,
            "options": json.dumps(options_to_dict(record.options)),
        }
        if record.enrolled_at:
            entity["enrolled_at"] = record.enrolled_at
        if record.key.calendar:
            entity["calendar_id"], entity["calendar_name"] = (
                record.calendar_id,
                record.calendar_name,
            )
        for f in fields(MailboxStatus):
            value = getattr(record.status, f.name)
            if value is not None:
                entity[f"status_{f.name}"] = value
        with mapped_errors(f"saving mailbox {record.key.label}"):
            self.mailboxes.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def update_status(self, key: MailboxKey, **changes: Any) -> None:
        """Merge just these status fields into the mailbox row, so that writers of different
        fields (a sync round, the renewal timer, the intake) never undo each other. A cleared
        value is stored as "" (Table Storage has no null). A removed mailbox stays removed."""
        entity: dict[str, Any] = {"PartitionKey": key.tenant_id, "RowKey": key.label}
        for name, value in changes.items():
            entity[f"status_{name}"] = "" if value is None else value
        with contextlib.suppress(ResourceNotFoundError), mapped_errors("updating a mailbox status"):
            self.mailboxes.update_entity(entity, mode=UpdateMode.MERGE)

    def get_mailbox(self, key: MailboxKey) -> MailboxRecord:
        try:
            with mapped_errors(f"reading mailbox {key.label}"):
                entity = self.mailboxes.get_entity(key.tenant_id, key.label)
        except ResourceNotFoundError:
            raise NotFoundError(
                f"mailbox {key.label} of tenant {key.tenant_id} is not enrolled"
            ) from None
        return _mailbox(entity)

    def find_mailbox(self, key: MailboxKey) -> MailboxRecord | None:
        try:
            return self.get_mailbox(key)
        except NotFoundError:
            return None

    def list_mailboxes(self, tenant_id: str | None = None) -> list[MailboxRecord]:
        with mapped_errors("listing mailboxes"):
            if tenant_id:
                rows: Iterable[Any] = self.mailboxes.query_entities(
                    "PartitionKey eq @t", parameters={"t": tenant_id}
                )
            else:
                rows = self.mailboxes.list_entities()
            return [_mailbox(e) for e in rows]

    def delete_mailbox(self, key: MailboxKey) -> None:
        with mapped_errors(f"deleting mailbox {key.label}"):
            self.mailboxes.delete_entity(key.tenant_id, key.label)

    # --- subscriptions ---------------------------------------------------------------------------
    def put_subscription(self, sub: SubscriptionRecord) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": sub.tenant_id,
            "RowKey": encode_key(sub.subscription_id),
            "user_id": sub.user_id,
            "calendar": sub.calendar,
            "resource": sub.resource,
            "expiration": sub.expiration,
            "client_state_digest": sub.client_state_digest,
        }
        if sub.last_renewed:
            entity["last_renewed"] = sub.last_renewed
        if sub.last_reauthorized:
            entity["last_reauthorized"] = sub.last_reauthorized
        if sub.last_lifecycle_event and sub.last_lifecycle_at:
            entity["last_lifecycle_event"] = sub.last_lifecycle_event
            entity["last_lifecycle_at"] = sub.last_lifecycle_at
        with mapped_errors(f"saving subscription {sub.subscription_id}"):
            self.subscriptions.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def mark_lifecycle(self, sub: SubscriptionRecord, event: str, at: datetime) -> bool:
        """Record lifecycle `event` as acted on at `at`, only if `sub`'s row is unchanged since it
        was read (its ETag); False when another writer came first (or the row is gone)."""
        entity = {
            "PartitionKey": sub.tenant_id,
            "RowKey": encode_key(sub.subscription_id),
            "last_lifecycle_event": event,
            "last_lifecycle_at": at,
        }
        try:
            with mapped_errors(f"marking subscription {sub.subscription_id}"):
                self.subscriptions.update_entity(
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=sub.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (StateConflict, ResourceNotFoundError):
            return False
        return True

    def get_subscription(self, tenant_id: str, subscription_id: str) -> SubscriptionRecord | None:
        try:
            with mapped_errors("reading a subscription"):
                entity = self.subscriptions.get_entity(tenant_id, encode_key(subscription_id))
        except ResourceNotFoundError:
            return None
        return _subscription(entity)

    def list_subscriptions(self) -> list[SubscriptionRecord]:
        with mapped_errors("listing subscriptions"):
            return [_subscription(e) for e in self.subscriptions.list_entities()]

    def get_subscriptions(
        self, tenant_id: str, subscription_ids: Sequence[str]
    ) -> dict[str, SubscriptionRecord]:
        """The stored ones of up to MAX_KEYS_PER_QUERY subscriptions of a tenant, in one query
        (the partition and an `or` of RowKeys: Table Storage takes 15 comparisons a filter)."""
        if len(subscription_ids) > MAX_KEYS_PER_QUERY:
            raise ValueError(f"at most {MAX_KEYS_PER_QUERY} subscriptions a query")
        if not subscription_ids:
            return {}
        params: dict[str, Any] = {"t": tenant_id}
        terms = []
        for n, sub_id in enumerate(subscription_ids):
            params[f"k{n}"] = encode_key(sub_id)
            terms.append(f"RowKey eq @k{n}")
        with mapped_errors("reading subscriptions"):
            rows = self.subscriptions.query_entities(
                f"PartitionKey eq @t and ( {' or '.join(terms)} )", parameters=params
            )
            records = [_subscription(e) for e in rows]
        return {r.subscription_id: r for r in records}

    def list_tenant_subscriptions(self, tenant_id: str) -> list[SubscriptionRecord]:
        """Every subscription of one tenant (one partition query; for the intake's cache)."""
        with mapped_errors("listing a tenant's subscriptions"):
            rows = self.subscriptions.query_entities(
                "PartitionKey eq @t", parameters={"t": tenant_id}
            )
            return [_subscription(e) for e in rows]

    def delete_subscription(self, tenant_id: str, subscription_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError), mapped_errors("deleting a subscription"):
            self.subscriptions.delete_entity(tenant_id, encode_key(subscription_id))

    # --- cursors (ETag-guarded) ------------------------------------------------------------------
    def get_cursor(self, key: MailboxKey) -> CursorRecord:
        try:
            with mapped_errors("reading a cursor"):
                entity = self.cursors.get_entity(key.partition, CALENDAR_ROW)
        except ResourceNotFoundError:
            return CursorRecord(key=key)
        window = None
        if entity.get("window_start") and entity.get("window_end"):
            window = Window(_plain_time(entity["window_start"]), _plain_time(entity["window_end"]))
        return CursorRecord(
            key=key,
            delta_link=str(entity.get("delta_link", "")),
            window=window,
            lease_owner=str(entity.get("lease_owner", "")),
            lease_until=entity.get("lease_until"),
            round_started=entity.get("round_started"),
            round_completed=entity.get("round_completed"),
            full_completed=entity.get("full_completed"),
            throttled_until=entity.get("throttled_until"),
            etag=str(entity.metadata.get("etag", "")),
        )

    def save_cursor(self, cursor: CursorRecord) -> CursorRecord:
        """Write the cursor only if unchanged since read (ETag); StateConflict otherwise."""
        entity: dict[str, Any] = {
            "PartitionKey": cursor.key.partition,
            "RowKey": CALENDAR_ROW,
            "delta_link": cursor.delta_link,
            "lease_owner": cursor.lease_owner,
        }
        for name in (
            "lease_until",
            "round_started",
            "round_completed",
            "full_completed",
            "throttled_until",
        ):
            value = getattr(cursor, name)
            if value is not None:
                entity[name] = value
        if cursor.window:
            entity["window_start"], entity["window_end"] = cursor.window.start, cursor.window.end
        with mapped_errors("saving a cursor"):
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

    def delete_cursor(self, key: MailboxKey) -> None:
        with contextlib.suppress(ResourceNotFoundError), mapped_errors("deleting a cursor"):
            self.cursors.delete_entity(key.partition, CALENDAR_ROW)

    # --- events ----------------------------------------------------------------------------------
    def stored_versions(
        self, key: MailboxKey, event_ids: Sequence[str] | None = None
    ) -> dict[str, StoredVersion]:
        """id -> StoredVersion for the given ids, or for the whole mirror (None)."""
        select = ["RowKey", *_VERSION_COLUMNS]
        out: dict[str, StoredVersion] = {}
        with mapped_errors("reading mirrored versions"):
            if event_ids is None:
                rows = self._event_rows(key, "", {}, select=select)
                for e in rows:
                    out[decode_key(e["RowKey"])] = _version(e)
                return out
            unique = list(dict.fromkeys(event_ids))
            # At most 15 comparisons per filter (the SDK needs spaces around parameters); the
            # chunks' queries run side by side.
            chunks = [unique[i : i + 14] for i in range(0, len(unique), 14)]

            def read(chunk: list[str]) -> list[Any]:
                params = {"p": key.partition} | {
                    f"r{j}": encode_key(v) for j, v in enumerate(chunk)
                }
                rows_filter = " or ".join(f"RowKey eq @r{j}" for j in range(len(chunk)))
                return list(
                    self.events.query_entities(
                        f"PartitionKey eq @p and ( {rows_filter} )",
                        parameters=params,
                        select=select,
                    )
                )

            found = io_pool().map(read, chunks) if len(chunks) > 1 else map(read, chunks)
            for rows_of_chunk in found:
                for e in rows_of_chunk:
                    out[decode_key(e["RowKey"])] = _version(e)
        return out

    def apply_changes(
        self,
        key: MailboxKey,
        upserts: Sequence[MirrorEvent],
        changes: Sequence[PlannedChange],
        *,
        at: datetime,
        mailbox_ref: str = "",
        origin: tuple[str, str] | None = None,
        origins: Mapping[str, tuple[str, str]] | None = None,
    ) -> list[ChangeEvent]:
        """Write `changes` (an upsert of the event in `upserts` with its id, or a delete) and
        their change events together: each batch transaction holds the event rows, one change
        log row per change, and the partition's sequence row (ETag-guarded), so a change event
        exists exactly when its change landed. StateConflict when the partition changed
        meanwhile (another writer's sequence, a row already gone): plan again and retry.
        `origin`: (write key, writer) of every change; else `origins`, per event id."""
        partition = key.partition
        by_id = {ev.event_id: ev for ev in upserts}
        units: list[tuple[PlannedChange, Any]] = []
        for planned in changes:
            if planned.event_id in by_id:
                entity = _event_entity(key, by_id[planned.event_id])
                units.append((planned, ("upsert", entity, {"mode": UpdateMode.REPLACE})))
            elif planned.keep_row or planned.type != "deleted":
                # The row stays as it is, shown or hidden (the user's window slid over it).
                flag = {
                    "PartitionKey": partition,
                    "RowKey": encode_key(planned.event_id),
                    "hidden": planned.type == "deleted",
                }
                units.append((planned, ("update", flag, {"mode": UpdateMode.MERGE})))
            elif planned.type == "deleted":
                units.append(
                    (
                        planned,
                        (
                            "delete",
                            {"PartitionKey": partition, "RowKey": encode_key(planned.event_id)},
                        ),
                    )
                )

        def _origin(event_id: str) -> tuple[str, str] | None:
            return origin or (origins or {}).get(event_id)

        written: list[ChangeEvent] = []
        # Two operations a change and one for the sequence: at most 49 changes a transaction.
        with self._sequences_lock:
            known = self._sequences.pop(partition, None)  # the sequence row as we left it
        cached = known is not None
        batches = batch_operations(units, size_of=lambda u: _unit_size(u[0], u[1][1]), max_ops=49)
        for batch in batches:
            while True:
                last, etag = known if known is not None else self._sequence(key)
                try:
                    made, known = self._write_batch(
                        key, batch, last, etag, at=at, mailbox_ref=mailbox_ref, origin_of=_origin
                    )
                except TableTransactionError as exc:
                    if cached:
                        # The sequence row remembered may be stale (another writer came
                        # between): this batch (nothing of it landed) once more from a read.
                        cached, known = False, None
                        continue
                    raise StateConflict(
                        f"the mirror of {key.user_id} changed while it was written "
                        f"({type(exc).__name__}); plan the page again"
                    ) from None
                except AzureError as exc:
                    raise StorageError(
                        f"writing events of {key.user_id}: Table storage failed "
                        f"({type(exc).__name__})"
                    ) from None
                cached = False
                written.extend(made)
                break
        if known is not None:
            with self._sequences_lock:
                self._sequences[partition] = known
        return written

    def _write_batch(
        self,
        key: MailboxKey,
        batch: Sequence[tuple[PlannedChange, Any]],
        last: int,
        etag: str,
        *,
        at: datetime,
        mailbox_ref: str,
        origin_of: Callable[[str], tuple[str, str] | None],
    ) -> tuple[list[ChangeEvent], tuple[int, str] | None]:
        """One transaction: the batch's event operations, a change row for each change that is
        emitted (numbered from `last` + 1; a change in the window's margin has none), and the
        sequence row (ETag-guarded); the changes made and the sequence row as it left it.
        TableTransactionError when the partition changed meanwhile."""
        partition = key.partition
        actions: list[Any] = []
        made: list[ChangeEvent] = []
        number = last
        for planned, op in batch:
            actions.append(op)
            if not planned.emit:
                continue  # in the window's margin: the row changes, the feed does not
            number += 1
            change = ChangeEvent(
                change_id=change_id(
                    partition, number, planned.event_id, planned.type, planned.change_key
                ),
                sequence=number,
                type=planned.type,
                tenant_id=key.tenant_id,
                user_id=key.user_id,
                calendar_id=key.calendar_name,
                event_id=planned.event_id,
                occurred_at=at,
                series_master_id=planned.series_master_id,
                ical_uid=planned.ical_uid,
                change_key=planned.change_key,
                changed_fields=planned.changed_fields,
                event=planned.event,
                mailbox_ref=mailbox_ref,
                write_key=marked[0] if (marked := origin_of(planned.event_id)) else "",
                writer=marked[1] if marked else "",
            )
            actions.append(("create", change_entity(change, LOG_PREFIX + format_sequence(number))))
            made.append(change)
        counter = {"PartitionKey": partition, "RowKey": SEQUENCE_ROW, "last": str(number)}
        if etag:
            guard = {
                "mode": UpdateMode.REPLACE,
                "etag": etag,
                "match_condition": MatchConditions.IfNotModified,
            }
            actions.append(("update", counter, guard))
        else:
            actions.append(("create", counter))
        results = self.events.submit_transaction(actions)
        new_etag = str((results[-1] or {}).get("etag", "")) if results else ""
        return made, ((number, new_etag) if new_etag else None)

    def _sequence(self, key: MailboxKey) -> tuple[int, str]:
        """The partition's last change sequence and its row's ETag ((-1, "") before any)."""
        try:
            with mapped_errors(f"reading the change sequence of {key.user_id}"):
                row = self.events.get_entity(key.partition, SEQUENCE_ROW)
        except ResourceNotFoundError:
            return -1, ""
        return int(row.get("last", "-1")), str(row.metadata.get("etag", ""))

    def has_instances(self, key: MailboxKey, master_id: str) -> bool:
        """Whether the mirror holds an occurrence or exception of the series `master_id`."""
        with mapped_errors(f"reading the series of {key.user_id}"):
            rows = self._event_rows(
                key, " and series_master_id eq @m", {"m": master_id}, select=["RowKey"], per_page=1
            )
            return next(iter(rows), None) is not None

    def apply_events(
        self, key: MailboxKey, upserts: Sequence[MirrorEvent], deletes: Sequence[str]
    ) -> None:
        """Upsert and delete in batch transactions of at most 100 operations / 4 MB each, with
        no change events (seeding, purging a removed mailbox): the mirror's own changes go
        through `apply_changes`."""
        ops: list[tuple[str, dict[str, Any]]] = []
        for ev in upserts:
            ops.append(("upsert", _event_entity(key, ev)))
        for event_id in deletes:
            ops.append(("delete", {"PartitionKey": key.partition, "RowKey": encode_key(event_id)}))
        # An id may be upserted and deleted on one page only if the page said so; a batch may not
        # touch one row twice, so each batch keeps one op per row (the last, which is the truth).
        for batch in batch_operations(ops, size_of=lambda op: payload_size(op[1])):
            last: dict[str, tuple[str, dict[str, Any]]] = {}
            for op in batch:
                last[op[1]["RowKey"]] = op
            actions: list[Any] = []
            for kind, entity in last.values():
                if kind == "upsert":
                    actions.append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
                else:
                    actions.append(("delete", entity))
            self._submit(key, actions)

    def _submit(self, key: MailboxKey, actions: list[Any]) -> None:
        try:
            with mapped_errors(f"writing events of {key.user_id}"):
                self.events.submit_transaction(actions)
        except StorageError:
            # A delete of a row that is already gone fails the whole batch (idempotent replays):
            # fall back to one operation at a time, ignoring rows already deleted.
            for action in actions:
                with mapped_errors(f"writing an event of {key.user_id}"):
                    if action[0] == "upsert":
                        self.events.upsert_entity(action[1], mode=UpdateMode.REPLACE)
                    else:
                        with contextlib.suppress(ResourceNotFoundError):
                            self.events.delete_entity(
                                action[1]["PartitionKey"], action[1]["RowKey"]
                            )

    def list_events(
        self,
        key: MailboxKey,
        start: datetime | None = None,
        end: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The mirrored events of a mailbox overlapping [start, end), as stored: one partition
        query, bounded by the range; only `columns` when given (a property a row lacks is
        left out)."""
        query = ""
        params: dict[str, Any] = {}
        if end is not None:
            query += " and start lt @end"
            params["end"] = end
        if start is not None:
            query += " and end gt @start"
            params["start"] = start
        with mapped_errors(f"listing events of {key.user_id}"):
            rows = self._event_rows(key, query, params, select=list(columns) if columns else None)
            return [{k: v for k, v in e.items() if k not in _META and v is not None} for e in rows]

    def _event_rows(
        self,
        key: MailboxKey,
        more: str,
        params: dict[str, Any],
        *,
        select: Sequence[str] | None = None,
        per_page: int | None = None,
    ) -> Iterator[Any]:
        """The mirrored event rows of a partition matching ` and ...` `more`, one key range
        after the other (EVENT_RANGES), lazily."""
        for rows in EVENT_RANGES:
            yield from self.events.query_entities(
                f"PartitionKey eq @p and {rows}{more}",
                parameters={"p": key.partition} | params,
                select=list(select) if select else None,
                results_per_page=per_page,
            )

    def window_flips(
        self, key: MailboxKey, start: datetime, end: datetime
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The rows the user's window [start, end) slid over: hidden ones now inside it (whole
        rows, for their change events) and shown ones now outside it (their version only).
        Two partition queries; series masters are always shown."""
        base = " and type ne 'seriesMaster'"
        params: dict[str, Any] = {"start": start, "end": end}
        with mapped_errors(f"reading the window of {key.user_id}"):
            entering = self._event_rows(
                key, f"{base} and hidden eq true and start lt @end and end gt @start", params
            )
            inside = [{k: v for k, v in e.items() if k not in _META} for e in entering]
            # Every row outside, shown ones kept: a row mirrored before the margin has no
            # `hidden` at all, and a filter on a property a row lacks never matches it.
            leaving = self._event_rows(
                key,
                f"{base} and ( end le @start or start ge @end )",
                params,
                select=["RowKey", "event_id", *_VERSION_COLUMNS],
            )
            outside = [
                {k: v for k, v in e.items() if k not in _META}
                for e in leaving
                if e.get("hidden") is not True
            ]
        return inside, outside

    def purge_events(self, key: MailboxKey) -> int:
        ids = list(self.stored_versions(key))
        self.apply_events(key, (), ids)
        return len(ids)


def _mailbox(entity: Any) -> MailboxRecord:
    status_values: dict[str, Any] = {
        f.name: None
        if entity[f"status_{f.name}"] == "" and f.default is None
        else entity[f"status_{f.name}"]
        for f in fields(MailboxStatus)
        if f"status_{f.name}" in entity
    }
    return MailboxRecord(
        key=MailboxKey.from_label(entity["PartitionKey"], entity["RowKey"]),
        upn=str(entity.get("upn", "")),
        options=parse_options(json.loads(entity.get("options") or "{}")),
        enabled=bool(entity.get("enabled", True)),
        status=MailboxStatus(**status_values),
        enrolled_at=entity.get("enrolled_at"),
        calendar_id=str(entity.get("calendar_id", "")),
        calendar_name=str(entity.get("calendar_name", "")),
    )


def _subscription(entity: Any) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=decode_key(entity["RowKey"]),
        tenant_id=entity["PartitionKey"],
        user_id=str(entity.get("user_id", "")),
        resource=str(entity.get("resource", "")),
        expiration=entity["expiration"],
        client_state_digest=str(entity.get("client_state_digest", "")),
        last_renewed=entity.get("last_renewed"),
        last_reauthorized=entity.get("last_reauthorized"),
        last_lifecycle_event=str(entity.get("last_lifecycle_event", "")),
        last_lifecycle_at=entity.get("last_lifecycle_at"),
        etag=str(getattr(entity, "metadata", {}).get("etag", "")),
        calendar=str(entity.get("calendar", "")),
    )


def _version(entity: Any) -> StoredVersion:
    return StoredVersion(*(str(entity.get(name) or "") for name in _VERSION_COLUMNS))


def _event_entity(key: MailboxKey, ev: MirrorEvent) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": key.partition, "RowKey": encode_key(ev.event_id)}
    entity |= {"event_id": ev.event_id, "change_key": ev.change_key}
    return entity | {"content_hash": ev.content_hash} | ev.properties


def _unit_size(planned: PlannedChange, entity: dict[str, Any]) -> int:
    """Bytes one change takes in a batch request: its event row and its change row, escaped as
    the request body escapes them (the change row's JSON is text inside JSON, and change_rows
    bounds it by BATCH_SHARE), with room for the properties' type annotations."""
    event_bytes = len(json.dumps(entity, default=str)) if planned.type != "deleted" else 256
    payload = len(json.dumps(json.dumps(planned.event, default=str))) if planned.event else 512
    return event_bytes + min(payload, BATCH_SHARE) + 4096
