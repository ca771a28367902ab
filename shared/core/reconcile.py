"""Pure: what one delta page changes in the mirror, and how writes are cut into Table batches.

Rules:
- `plan_page` upserts an event only when its id is new to the mirror or its change_key or
  content_hash differs from what is stored, and deletes only ids the mirror holds. When an id
  appears more than once on a page (Graph replays items), the LAST occurrence wins. Series
  masters (which the round fetches itself) are planned like any event. Each upsert and delete
  comes with its change event (`changes`, in page order), created/updated/deleted with the
  fields that changed. Hence applying the same page twice changes nothing the second time
  (idempotent replays), and each mirror change is planned exactly once.
- An event that cannot be normalised (e.g. an unknown time zone) is reported in `skipped` with
  its reason instead of failing the page: one odd event must not stall a mailbox's cursor.
- `plan_full_diff`: after a full resync of the window (the 410 SyncStateNotFound recovery), the
  ids the mirror holds but the resync never saw were deleted during the gap.
- `batch_operations`: a Table transaction holds at most 100 operations and 4 MiB
  (learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions), all in one
  partition, each entity at most once; plan_page's output has distinct ids, so batching it by
  partition keeps both rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from shared.core.events import MASKED_SENSITIVITIES, normalize_event
from shared.core.feed import changed_fields
from shared.core.model import DeltaItem, MailboxOptions, MirrorEvent, PlannedChange, Window
from shared.core.window import in_user_window
from shared.errors import InputError

T = TypeVar("T")

MAX_BATCH_OPS = 100
MAX_BATCH_BYTES = 4_000_000


@dataclass(frozen=True)
class PagePlan:
    """The writes one delta page needs: upserts, deletes (event ids), events skipped, and the
    change events they make (one per upsert and delete, in the same order)."""

    upserts: tuple[MirrorEvent, ...]
    deletes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (event id, reason)
    changes: tuple[PlannedChange, ...] = ()


def _digests(version: Sequence[str] | None) -> dict[str, str] | None:
    text = version[2] if version is not None and len(version) > 2 else ""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _field(version: Sequence[str] | None, index: int) -> str:
    return version[index] if version is not None and len(version) > index else ""


def is_hidden(version: Sequence[str] | None) -> bool:
    """Whether a stored version lies in the window's margin (not shown on the feed)."""
    return _field(version, 6) == "True"


def deletion(event_id: str, version: Sequence[str] | None) -> PlannedChange:
    """The change event of removing `event_id`, whose stored version is `version` (emitted
    only if the feed showed the event)."""
    return PlannedChange(
        "deleted",
        event_id,
        change_key=_field(version, 0),
        series_master_id=_field(version, 3),
        ical_uid=_field(version, 4),
        emit=not is_hidden(version),
    )


def _shown(ev: MirrorEvent, user: Window | None) -> bool:
    if user is None or ev.properties.get("type") == "seriesMaster":
        return True
    start, end = ev.properties.get("start"), ev.properties.get("end")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return True
    return in_user_window(start, end, user)


def _is_excluded(event: Mapping[str, Any], options: MailboxOptions) -> bool:
    sensitivity = str(event.get("sensitivity") or "").lower()
    return options.private == "exclude" and sensitivity in MASKED_SENSITIVITIES


def plan_page(
    items: Sequence[DeltaItem],
    stored: Mapping[str, Sequence[str]],
    options: MailboxOptions,
    user: Window | None = None,
) -> PagePlan:
    """The upserts and deletes for `items`, given `stored` id -> version (a StoredVersion, or
    a (change_key, content_hash) pair). With the private option `exclude`, a private or
    confidential event is treated as gone: never mirrored, deleted if it was.

    `user`: the user's window now (core.window). An event outside it (in the margin) is
    mirrored hidden, with no change event; one that comes into it is `created` on the feed,
    one that goes out of it `deleted` (its row kept, hidden). None: everything is shown."""
    last: dict[str, DeltaItem] = {}
    for item in items:
        # Re-inserting moves the id to its last position: the page's order of last occurrences.
        last.pop(item.event_id, None)
        last[item.event_id] = item
    upserts: list[MirrorEvent] = []
    deletes: list[str] = []
    skipped: list[tuple[str, str]] = []
    changes: list[PlannedChange] = []
    for event_id, item in last.items():
        held = stored.get(event_id)
        if item.event is None or _is_excluded(item.event, options):
            if held is not None:
                deletes.append(event_id)
                changes.append(deletion(event_id, held))
            continue
        try:
            mirrored = normalize_event(item.event, options)
        except InputError as exc:
            skipped.append((event_id, exc.message))
            continue
        shown, was_shown = _shown(mirrored, user), held is not None and not is_hidden(held)
        mirrored = replace(mirrored, properties=mirrored.properties | {"hidden": not shown})
        same = held is not None and tuple(held[:2]) == (mirrored.change_key, mirrored.content_hash)
        if same and shown == was_shown:
            continue
        upserts.append(mirrored)
        master, uid = (
            str(mirrored.feed.get("seriesMasterId") or ""),
            str(mirrored.feed.get("iCalUId") or ""),
        )
        if was_shown and not shown:  # out of the user's window: gone for the feed, kept hidden
            changes.append(
                PlannedChange(
                    "deleted",
                    event_id,
                    change_key=mirrored.change_key,
                    series_master_id=master,
                    ical_uid=uid,
                    keep_row=True,
                )
            )
            continue
        after = json.loads(mirrored.digests)
        changes.append(
            PlannedChange(
                "created" if held is None or (shown and not was_shown) else "updated",
                event_id,
                change_key=mirrored.change_key,
                series_master_id=master,
                ical_uid=uid,
                changed_fields=_changed(_digests(held), after) if was_shown else None,
                event=mirrored.feed,
                emit=shown,
            )
        )
    return PagePlan(tuple(upserts), tuple(deletes), tuple(skipped), tuple(changes))


def _changed(before: dict[str, str] | None, after: dict[str, str]) -> tuple[str, ...] | None:
    return None if before is None else changed_fields(before, after)


def plan_full_diff(seen: set[str], mirror_ids: set[str]) -> tuple[str, ...]:
    """Mirror ids a full resync of the window did not see: delete them (sorted, stable)."""
    return tuple(sorted(mirror_ids - seen))


def batch_operations(
    ops: Sequence[T],
    *,
    size_of: Callable[[T], int],
    max_ops: int = MAX_BATCH_OPS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[list[T]]:
    """`ops` cut, in order, into batches of at most `max_ops` operations and `max_bytes` bytes."""
    if not 1 <= max_ops <= MAX_BATCH_OPS:
        raise InputError(f"max_ops must be from 1 to {MAX_BATCH_OPS}, got {max_ops}")
    batches: list[list[T]] = []
    current: list[T] = []
    current_bytes = 0
    for index, op in enumerate(ops):
        size = size_of(op)
        if size > max_bytes:
            raise InputError(
                f"operation {index} is {size} bytes, over the {max_bytes} byte batch limit"
            )
        if current and (len(current) == max_ops or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(op)
        current_bytes += size
    if current:
        batches.append(current)
    return batches
