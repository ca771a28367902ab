"""Events as Graph's JSON: the canonical form (UTC, HTML) and the Prefer conversions. Pure.

Rule: the store keeps one canonical rendering per item (UTC, HTML body, every property
Graph returns for an event, names and types exactly as in the v1.0 schema); `render_event`
applies the client's `Prefer: outlook.timezone` (Windows or IANA name, echoed back as
sent) and `Prefer: outlook.body-content-type="text"`. All-day events float: they render at
midnight in whatever zone was asked, as Graph shows them. Every call returns fresh dicts,
so a caller may mutate what it gets. Source: api/event-get (Prefer headers), resources/event.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

from graphsim.errors import GraphRequestError
from graphsim.model.calendar import ids
from graphsim.model.calendar.model import EXCEPTION, MASTER, OCCURRENCE, Instance, Item
from graphsim.model.calendar.timezones import (
    format_local,
    format_naive,
    format_offset,
    format_timestamp,
    parse_local,
    to_zone,
)

_UTC = to_zone("UTC")
_PREVIEW_LEN = 255  # bodyPreview: the first 255 characters of the text body


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def _copy_doc(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: copy_json(v) for k, v in doc.items()}


def _when(item: Item, which: str) -> dict[str, str]:
    instant = item.start if which == "start" else item.end
    if item.is_all_day:
        local = instant.astimezone(to_zone(item.start_zone)).replace(tzinfo=None)
        return {"dateTime": format_naive(local), "timeZone": "UTC"}
    return {"dateTime": format_local(instant, _UTC), "timeZone": "UTC"}


def canonical_item(item: Item) -> dict[str, Any]:
    """The canonical JSON of a stored item (cached on the item until it changes)."""
    if item.cache is not None:
        return item.cache
    p = item.props
    master = item.master
    text = html_to_text(p["body"]["content"])
    online = p["isOnlineMeeting"]
    doc: dict[str, Any] = {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": item.id,
        "createdDateTime": format_timestamp(item.created),
        "lastModifiedDateTime": format_timestamp(item.modified),
        "changeKey": item.change_key,
        "categories": list(p["categories"]),
        "transactionId": p.get("transactionId"),
        "originalStartTimeZone": p.get("originalStartTimeZone") or item.start_zone,
        "originalEndTimeZone": p.get("originalEndTimeZone") or item.end_zone,
        "iCalUId": item.ical_uid,
        "reminderMinutesBeforeStart": p["reminderMinutesBeforeStart"],
        "isReminderOn": p["isReminderOn"],
        "hasAttachments": False,
        "subject": p["subject"],
        "bodyPreview": " ".join(text.split())[:_PREVIEW_LEN],
        "importance": p["importance"],
        "sensitivity": p["sensitivity"],
        "isAllDay": item.is_all_day,
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": p["responseRequested"],
        "seriesMasterId": master.id if master is not None else None,
        "showAs": p["showAs"],
        "type": item.kind,
        "webLink": web_link(item.id),
        "onlineMeetingUrl": None,
        "isOnlineMeeting": online,
        "onlineMeetingProvider": p["onlineMeetingProvider"],
        "allowNewTimeProposals": p["allowNewTimeProposals"],
        "occurrenceId": None,
        "isDraft": p["isDraft"],
        "hideAttendees": p["hideAttendees"],
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": dict(p["body"]),
        "start": _when(item, "start"),
        "end": _when(item, "end"),
        "location": p["location"],
        "locations": p["locations"],
        "recurrence": item.recurrence if item.kind == MASTER else None,
        "attendees": p["attendees"],
        "organizer": p["organizer"],
        "onlineMeeting": {"joinUrl": _join_url(item)} if online else None,
    }
    if item.kind == EXCEPTION and master is not None and item.original_start is not None:
        doc["originalStart"] = format_offset(item.original_start, _UTC)
        doc["occurrenceId"] = _occurrence_tag(master, item.original_start)
    item.cache = doc
    return doc


def canonical(inst: Instance) -> dict[str, Any]:
    """A fresh canonical JSON document for any calendarView instance or stored item."""
    if inst.kind != OCCURRENCE:
        return _copy_doc(canonical_item(inst.item))
    master = inst.item
    assert inst.original_start is not None
    doc = _copy_doc(canonical_item(master))
    zone = to_zone(master.start_zone)
    local_start = inst.start.astimezone(zone).replace(tzinfo=None)
    doc.update(
        {
            "@odata.etag": f'W/"{inst.change_key}"',
            "id": inst.id,
            "iCalUId": ids.occurrence_ical_uid(master.ical_uid, local_start),
            "seriesMasterId": master.id,
            "type": OCCURRENCE,
            "webLink": web_link(inst.id),
            "occurrenceId": _occurrence_tag(master, inst.original_start),
            "recurrence": None,
            "originalStart": format_offset(inst.original_start, _UTC),
        }
    )
    if master.is_all_day:
        local_end = inst.end.astimezone(zone).replace(tzinfo=None)
        doc["start"] = {"dateTime": format_naive(local_start), "timeZone": "UTC"}
        doc["end"] = {"dateTime": format_naive(local_end), "timeZone": "UTC"}
    else:
        doc["start"] = {"dateTime": format_local(inst.start, _UTC), "timeZone": "UTC"}
        doc["end"] = {"dateTime": format_local(inst.end, _UTC), "timeZone": "UTC"}
    return doc


def _occurrence_tag(master: Item, original_start: Any) -> str:
    # "OID.<master id>.<yyyy-mm-dd>": the form Graph documents for occurrenceId.
    zone = to_zone(master.start_zone)
    return f"OID.{master.id}.{original_start.astimezone(zone).date().isoformat()}"


def web_link(event_id: str) -> str:
    return (
        f"https://outlook.office365.com/owa/?itemid={quote(event_id, safe='')}"
        "&exvsurl=1&path=/calendar/item"
    )


def _join_url(item: Item) -> str:
    return f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{item.ical_uid[-32:]}%40thread.v2/0"


def render_event(
    event: dict[str, Any], *, time_zone: str | None = None, body_type: str = "html"
) -> dict[str, Any]:
    """Apply Prefer: outlook.timezone and outlook.body-content-type to a canonical event."""
    doc = dict(event)
    if time_zone and time_zone != "UTC":
        zone = to_zone(time_zone)
        for key in ("start", "end"):
            when = event.get(key)
            if isinstance(when, dict):
                doc[key] = _convert(when, zone, time_zone, bool(event.get("isAllDay")))
        original = event.get("originalStart")
        if isinstance(original, str):
            naive, _ = parse_local(original, "originalStart")
            doc["originalStart"] = format_offset(naive.replace(tzinfo=_UTC), zone)
    if body_type not in ("html", "text"):
        raise GraphRequestError(
            400,
            "ErrorInvalidRequest",
            f'outlook.body-content-type must be "text" or "html", not "{body_type}".',
        )
    body = event.get("body")
    if body_type == "text" and isinstance(body, dict) and body.get("contentType") == "html":
        doc["body"] = {"contentType": "text", "content": html_to_text(body.get("content") or "")}
    return doc


def _convert(when: dict[str, Any], zone: Any, name: str, all_day: bool) -> dict[str, str]:
    if all_day:
        return {"dateTime": when["dateTime"], "timeZone": name}
    naive, was_utc = parse_local(when["dateTime"], "dateTime")
    source = _UTC if was_utc else to_zone(when.get("timeZone") or "UTC")
    instant = naive.replace(tzinfo=source)
    return {"dateTime": format_local(instant, zone), "timeZone": name}


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6"})
    _SKIP = frozenset({"head", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BLOCKS and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            # Line breaks in HTML source are plain whitespace; <br> and blocks make lines.
            self.parts.append(data.replace("\r", " ").replace("\n", " "))


def html_to_text(content: str) -> str:
    """The text Graph gives for an HTML body when asked for text (tags gone, breaks kept)."""
    if "<" not in content:
        return content
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    text = re.sub(r"[ \t\xa0]+", " ", "".join(parser.parts))
    text = re.sub(r" ?\n ?", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
