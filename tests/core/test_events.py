"""Normalising Graph events into mirror properties: times, privacy, size limits, hashing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.core.entity import CHUNK_UNITS, entity_size, utf16_units
from shared.core.events import DIGESTS_RESERVE, ENTITY_BUDGET, join_properties, normalize_event
from shared.core.model import MailboxOptions
from shared.errors import InputError

OPTS = MailboxOptions()
MASK = MailboxOptions(private="mask")


def graph_event(**overrides: Any) -> dict[str, Any]:
    """A calendarView/delta event as Graph returns it with Prefer: outlook.timezone="UTC"."""
    event: dict[str, Any] = {
        "@odata.etag": 'W/"DwAAABYAAAB"',
        "id": "AAMkAGI2/TQ3+ZC04=",
        "changeKey": "DwAAABYAAAB",
        "createdDateTime": "2026-11-01T08:00:00.1234567Z",
        "lastModifiedDateTime": "2026-11-02T08:00:00Z",
        "categories": ["Blue category"],
        "subject": "Design review",
        "bodyPreview": "Agenda",
        "body": {"contentType": "html", "content": "<p>Agenda</p>"},
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 15,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "showAs": "busy",
        "type": "singleInstance",
        "seriesMasterId": None,
        "iCalUId": "040000008200E00074C5B7101A82E008",
        "webLink": "https://outlook.office365.com/owa/?itemid=x",
        "isOnlineMeeting": True,
        "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/x"},
        "onlineMeetingUrl": None,
        "originalStartTimeZone": "W. Europe Standard Time",
        "originalEndTimeZone": "W. Europe Standard Time",
        "start": {"dateTime": "2026-11-21T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-21T09:30:00.0000000", "timeZone": "UTC"},
        "location": {"displayName": "Room 1", "locationType": "default"},
        "locations": [{"displayName": "Room 1", "locationType": "default"}],
        "attendees": [
            {
                "type": "required",
                "status": {"response": "accepted", "time": "2026-11-02T08:00:00Z"},
                "emailAddress": {"name": "Ada", "address": "ada@example.com"},
            }
        ],
        "organizer": {"emailAddress": {"name": "Bob", "address": "bob@example.com"}},
    }
    event.update(overrides)
    return event


def test_timed_event_properties() -> None:
    """A timed UTC event maps to the documented snake_case properties."""
    mirrored = normalize_event(graph_event(), OPTS)
    assert mirrored.event_id == "AAMkAGI2/TQ3+ZC04="
    assert mirrored.change_key == "DwAAABYAAAB"
    props = dict(mirrored.properties)
    assert set(json.loads(props.pop("field_digests"))) == set(mirrored.feed) - {"id", "changeKey"}
    assert props == {
        "subject": "Design review",
        "body_content_type": "html",
        "body": "<p>Agenda</p>",
        "body_preview": "Agenda",
        "body_length": 13,
        "body_truncated": False,
        "start": datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
        "end": datetime(2026, 11, 21, 9, 30, tzinfo=UTC),
        "start_time_zone": "UTC",
        "end_time_zone": "UTC",
        "original_start_time_zone": "W. Europe Standard Time",
        "is_all_day": False,
        "all_day_start_date": "",
        "all_day_end_date": "",
        "type": "singleInstance",
        "series_master_id": "",
        "sensitivity": "normal",
        "show_as": "busy",
        "is_cancelled": False,
        "is_reminder_on": True,
        "reminder_minutes_before_start": 15,
        "importance": "normal",
        "location": "Room 1",
        "locations_json": '[{"displayName": "Room 1", "locationType": "default"}]',
        "attendees_json": '[{"emailAddress": {"address": "ada@example.com", "name": "Ada"}, '
        '"status": {"response": "accepted", "time": "2026-11-02T08:00:00Z"}, "type": "required"}]',
        "organizer_name": "Bob",
        "organizer_address": "bob@example.com",
        "categories_json": '["Blue category"]',
        "created": datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=UTC),
        "last_modified": datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        "ical_uid": "040000008200E00074C5B7101A82E008",
        "web_link": "https://outlook.office365.com/owa/?itemid=x",
        "is_online_meeting": True,
        "online_meeting_url": "https://teams.microsoft.com/l/meetup-join/x",
        "is_organizer": True,
        "response_status": "organizer",
        "masked": False,
    }


def test_values_are_table_ready() -> None:
    """Every value is str, int, bool or an aware UTC datetime."""
    for value in normalize_event(graph_event(), OPTS).properties.values():
        assert isinstance(value, str | int | bool | datetime)
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ({"dateTime": "2026-11-21T10:00:00.0000000", "timeZone": "W. Europe Standard Time"}, 9),
        ({"dateTime": "2026-07-21T11:00:00", "timeZone": "Europe/Berlin"}, 9),
        ({"dateTime": "2026-11-21T01:00:00", "timeZone": "Pacific Standard Time"}, 9),
        ({"dateTime": "2026-11-21T09:00:00", "timeZone": "tzone://Microsoft/Utc"}, 9),
        ({"dateTime": "2026-11-21T09:00:00Z", "timeZone": ""}, 9),
    ],
)
def test_timed_start_converted_to_utc(start: dict[str, str], expected: int) -> None:
    """Windows and IANA zone names both convert the wall time to the UTC instant."""
    props = normalize_event(graph_event(start=start), OPTS).properties
    assert props["start"].hour == expected
    assert props["start"].tzinfo is UTC
    assert props["start_time_zone"] == start["timeZone"]


def test_all_day_dates_are_not_shifted() -> None:
    """An all-day event keeps its written dates; start/end are midnights of the mailbox zone."""
    event = graph_event(
        isAllDay=True,
        start={"dateTime": "2026-11-21T00:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2026-11-23T00:00:00.0000000", "timeZone": "UTC"},
    )
    props = normalize_event(event, MailboxOptions(time_zone="Tokyo Standard Time")).properties
    assert (props["all_day_start_date"], props["all_day_end_date"]) == ("2026-11-21", "2026-11-23")
    assert props["start"] == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 00:00 in Tokyo
    assert props["end"] == datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    west = graph_event(
        isAllDay=True,
        start={"dateTime": "2026-11-21T00:00:00", "timeZone": "Pacific Standard Time"},
        end={"dateTime": "2026-11-22T00:00:00", "timeZone": "Pacific Standard Time"},
    )
    props = normalize_event(west, OPTS).properties
    assert props["all_day_start_date"] == "2026-11-21"  # not 2026-11-21T08:00Z's date shifted
    assert props["start"] == datetime(2026, 11, 21, tzinfo=UTC)
    assert date.fromisoformat(props["all_day_end_date"]) == date(2026, 11, 22)


@pytest.mark.parametrize("sensitivity", ["private", "confidential", "Private"])
def test_private_events_masked(sensitivity: str) -> None:
    """With mask, private/confidential events lose subject, body, places, people and join URL."""
    props = normalize_event(graph_event(sensitivity=sensitivity), MASK).properties
    assert props["masked"] is True
    assert props["subject"] == "Private appointment"
    assert props["body"] == props["body_preview"] == props["location"] == ""
    assert props["locations_json"] == props["attendees_json"] == "[]"
    assert props["online_meeting_url"] == ""
    assert props["start"] == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    assert props["show_as"] == "busy"


@pytest.mark.parametrize(
    ("sensitivity", "options"),
    [("normal", MASK), ("personal", MASK), ("private", OPTS), ("confidential", OPTS)],
)
def test_other_events_not_masked(sensitivity: str, options: MailboxOptions) -> None:
    """Normal and personal events, and every event under mirror, keep their content."""
    props = normalize_event(graph_event(sensitivity=sensitivity), options).properties
    assert props["masked"] is False
    assert props["subject"] == "Design review"


def test_series_master_keeps_its_recurrence() -> None:
    """A series master is mirrored with its pattern and range, which its feed form carries;
    other events have no recurrence."""
    recurrence = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        "range": {"type": "numbered", "startDate": "2026-11-23", "numberOfOccurrences": 5},
    }
    master = normalize_event(graph_event(type="seriesMaster", recurrence=recurrence), OPTS)
    assert master.properties["type"] == "seriesMaster"
    assert json.loads(master.properties["recurrence_json"]) == recurrence
    assert master.feed["recurrence"] == recurrence
    assert normalize_event(graph_event(), OPTS).feed["recurrence"] is None


@pytest.mark.parametrize(
    ("event", "match"),
    [
        (graph_event(id=None), "non-empty string id"),
        (graph_event(start=None), "start must be an object"),
        (graph_event(end={"dateTime": "tomorrow"}), "end.dateTime is not ISO 8601"),
        (graph_event(start={"dateTime": "2026-11-21T09:00:00", "timeZone": "Mars"}), "'Mars'"),
        (graph_event(createdDateTime="yesterday"), "createdDateTime is not an ISO 8601"),
    ],
)
def test_malformed_events_refused(event: dict[str, Any], match: str) -> None:
    """Shapes the mirror cannot represent are InputErrors naming the field."""
    with pytest.raises(InputError, match=match):
        normalize_event(event, OPTS)


def test_nulls_become_defaults() -> None:
    """Null text is "", null flags False, absent numbers and timestamps are left out."""
    nulls = {k: None for k in graph_event() if k not in ("id", "start", "end")}
    props = normalize_event(graph_event(**nulls), OPTS).properties
    assert props["subject"] == ""
    assert props["is_reminder_on"] is False
    assert props["type"] == "singleInstance"
    assert props["attendees_json"] == "[]"
    assert "reminder_minutes_before_start" not in props
    assert "created" not in props


def test_never_timestamps_left_out() -> None:
    """Graph's 0001-01-01 "never" is left out: Table Storage holds no date before 1601."""
    props = normalize_event(graph_event(originalStart="0001-01-01T00:00:00Z"), OPTS).properties
    assert "original_start" not in props


