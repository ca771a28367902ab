"""The write records over Azure Table Storage (azure-data-tables), in the `writes` table.

Two kinds of row, apart by PartitionKey:
- a write: PartitionKey = the write id, RowKey "write" (a point read for `GET /api/writes/{id}`),
  created only if absent (so two tries of one Idempotency-Key make one write);
- the version calsync last wrote of an event: PartitionKey `v_<tenant>_<user>`, RowKey the
  encoded event id, with the resulting changeKey, the write's Idempotency-Key and the writer.
  The change feed asks `written_version` whether a change it sees is the echo of our own write.
Long JSON (an event with a large body) is split per core.entity. SDK errors map in `_mapped`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.adapters.storage import StorageClients
from shared.core.entity import chunk_properties, join_properties
from shared.core.keys import encode_key
from shared.core.model import MailboxKey
from shared.core.writes import WriteRecord, WriteRequest
from shared.errors import StateConflict, StorageError
from shared.names import WRITES_TABLE

WRITE_ROW = "write"
MAX_POINT_IDS = 45  # past it one partition read is cheaper than the point queries
MAX_EVENT_JSON = 400_000  # characters; past it the stored answer drops the body


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except ResourceNotFoundError:
        raise
    except ResourceExistsError:
        raise StateConflict(f"{what}: it exists already") from None
    except AzureError as exc:
        raise StorageError(f"{what}: Table storage failed ({type(exc).__name__})") from None


def _event_json(event: Any) -> str:
    if event is None:
        return ""
    text = json.dumps(event, separators=(",", ":"))
    if len(text) > MAX_EVENT_JSON and isinstance(event, dict):
        text = json.dumps({**event, "body": None}, separators=(",", ":"))
    return text


def _versions_partition(key: MailboxKey) -> str:
    return f"v_{key.partition}"


class WriteStore:
    """Write records and written versions; thread-safe like the SDK client."""

    def __init__(self, clients: StorageClients) -> None:
        self.table: TableClient = clients.table(WRITES_TABLE)

    def _entity(self, record: WriteRecord) -> dict[str, Any]:
        props: dict[str, Any] = {
            "tenant_id": record.key.tenant_id,
            "user_id": record.key.user_id,
            "calendar": record.key.calendar,
            "request": json.dumps(record.request.as_json(), separators=(",", ":")),
            "request_digest": record.request.digest(),
            "status": record.status,
            "created": record.created,
            "updated": record.updated,
            "idempotency_key": record.idempotency_key,
            "attempts": record.attempts,
            "event_id": record.event_id,
            "change_key": record.change_key,
            "event": _event_json(record.event),
            "error_code": record.error_code,
            "error": record.error,
        }
        if record.retry_at is not None:
            props["retry_at"] = record.retry_at
        return {"PartitionKey": record.write_id, "RowKey": WRITE_ROW, **chunk_properties(props)}

    def create(self, record: WriteRecord) -> bool:
        """Store a new write; False when a write of that id exists already."""
        try:
            with _mapped(f"creating write {record.write_id}"):
                self.table.create_entity(self._entity(record))
        except StateConflict:
            return False
        return True

    def save(self, record: WriteRecord) -> None:
        with _mapped(f"saving write {record.write_id}"):
            self.table.upsert_entity(self._entity(record), mode=UpdateMode.REPLACE)

    def get(self, write_id: str) -> WriteRecord | None:
        try:
            with _mapped(f"reading write {write_id}"):
                entity = self.table.get_entity(write_id, WRITE_ROW)
        except ResourceNotFoundError:
            return None
        return _record(entity)

    def digest(self, write_id: str) -> str:
        """The stored request's digest ("" when the write does not exist)."""
        try:
            with _mapped(f"reading write {write_id}"):
                entity = self.table.get_entity(write_id, WRITE_ROW, select=["request_digest"])
        except ResourceNotFoundError:
            return ""
        return str(entity.get("request_digest", ""))

    # --- written versions ----------------------------------------------------------------------
    def record_written(
        self,
        key: MailboxKey,
        versions: Sequence[tuple[str, str]],
        *,
        idempotency_key: str,
        writer: str,
        write_id: str,
    ) -> None:
        """Remember (event id, resulting changeKey) of each event one write produced; an id
        named twice keeps its last changeKey (a transaction may touch a row only once)."""
        ops: list[Any] = []
        for event_id, change_key in dict(versions).items():
            entity = {
                "PartitionKey": _versions_partition(key),
                "RowKey": encode_key(event_id),
                "event_id": event_id,
                "change_key": change_key,
                "idempotency_key": idempotency_key,
                "writer": writer,
                "write_id": write_id,
            }
            ops.append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
        for i in range(0, len(ops), 100):  # a Table transaction holds at most 100 operations
            with _mapped(f"recording written versions of {key.user_id}"):
                self.table.submit_transaction(ops[i : i + 100])

    def written_version(self, key: MailboxKey, event_id: str) -> tuple[str, str, str] | None:
        """(changeKey, Idempotency-Key, writer) of the last calsync write of this event, or
        None: a change whose changeKey equals it is the echo of that write."""
        try:
            with _mapped("reading a written version"):
                entity = self.table.get_entity(_versions_partition(key), encode_key(event_id))
        except ResourceNotFoundError:
            return None
        return (
            str(entity.get("change_key", "")),
            str(entity.get("idempotency_key", "")),
            str(entity.get("writer", "")),
        )

    def written_versions(
        self, key: MailboxKey, event_ids: Sequence[str]
    ) -> dict[str, tuple[str, str, str]]:
        """event id -> (changeKey, write key, writer) of the last calsync write of each of
        these events that has one (the write key: its Idempotency-Key, else its write id, as
        the write's own change events carry it). Up to 45 ids: point queries of 14 ids each;
        more: the mailbox's whole partition of written versions, once."""
        unique = list(dict.fromkeys(event_ids))
        if not unique:
            return {}
        partition = _versions_partition(key)
        select = ["RowKey", "event_id", "change_key", "idempotency_key", "writer", "write_id"]
        queries: list[tuple[str, dict[str, Any]]] = []
        if len(unique) > MAX_POINT_IDS:
            queries.append(("PartitionKey eq @p", {"p": partition}))
        else:
            for i in range(0, len(unique), 14):  # at most 15 comparisons per filter
                chunk = unique[i : i + 14]
                rows = " or ".join(f"RowKey eq @r{j}" for j in range(len(chunk)))
                params = {"p": partition} | {f"r{j}": encode_key(v) for j, v in enumerate(chunk)}
                queries.append((f"PartitionKey eq @p and ( {rows} )", params))
        wanted, out = set(unique), {}
        with _mapped("reading written versions"):
            for query, params in queries:
                for e in self.table.query_entities(query, parameters=params, select=select):
                    event_id = str(e.get("event_id", ""))
                    if event_id in wanted:
                        write_key = str(e.get("idempotency_key") or e.get("write_id") or "")
                        out[event_id] = (
                            str(e.get("change_key", "")),
                            write_key,
                            str(e.get("writer", "")),
                        )
        return out


def _record(entity: Any) -> WriteRecord:
    props = join_properties(dict(entity))
    request = json.loads(props["request"])
    event_text = str(props.get("event") or "")
    return WriteRecord(
        write_id=str(entity["PartitionKey"]),
        key=MailboxKey(
            str(props["tenant_id"]), str(props["user_id"]), str(props.get("calendar") or "")
        ),
        request=WriteRequest(
            action=request["action"],
            event_id=request.get("eventId", ""),
            event=request.get("event") or {},
            change_key=request.get("changeKey", ""),
            comment=request.get("comment", ""),
            writer=request.get("writer", ""),
        ),
        status=props["status"],
        created=props["created"],
        updated=props["updated"],
        idempotency_key=str(props.get("idempotency_key", "")),
        attempts=int(props.get("attempts", 0)),
        retry_at=props.get("retry_at"),
        event_id=str(props.get("event_id", "")),
        change_key=str(props.get("change_key", "")),
        event=json.loads(event_text) if event_text else None,
        error_code=str(props.get("error_code", "")),
        error=str(props.get("error", "")),
    )
