"""Pure: the iCalUId index's keys and what a mirror change does to it. No I/O.

Rule: one partition per tenant in the `icaluids` table, one row per indexed event: a forward row
`i|<digest>|<user>|<event>` says "this mailbox's mirror holds this event with this iCalUId"; the
digest (SHA-256 of the iCalUId, 32 hex) keeps keys short whatever an organizer's client put in
the iCalUId, and the full value is stored on the row and compared on every read. What an event
was indexed under before a change is what the mirror held (`StoredVersion.ical_uid`, which the
writer has read anyway), so a deletion (which names only the event id) removes the right forward
row without reading the index. (Earlier versions also kept a reverse row `e|<user>|<event>` per
event for that; such rows are neither read nor written any more.) A lookup is one range query
over `i|<digest>|` in the tenant's partition; every write for a tenant lands in one partition,
so a round's changes go in batch transactions of 100.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shared.core.keys import encode_key
from shared.errors import InputError

MAX_ICALUID = 2048  # longer than any client makes (Outlook's are 112 hex); more is refused


def digest(ical_uid: str) -> str:
    return hashlib.sha256(ical_uid.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def partition(tenant_id: str) -> str:
    return encode_key(tenant_id.lower())


def forward_row(ical_uid: str, user_id: str, event_id: str) -> str:
    return f"i|{digest(ical_uid)}|{encode_key(user_id.lower())}|{encode_key(event_id)}"


def forward_range(ical_uid: str) -> tuple[str, str]:
    """[low, high) of the RowKeys of every forward row of `ical_uid` ('}' follows '|')."""
    prefix = f"i|{digest(ical_uid)}|"
    return prefix, prefix[:-1] + "}"


def parse_ical_uid(value: str | None) -> str:
    """The iCalUId asked for, or InputError naming the parameter."""
    if value is None or not value.strip():
        raise InputError("iCalUId is required: give the event's iCalUId (?iCalUId=...)")
    if len(value) > MAX_ICALUID:
        raise InputError(f"iCalUId is {len(value)} characters; the limit is {MAX_ICALUID}")
    if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise InputError("iCalUId holds control characters or lone surrogates; send it as is")
    return value


@dataclass(frozen=True)
class IndexPlan:
    """The index writes one mirror change needs: (RowKey, entity) upserts and RowKey deletes."""

    upserts: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)


def plan_changes(
    user_id: str,
    upserts: Sequence[tuple[str, str]],
    deletes: Sequence[str],
    before: Mapping[str, str],
) -> IndexPlan:
    """What the index must write after the mirror upserted `upserts` ((event id, iCalUId))
    and deleted `deletes`, given `before` (event id -> the iCalUId the mirror held for it before
    this change; absent: none): a changed iCalUId drops its old forward row."""
    plan = IndexPlan()
    upserted = dict(upserts)  # an id upserted after a delete on the same page: the upsert wins
    for event_id in dict.fromkeys(deletes):
        old = before.get(event_id, "")
        if event_id in upserted or not old:
            continue
        plan.deletes.append(forward_row(old, user_id, event_id))
    for event_id, ical_uid in upserted.items():
        old = before.get(event_id, "")
        if old and old != ical_uid:
            plan.deletes.append(forward_row(old, user_id, event_id))
        if ical_uid:
            entity = {"user_id": user_id.lower(), "event_id": event_id, "ical_uid": ical_uid}
            plan.upserts.append((forward_row(ical_uid, user_id, event_id), entity))
    return plan
