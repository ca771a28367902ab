"""One mailbox's default calendar: create, read, update, delete, cancel, calendarView. Pure.

Rule: every change gets a new changeKey (and so a new @odata.etag), bumps `version()`
and is reported to the `on_change` callbacks as (change_type, event_id). Changing an
occurrence makes it an exception with the same id; deleting or cancelling one removes it
from calendarView; both also change the master (Exchange keeps exceptions on the master),
so the master and every occurrence get a new changeKey. Changing a master's recurrence
or start keeps only the exceptions and cancellations that still fall on the new pattern.
A repeated create with a known transactionId is refused, 409 ErrorDuplicateTransactionId,
without the first event's id: resources/event says only that transactionId lets "the server
avoid redundant POST operations", not what the repeat answers, so the harsher reading (the
client must find its event itself) is modelled. A stale If-Match is 412
ErrorIrresolvableConflict. Single-value extended properties are kept per item, apart from
what an event renders (Graph returns them only when `$expand`ed); an occurrence has its
master's.
Cancel (api/event-cancel) removes the event from the organizer's calendar, like delete;
isCancelled is therefore always false on what remains.

Ids: the store keys, renders and reports (to `on_change`) immutable ids; every method also
accepts the item's current REST id. `move` puts an item in another folder and back (deleted
items and restored): a new REST id and changeKey, the same immutable id, and the old REST id
is 404 from then on. `in_form` gives a rendered event with the REST ids of that moment when
the caller did not ask for immutable ids (https://learn.microsoft.com/graph/outlook-immutable-id).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from graphsim.errors import GraphRequestError
from graphsim.model.calendar import ids
from graphsim.model.calendar.bodies import parse_body
from graphsim.model.calendar.model import (
    EXCEPTION,
    MASTER,
    SINGLE,
    Instance,
    Item,
    occurrence_at,
    occurrences,
    overlaps,
    single_instance,
    utc,
)
from graphsim.model.calendar.render import canonical, web_link
from graphsim.model.calendar.rules import (
    apply_checked,
    apply_props,
    check_if_match,
    new_event_props,
)
from graphsim.model.calendar.series import make_exception, reconcile

ChangeCallback = Callable[[str, str], None]
_MAX_COMMENT = 10_000


def not_found(event_id: str) -> GraphRequestError:
    return GraphRequestError(
        404,
        "ErrorItemNotFound",
        f"The specified object was not found in the store. (event id '{event_id[:40]}...': it "
        "was deleted, or belongs to another mailbox; resync to refresh ids).",
    )


class CalendarStore:
    """One mailbox's default calendar (ids, changeKeys, series, exceptions, cancellations)."""

    def __init__(
        self,
        user_id: str,
        *,
        seed: int | None = None,
        address: str | None = None,
        display_name: str | None = None,
    ) -> None:
        self.user_id = user_id
        self._rng = random.Random(seed)
        self._digest = ids.mailbox_digest(user_id)
        self._items: dict[str, Item] = {}
        self._transactions: dict[str, str] = {}
        self._rest_of: dict[bytes, bytes] = {}  # immutable item bytes -> REST bytes (kept)
        self._by_rest: dict[bytes, bytes] = {}  # current REST bytes -> immutable item bytes
        self._callbacks: list[ChangeCallback] = []
        self._version = 0
        self.organizer = {
            "emailAddress": {
                "name": display_name or address or user_id,
                "address": address or user_id,
            }
        }

    # -- notifications and versions -------------------------------------------------------
    def on_change(self, callback: ChangeCallback) -> None:
        self._callbacks.append(callback)

    def version(self) -> int:
        return self._version

    def _changed(self, *changes: tuple[str, str]) -> None:
        self._version += 1
        for change_type, event_id in changes:
            for callback in self._callbacks:
                callback(change_type, event_id)

    def _touch(self, item: Item, now: datetime) -> None:
        item.change_key = ids.new_change_key(self._rng)
        item.modified = now
        item.cache = None
        item.expansion = None

    # -- create ---------------------------------------------------------------------------
    def create(
        self,
        body: dict[str, Any],
        now: datetime,
        *,
        transaction_id: str | None = None,
        ical_uid: str | None = None,
    ) -> dict[str, Any]:
        """A new event; `ical_uid` given makes it a copy of that meeting (an attendee's)."""
        now = utc(now, "now")
        tx = (
            transaction_id
            if transaction_id is not None
            else (body.get("transactionId") if isinstance(body, dict) else None)
        )
        if isinstance(tx, str) and self._transactions.get(tx) in self._items:
            raise GraphRequestError(
                409,
                "ErrorDuplicateTransactionId",
                f"An event with transactionId '{tx[:80]}' was created already; it is not "
                "created again.",
            )
        props = parse_body(body, partial=False)
        if isinstance(tx, str):
            props["transactionId"] = tx
        raw = ids.new_item_raw(self._digest, self._rng)
        self._new_rest_id(raw)
        item = Item(
            id=ids.encode(raw),
            raw=raw,
            kind=SINGLE,
            props=new_event_props(self.organizer),
            start=props["start"],
            end=props["end"],
            start_zone=props["startZone"],
            end_zone=props["endZone"],
            is_all_day=False,
            created=now,
            modified=now,
            change_key=ids.new_change_key(self._rng),
            ical_uid=ical_uid or ids.new_ical_uid(self._rng),
        )
        if props.get("isAllDay") and "showAs" not in props:
            props["showAs"] = "free"  # Outlook shows new all-day events as free
        apply_props(item, props)
        self._items[item.id] = item
        if isinstance(tx, str):
            self._transactions[tx] = item.id
        self._changed(("created", item.id))
        return canonical(single_instance(item))

    # -- read -----------------------------------------------------------------------------
    def holds(self, event_id: str) -> bool:
        """Whether `event_id` names an item (or an occurrence) of this calendar."""
        try:
            self._resolve(event_id)
        except GraphRequestError:
            return False
        return True

    def _resolve(self, event_id: str) -> tuple[Item | None, Instance | None]:
        """(stored item, None) for singles/masters/exceptions; (master, occurrence) else."""
        if not isinstance(event_id, str):
            raise not_found(str(event_id))
        decoded = ids.decode(event_id)
        if decoded.digest != self._digest:
            raise not_found(event_id)
        item_raw = decoded.item_raw if decoded.immutable else self._by_rest.get(decoded.item_raw)
        if item_raw is None:  # a REST id of before a move, or of nothing
            raise not_found(event_id)
        item = self._items.get(ids.encode(item_raw))
        if decoded.original_start is None:
            if item is None:
                raise not_found(event_id)
            return item, None
        if item is None or item.kind != MASTER or decoded.original_start in item.cancelled:
            raise not_found(event_id)
        exception = item.exceptions.get(decoded.original_start)
        if exception is not None:
            return exception, None
        occurrence = occurrence_at(item, decoded.original_start)
        if occurrence is None:
            raise not_found(event_id)
        return item, occurrence

    # -- the two id forms -----------------------------------------------------------------
    def _new_rest_id(self, raw: bytes) -> None:
        old = self._rest_of.get(raw)
        if old is not None:
            self._by_rest.pop(old, None)
        rest = ids.new_rest_raw(self._digest, self._rng)
        self._rest_of[raw] = rest
        self._by_rest[rest] = raw

    def rest_id(self, event_id: str) -> str:
        """The current REST id of the item (or occurrence) an immutable id names; an id this
        store never made is given back unchanged."""
        try:
            decoded = ids.decode(event_id)
        except GraphRequestError:
            return event_id
        rest = self._rest_of.get(decoded.item_raw) if decoded.immutable else None
        return event_id if rest is None else ids.encode(rest + decoded.suffix)

    def in_form(self, doc: dict[str, Any], *, immutable: bool) -> dict[str, Any]:
        """`doc` (a rendered event) with REST ids unless the caller asked for immutable ones."""
        if immutable:
            return doc
        out = dict(doc)
        for name in ("id", "seriesMasterId"):
            if isinstance(out.get(name), str):
                out[name] = self.rest_id(out[name])
        if "webLink" in out and isinstance(out.get("id"), str):
            out["webLink"] = web_link(out["id"])
        tag = out.get("occurrenceId")
        if isinstance(tag, str) and tag.startswith("OID."):
            master, _, day = tag[4:].rpartition(".")
            out["occurrenceId"] = f"OID.{self.rest_id(master)}.{day}"
        return out

    def move(self, event_id: str, now: datetime) -> dict[str, Any]:
        """Move a single event or series to another folder and back (to deleted items and
        restored, say): a new REST id for it and its instances, a new changeKey, the same
        immutable id. Reported as an update."""
        now = utc(now, "now")
        item, occurrence = self._resolve(event_id)
        assert item is not None
        if occurrence is not None or item.kind == EXCEPTION:
            raise GraphRequestError(
                400,
                "ErrorInvalidRequest",
                "An occurrence moves with its series; move the series master (seriesMasterId).",
            )
        self._new_rest_id(item.raw)
        self._touch(item, now)
        self._changed(("updated", item.id))
        return canonical(single_instance(item))

    def get(self, event_id: str) -> dict[str, Any]:
        item, occurrence = self._resolve(event_id)
        if occurrence is not None:
            return canonical(occurrence)
        assert item is not None
        return canonical(single_instance(item))

    def extended(self, event_id: str) -> dict[str, str]:
        """The single-value extended properties of an event ({id: value}); an occurrence has
        its master's."""
        item, _ = self._resolve(event_id)
        assert item is not None
        return dict(item.props.get("extended") or {})

    def with_extended(self, prop_id: str, value: str) -> list[dict[str, Any]]:
        """/events (singles and masters) whose extended property `prop_id` (any case) is
        `value`, by start."""
        wanted = prop_id.lower()
        found = [
            i
            for i in self._items.values()
            if any(
                k.lower() == wanted and v == value
                for k, v in (i.props.get("extended") or {}).items()
            )
        ]
        found.sort(key=lambda i: (i.start, i.id))
        return [canonical(single_instance(i)) for i in found]

    def list_events(self) -> list[dict[str, Any]]:
        """/events: singles and series masters (no occurrences), by start."""
        items = sorted(self._items.values(), key=lambda i: (i.start, i.id))
        return [canonical(single_instance(i)) for i in items]

    def instance_records(self, start: datetime, end: datetime) -> list[Instance]:
        """calendarView entries overlapping [start, end) without rendering, by start."""
        lo, hi = utc(start, "start"), utc(end, "end")
        out: list[Instance] = []
        for item in self._items.values():
            if item.kind == MASTER:
                out.extend(occurrences(item, lo, hi))
            elif overlaps(item.start, item.end, lo, hi):
                out.append(single_instance(item))
        out.sort(key=lambda inst: (inst.start, inst.id))
        return out

    def instances(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """calendarView: singles, occurrences and exceptions overlapping [start, end)."""
        return [canonical(inst) for inst in self.instance_records(start, end)]

    def series_instances(
        self, event_id: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        """/events/{id}/instances: the occurrences and exceptions of one series."""
        item, occurrence = self._resolve(event_id)
        if occurrence is not None or item is None or item.kind != MASTER:
            raise GraphRequestError(
                400,
                "ErrorInvalidRequest",
                "instances can only be listed for a series master; use its seriesMasterId.",
            )
        found = occurrences(item, utc(start, "start"), utc(end, "end"))
        return [canonical(i) for i in sorted(found, key=lambda inst: (inst.start, inst.id))]

    def render(self, inst: Instance) -> dict[str, Any]:
        return canonical(inst)

    def snapshot(self, start: datetime, end: datetime) -> dict[str, str]:
        """{instance id: changeKey} of the calendarView [start, end) (the basis of delta)."""
        return {inst.id: inst.change_key for inst in self.instance_records(start, end)}

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    # -- update ---------------------------------------------------------------------------
    def update(
        self, event_id: str, patch: dict[str, Any], now: datetime, *, if_match: str | None = None
    ) -> dict[str, Any]:
        now = utc(now, "now")
        item, occurrence = self._resolve(event_id)
        assert item is not None
        current = occurrence.change_key if occurrence is not None else item.change_key
        check_if_match(if_match, current)
        props = parse_body(patch, partial=True)
        if occurrence is not None:
            exception = make_exception(item, occurrence, props, now, ids.new_change_key(self._rng))
            assert exception.original_start is not None
            item.exceptions[exception.original_start] = exception
            self._touch(item, now)
            self._changed(("updated", exception.id), ("updated", item.id))
            return canonical(single_instance(exception))
        before = (item.recurrence, item.start, item.kind)
        apply_checked(item, props)
        self._touch(item, now)
        changes = [("updated", item.id)]
        if item.kind == EXCEPTION and item.master is not None:
            changes.append(("updated", item.master.id))
        elif before != (item.recurrence, item.start, item.kind):
            changes.extend(("deleted", gone) for gone in reconcile(item))
        self._changed(*changes)
        return canonical(single_instance(item))

    # -- delete and cancel ----------------------------------------------------------------
    def delete(self, event_id: str, now: datetime) -> None:
        now = utc(now, "now")
        item, occurrence = self._resolve(event_id)
        assert item is not None
        if occurrence is not None or item.kind == EXCEPTION:
            master = item if occurrence is not None else item.master
            assert master is not None
            original = (occurrence or single_instance(item)).original_start
            assert original is not None
            master.exceptions.pop(original, None)
            master.cancelled.add(original)
            self._touch(master, now)
            gone = (occurrence or single_instance(item)).id  # immutable, whatever form came in
            self._changed(("deleted", gone), ("updated", master.id))
            return
        del self._items[item.id]
        changes = [("deleted", item.id)]
        changes.extend(("deleted", e.id) for e in item.exceptions.values())
        self._changed(*changes)

    def cancel(self, event_id: str, now: datetime, comment: str = "") -> None:
        """The organizer cancels: attendees are told (not simulated) and the event goes."""
        if not isinstance(comment, str) or len(comment) > _MAX_COMMENT:
            raise GraphRequestError(
                400,
                "ErrorInvalidRequest",
                f"Comment must be a string of at most {_MAX_COMMENT} characters.",
            )
        self.delete(event_id, now)