def test_occurrence_fields() -> None:
    """Occurrences keep their series master id and original start."""
    props = normalize_event(
        graph_event(type="occurrence", seriesMasterId="M/1=", originalStart="2026-11-21T09:00:00Z"),
        OPTS,
    ).properties
    assert props["series_master_id"] == "M/1="
    assert props["original_start"] == datetime(2026, 11, 21, 9, tzinfo=UTC)


def test_content_hash_is_pinned_and_stable() -> None:
    """The hash is a fixed function of the content, not of key order or changeKey."""
    first = normalize_event(graph_event(), OPTS)
    reordered = dict(reversed(list(graph_event(changeKey="other").items())))
    assert normalize_event(reordered, OPTS).content_hash == first.content_hash
    assert first.content_hash == normalize_event(copy.deepcopy(graph_event()), OPTS).content_hash
    assert len(first.content_hash) == 64
    assert normalize_event(graph_event(subject="Moved"), OPTS).content_hash != first.content_hash
    assert normalize_event(graph_event(), MASK).content_hash == first.content_hash
    masked = normalize_event(graph_event(sensitivity="private"), MASK).content_hash
    assert masked != normalize_event(graph_event(sensitivity="private"), OPTS).content_hash


def test_content_hash_pinned_value() -> None:
    """The canonical form is pinned: a change to it would rewrite every mirrored event."""
    minimal = {
        "id": "e1",
        "start": {"dateTime": "2026-11-21T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-21T10:00:00", "timeZone": "UTC"},
    }
    assert normalize_event(minimal, OPTS).content_hash == PINNED_HASH


