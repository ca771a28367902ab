"""Pure: EWS calendar items in Graph's shapes, and what a SyncFolderItems round changes.

Rules:
- An item becomes a Graph-shaped event (the JSON calendarView/delta gives), so that
  `core.events.normalize_event` and everything after it work unchanged: `type` singleInstance,
  occurrence or exception; `showAs`, `sensitivity`, `importance`, responses in Graph's words;
  timed events in UTC; all-day events at local midnight in their own zone (EWS writes an
  all-day item as the UTC instants of its zone's midnights); EWS's Windows zone ids in IANA
  names (`core.zones`).
- Ids: a single keeps its EWS ItemId. An occurrence or exception is
  `<master ItemId>~<original start, UTC, YYYYMMDDTHHMMSSZ>`: stable while the series lives
  (an occurrence edited into an exception keeps its id, as in Graph), and every instance of a
  series is found in the mirror by its master's id (EWS ItemIds are base64: no `~`).
- The cursor of an EWS mailbox is `ews-sync:<SyncFolderItems sync state>`, which no Graph
  delta link can be mistaken for (those are https URLs), and the other way round.
- An incremental round: SyncFolderItems names the items created, updated or deleted since the
  state; the instances of those items within the window come from one CalendarView (a
  series' occurrences and exceptions through the master's UID), and every instance the mirror
  holds of a changed or deleted item that the view no longer shows (moved out of the window,
  cancelled, deleted, no longer recurring) is removed.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from shared.core.model import BodyType, DeltaItem, DeltaPageData
from shared.core.zones import iana_zone_name, resolve_zone
from shared.errors import InputError

SYNC_PREFIX = "ews-sync:"
SEP = "~"
PAGE_SIZE = 100

_TYPES = {
    "Single": "singleInstance",
    "Occurrence": "occurrence",
    "Exception": "exception",
    "RecurringMaster": "seriesMaster",
}
_SHOW_AS = {
    "Free": "free",
    "Tentative": "tentative",
    "Busy": "busy",
    "OOF": "oof",
    "WorkingElsewhere": "workingElsewhere",
    "NoData": "unknown",
}
_RESPONSES = {
    "Organizer": "organizer",
    "Accept": "accepted",
    "Tentative": "tentativelyAccepted",
    "Decline": "declined",
    "NoResponseReceived": "notResponded",
    "Unknown": "none",
}
_TAGS = re.compile(r"<[^>]+>")
_BLANKS = re.compile(r"[ \t\r\f\v]+")
NEVER = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Attendee:
    name: str
    address: str
    response: str = "Unknown"  # EWS ResponseType
    kind: str = "required"  # required | optional | resource


@dataclass(frozen=True)
class EwsItem:
    """A calendar item as EWS gives it, in plain values (the adapter reads exchangelib's)."""

    item_id: str
    change_key: str
    kind: str  # EWS CalendarItemType: Single | Occurrence | Exception | RecurringMaster
    start: datetime | date
    end: datetime | date
    uid: str = ""
    subject: str = ""
    body: str = ""
    body_is_html: bool = True
    is_all_day: bool = False
    start_zone: str = ""  # Windows zone id (StartTimeZone Id), or IANA
    end_zone: str = ""
    original_start: datetime | None = None
    location: str = ""
    sensitivity: str = "Normal"
    free_busy: str = "Busy"
    importance: str = "Normal"
    organizer_name: str = ""
    organizer_address: str = ""
    attendees: tuple[Attendee, ...] = ()
    categories: tuple[str, ...] = ()
    reminder_set: bool = False
    reminder_minutes: int | None = None
    is_cancelled: bool = False
    my_response: str = "Unknown"
    created: datetime | None = None
    modified: datetime | None = None


@dataclass(frozen=True)
class SyncChange:
    """One change SyncFolderItems reported: `kind` create, update or delete."""

    kind: str
    item_id: str
    uid: str = ""
    item_type: str = ""  # CalendarItemType; empty for a delete


@dataclass(frozen=True)
class RoundPlan:
    """What a round hands the engine: its items (events and removals), and how many
    instances were left out (an occurrence whose series the round does not know)."""

    items: tuple[DeltaItem, ...]
    skipped: int = 0
    notes: tuple[str, ...] = field(default=())


def ews_user_id(smtp: str) -> str:
    """The user id of an EWS mailbox (EWS has no object ids): a UUID derived from its SMTP
    address, stable across hosts; InputError when `smtp` is not an address."""
    address = smtp.strip().lower()
    if address.count("@") != 1 or not all(address.split("@")):
        raise InputError(
            f"{smtp!r} is not an SMTP address: enrol a mailbox on Exchange Server by its primary "
            "SMTP address"
        )
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{address}"))


def sync_link(state: str) -> str:
    """The cursor value for a sync state."""
    return SYNC_PREFIX + state


def parse_sync_link(link: str) -> str | None:
    """The sync state in a cursor value; None when the cursor is empty or not EWS's (a Graph
    delta link left by the provider a tenant used before)."""
    return link[len(SYNC_PREFIX) :] or None if link.startswith(SYNC_PREFIX) else None


def instance_id(item: EwsItem, master_id: str | None) -> str:
    """The mirror's id of an instance (see the module docstring)."""
    if item.kind in ("Occurrence", "Exception"):
        original = item.original_start or _as_datetime(item.start)
        stamp = original.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{master_id or item.item_id}{SEP}{stamp}"
    return item.item_id


def owner_id(event_id: str) -> str:
    """The EWS item an instance belongs to: the single itself, or the series master."""
    return event_id.split(SEP, 1)[0]


def _as_datetime(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(0), UTC)


def _zone(name: str) -> tzinfo:
    return resolve_zone(name or "UTC") or UTC


def _iana(name: str) -> str:
    return (iana_zone_name(name) or name) if name else "UTC"


def _local_midnight(value: datetime | date, zone_name: str) -> str:
    day = value.astimezone(_zone(zone_name)).date() if isinstance(value, datetime) else value
    return f"{day.isoformat()}T00:00:00.0000000"


def _utc_wall(value: datetime | date) -> str:
    return _as_datetime(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def _stamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _as_datetime(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def html_to_text(body: str) -> str:
    """A plain-text rendering of an HTML body (tags dropped, entities decoded, blank runs
    folded), as Graph gives with Prefer: outlook.body-content-type="text"."""
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>", "\n", body)
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", text)
    text = html.unescape(_TAGS.sub("", text))
    lines = (_BLANKS.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _body(item: EwsItem, body_type: BodyType) -> tuple[dict[str, str], str]:
    if body_type == "text":
        text = html_to_text(item.body) if item.body_is_html else item.body
        return {"contentType": "text", "content": text}, text
    if item.body_is_html:
        return {"contentType": "html", "content": item.body}, html_to_text(item.body)
    escaped = html.escape(item.body).replace("\n", "<br>")
    return {"contentType": "html", "content": f"<html><body>{escaped}</body></html>"}, item.body


def _address(name: str, address: str) -> dict[str, str]:
    return {"name": name, "address": address}


def to_graph_event(item: EwsItem, *, master_id: str | None, body_type: BodyType) -> dict[str, Any]:
    """The Graph event JSON of one instance (never a master: masters are not mirrored)."""
    start_zone = _iana(item.start_zone)
    end_zone = _iana(item.end_zone or item.start_zone)
    if item.is_all_day:
        start = {"dateTime": _local_midnight(item.start, item.start_zone), "timeZone": start_zone}
        end = {
            "dateTime": _local_midnight(item.end, item.end_zone or item.start_zone),
            "timeZone": end_zone,
        }
    else:
        start = {"dateTime": _utc_wall(item.start), "timeZone": "UTC"}
        end = {"dateTime": _utc_wall(item.end), "timeZone": "UTC"}
    body, preview = _body(item, body_type)
    series = item.kind in ("Occurrence", "Exception")
    event: dict[str, Any] = {
        "id": instance_id(item, master_id),
        "changeKey": item.change_key,
        "type": _TYPES.get(item.kind, "singleInstance"),
        "seriesMasterId": master_id if series else None,
        "iCalUId": item.uid,
        "subject": item.subject,
        "body": body,
        "bodyPreview": preview[:255],
        "start": start,
        "end": end,
        "originalStartTimeZone": start_zone,
        "originalEndTimeZone": end_zone,
        "isAllDay": item.is_all_day,
        "sensitivity": item.sensitivity.lower() or "normal",
        "showAs": _SHOW_AS.get(item.free_busy, "unknown"),
        "importance": item.importance.lower() or "normal",
        "isCancelled": item.is_cancelled,
        "isReminderOn": item.reminder_set,
        "categories": list(item.categories),
        "location": {"displayName": item.location},
        "locations": [{"displayName": item.location}] if item.location else [],
        "organizer": {"emailAddress": _address(item.organizer_name, item.organizer_address)},
        "isOrganizer": item.my_response == "Organizer",
        "responseStatus": {"response": _RESPONSES.get(item.my_response, "none"), "time": NEVER},
        "attendees": [
            {
                "type": a.kind,
                "status": {"response": _RESPONSES.get(a.response, "none"), "time": NEVER},
                "emailAddress": _address(a.name, a.address),
            }
            for a in item.attendees
        ],
        "isOnlineMeeting": False,
        "onlineMeeting": None,
        "webLink": "",
    }
    if item.reminder_minutes is not None:
        event["reminderMinutesBeforeStart"] = item.reminder_minutes
    if series:
        event["originalStart"] = _stamp(item.original_start or _as_datetime(item.start))
    for key, value in (("createdDateTime", item.created), ("lastModifiedDateTime", item.modified)):
        if value is not None:
            event[key] = _stamp(value)
    return event


def plan_full(
    instances: Iterable[EwsItem], masters_by_uid: dict[str, str], *, body_type: BodyType
) -> RoundPlan:
    """Every instance of the window's CalendarView as an event; the engine's full diff removes
    what the mirror holds beyond them."""
    items: list[DeltaItem] = []
    skipped = 0
    for inst in instances:
        master = masters_by_uid.get(inst.uid) if inst.kind in ("Occurrence", "Exception") else None
        if inst.kind in ("Occurrence", "Exception") and master is None:
            skipped += 1  # its master was created after the sync walk: the next round has it
            continue
        if inst.kind == "RecurringMaster":
            continue
        event = to_graph_event(inst, master_id=master, body_type=body_type)
        items.append(DeltaItem(event["id"], event=event))
    return RoundPlan(tuple(items), skipped)


def plan_changes(
    changes: Iterable[SyncChange],
    instances: Iterable[EwsItem],
    mirror_ids: Iterable[str],
    *,
    body_type: BodyType,
) -> RoundPlan:
    """The events and removals of an incremental round (see the module docstring)."""
    latest: dict[str, SyncChange] = {}
    for change in changes:
        latest[change.item_id] = change
    masters = {
        c.uid: c.item_id for c in latest.values() if c.item_type == "RecurringMaster" and c.uid
    }
    touched = set(latest)
    items: list[DeltaItem] = []
    shown: set[str] = set()
    for inst in instances:
        if inst.kind in ("Occurrence", "Exception"):
            master = masters.get(inst.uid)
            if master is None:
                continue
        elif inst.kind == "Single" and latest.get(inst.item_id, SyncChange("", "")).kind in (
            "create",
            "update",
        ):
            master = None
        else:
            continue
        event = to_graph_event(inst, master_id=master, body_type=body_type)
        if event["id"] not in shown:
            shown.add(event["id"])
            items.append(DeltaItem(event["id"], event=event))
    for held in sorted(mirror_ids):
        if owner_id(held) in touched and held not in shown:
            items.append(DeltaItem(held, removed="deleted"))
    return RoundPlan(tuple(items))


def pages(plan: RoundPlan, state: str, *, size: int = PAGE_SIZE) -> Iterator[DeltaPageData]:
    """The round's items in pages of `size`; the last one (always at least one) carries the
    cursor for the next round."""
    items = plan.items
    chunks = [items[i : i + size] for i in range(0, len(items), size)] or [()]
    for n, chunk in enumerate(chunks, 1):
        last = n == len(chunks)
        yield DeltaPageData(
            items=tuple(chunk),
            next_link=None if last else f"{SYNC_PREFIX}page/{n + 1}",
            delta_link=sync_link(state) if last else None,
        )
