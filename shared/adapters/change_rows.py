"""One change event as a Table row and as a queue message (the change log rows of the events
partitions; the rows an earlier version copied to the `changes` table read the same).

A row holds the change's JSON in one property, split into parts past the 64 KiB property limit
(core.entity), with its id, type, event id and time beside it for queries. A change whose JSON
would not fit a row (or a batch beside its event's row) keeps a shortened body
(`event.body.truncated`).
"""

from __future__ import annotations

import json
from typing import Any

from shared.core.entity import chunk_properties, entity_size, join_properties
from shared.core.feed import ChangeEvent, change_from_json
from shared.errors import InputError

ROW_BUDGET = 900 * 1024  # bytes of the stored entity, leaving room under the 1 MiB limit
# Bytes of the row in a batch request (JSON, non-ASCII escaped): beside an event row of up to
# ~2.7 MB so escaped, the pair stays under the 4 MiB transaction limit.
BATCH_SHARE = 1_000_000
QUEUE_BUDGET = 48 * 1024  # a queue message holds 64 KiB; base64 makes 4 bytes of every 3


def _too_big(text: str) -> bool:
    return (
        entity_size(chunk_properties({"payload": text})) > ROW_BUDGET
        or len(json.dumps(text)) > BATCH_SHARE
    )


def _fit(change: ChangeEvent) -> str:
    """The change's JSON text, its body shortened until the row fits (see the docstring)."""
    data = change.to_json()
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    event = data.get("event")
    body = event.get("body") if isinstance(event, dict) else None
    while _too_big(text) and isinstance(body, dict):
        content = str(body.get("content", ""))
        if not content:
            break
        body["content"] = content[: len(content) // 2]
        body["truncated"] = True
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text


def queue_message(change: ChangeEvent) -> str:
    """The change as a `calendar-changes` message: its JSON, without the event when that would
    not fit a queue message (`eventOmitted`: read it from the feed by its sequence)."""
    data = change.to_json()
    text = json.dumps(data, separators=(",", ":"))
    if len(text.encode("utf-8")) <= QUEUE_BUDGET:
        return text
    data["event"] = None
    data["eventOmitted"] = True
    return json.dumps(data, separators=(",", ":"))


def change_entity(change: ChangeEvent, row_key: str) -> dict[str, Any]:
    """The Table entity of a change, in its mailbox's partition under `row_key`."""
    return {
        "PartitionKey": change.partition,
        "RowKey": row_key,
        "change_id": change.change_id,
        "type": change.type,
        "event_id": change.event_id,
        "occurred_at": change.occurred_at,
    } | chunk_properties({"payload": _fit(change)})


def change_of(row: Any) -> ChangeEvent:
    """Read a change entity back; InputError when it holds no readable change."""
    props = join_properties({k: v for k, v in row.items() if k.startswith("payload")})
    try:
        data = json.loads(props["payload"])
    except (KeyError, ValueError):
        raise InputError(
            f"change row {row.get('PartitionKey')}/{row.get('RowKey')} holds no readable JSON"
        ) from None
    return change_from_json(data)