PINNED_HASH = "58d157c04d6b81af8d51d74bd5d273e483fb14b0e2b0ef7f47902edf248881a0"


def test_long_body_is_chunked_and_joined_back() -> None:
    """A 100,000-character body is stored in parts under 32,000 units that join back."""
    body = "x" * 100_000
    mirrored = normalize_event(graph_event(body={"contentType": "text", "content": body}), OPTS)
    props = mirrored.properties
    assert props["body__parts"] == 4
    assert all(utf16_units(v) <= CHUNK_UNITS for v in props.values() if isinstance(v, str))
    joined = join_properties(props)
    assert joined["body"] == body
    assert "body__1" not in joined
    assert "body__parts" not in joined
    assert joined["body_truncated"] is False


def test_astral_body_parts_never_split_pairs() -> None:
    """Parts of an emoji body are each valid text and rejoin to the original."""
    body = "😀" * 40_000  # 80,000 UTF-16 units
    props = normalize_event(graph_event(body={"content": body}), OPTS).properties
    assert props["body__parts"] == 3
    assert join_properties(props)["body"] == body


@pytest.mark.parametrize("unit", ["x", "é", "😀"])
def test_huge_body_truncated_to_fit_the_entity(unit: str) -> None:
    """A body too large for one entity is cut to fit, flagged, with its original length kept."""
    body = unit * 2_000_000
    props = normalize_event(graph_event(body={"content": body}), OPTS).properties
    assert props["body_truncated"] is True
    assert props["body_length"] == 2_000_000
    size = entity_size(props)
    assert ENTITY_BUDGET - DIGESTS_RESERVE - 2_048 < size <= ENTITY_BUDGET  # digests included
    assert len(props) <= 252
    joined = join_properties(props)["body"]
    assert body.startswith(joined)
    assert len(joined) < len(body)


def test_lone_surrogates_replaced() -> None:
    """Text that is not valid Unicode is stored with U+FFFD instead of failing the write."""
    props = normalize_event(graph_event(subject="a\ud800b"), OPTS).properties
    assert props["subject"] == "a\ufffdb"
