"""Rendering: every event shape under every Prefer option validates against Graph's schema,
and time zones and body types convert the way Graph's Prefer headers do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.render import html_to_text, render_event
from graphsim.model.calendar.store import CalendarStore
from graphsim.model.calendar.timezones import to_zone
from graphsim.schema import validate

NOW = datetime(2026, 1, 1, 8, 30, tzinfo=UTC)
LO, HI = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def _when(text: str, zone: str = "Pacific Standard Time") -> dict[str, str]:
    return {"dateTime": text, "timeZone": zone}


def _all_shapes() -> dict[str, dict[str, Any]]:
    """One of each: single, rich single, all-day, master, occurrence, exception."""
    store = CalendarStore(
        "adele@contoso.com", seed=7, address="adele@contoso.com", display_name="Adele Vance"
    )
    shapes = {
        "single": store.create(
            {
                "subject": "1:1",
                "start": _when("2026-01-05T09:00:00"),
                "end": _when("2026-01-05T09:30:00"),
            },
            NOW,
        ),
        "rich": store.create(
            {
                "subject": "Review",
                "body": {"contentType": "html", "content": "<p>Agenda</p>"},
                "start": _when("2026-01-06T09:00:00", "Europe/London"),
                "end": _when("2026-01-06T10:00:00", "Europe/London"),
                "location": {
                    "displayName": "Room 1",
                    "address": {"city": "London"},
                    "coordinates": {"latitude": 51.5, "longitude": -0.12},
                },
                "attendees": [
                    {"emailAddress": {"address": "b@contoso.com", "name": "B"}, "type": "optional"}
                ],
                "categories": ["Red category"],
                "importance": "high",
                "sensitivity": "private",
                "showAs": "tentative",
                "isOnlineMeeting": True,
                "isReminderOn": False,
                "reminderMinutesBeforeStart": 0,
                "transactionId": "tx-1",
            },
            NOW,
        ),
        "all_day": store.create(
            {
                "subject": "Holiday",
                "isAllDay": True,
                "start": _when("2026-01-07T00:00:00", "Europe/Berlin"),
                "end": _when("2026-01-09T00:00:00", "Europe/Berlin"),
            },
            NOW,
        ),
    }
    shapes["master"] = store.create(
        {
            "subject": "Stand-up",
            "start": _when("2026-01-05T10:00:00"),
            "end": _when("2026-01-05T10:15:00"),
            "recurrence": {
                "pattern": {"type": "weekly", "daysOfWeek": ["monday", "tuesday"]},
                "range": {"type": "noEnd", "startDate": "2026-01-05"},
            },
        },
        NOW,
    )
    occurrences = store.series_instances(shapes["master"]["id"], LO, HI)
    shapes["occurrence"] = occurrences[0]
    shapes["exception"] = store.update(occurrences[1]["id"], {"subject": "moved"}, NOW)
    return shapes


SHAPES = _all_shapes()
PREFERS = [
    pytest.param(None, "html", id="utc-html"),
    pytest.param("Pacific Standard Time", "html", id="windows-zone"),
    pytest.param("Asia/Kolkata", "text", id="iana-zone-text"),
    pytest.param("UTC", "text", id="utc-text"),
]


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(("time_zone", "body_type"), PREFERS)
def test_every_rendered_event_validates_against_the_graph_schema(
    shape: str, time_zone: str | None, body_type: str
) -> None:
    """Singles, all-day events, masters, occurrences and exceptions are valid Graph events."""
    doc = render_event(SHAPES[shape], time_zone=time_zone, body_type=body_type)
    assert validate("event", doc) == []
    assert doc["@odata.etag"] == f'W/"{doc["changeKey"]}"'
    assert doc["start"]["timeZone"] == (time_zone or "UTC")


def test_shapes_carry_the_type_specific_properties() -> None:
    """Only masters carry recurrence; occurrences and exceptions carry originalStart."""
    assert SHAPES["master"]["recurrence"] is not None
    assert "originalStart" not in SHAPES["single"]
    for shape in ("occurrence", "exception"):
        doc = SHAPES[shape]
        assert doc["recurrence"] is None
        assert doc["seriesMasterId"] == SHAPES["master"]["id"]
        assert doc["originalStart"].endswith("Z")
        assert doc["occurrenceId"].startswith(f"OID.{SHAPES['master']['id']}.")
    assert SHAPES["occurrence"]["iCalUId"] != SHAPES["master"]["iCalUId"]
    assert SHAPES["rich"]["onlineMeetingProvider"] == "teamsForBusiness"
    assert SHAPES["rich"]["onlineMeeting"]["joinUrl"].startswith("https://")
    assert SHAPES["rich"]["locations"][0]["displayName"] == "Room 1"


def test_time_zone_preference_converts_and_echoes_the_name_asked() -> None:
    """09:00 Pacific is 17:00Z, and renders back as 09:00 labelled with the name sent."""
    single = SHAPES["single"]
    assert single["start"] == {"dateTime": "2026-01-05T17:00:00.0000000", "timeZone": "UTC"}
    for name in ("Pacific Standard Time", "America/Los_Angeles"):
        doc = render_event(single, time_zone=name)
        assert doc["start"] == {"dateTime": "2026-01-05T09:00:00.0000000", "timeZone": name}
    assert single["originalStartTimeZone"] == "Pacific Standard Time"


def test_original_start_converts_to_the_asked_zone() -> None:
    """originalStart keeps its instant and takes the asked zone's offset."""
    doc = render_event(SHAPES["occurrence"], time_zone="Pacific Standard Time")
    assert doc["originalStart"] == "2026-01-05T10:00:00-08:00"


def test_all_day_events_float_at_midnight_in_any_zone() -> None:
    """An all-day event shows midnight-to-midnight whatever zone the client prefers."""
    for name in (None, "Tokyo Standard Time", "Hawaiian Standard Time"):
        doc = render_event(SHAPES["all_day"], time_zone=name)
        assert doc["start"]["dateTime"] == "2026-01-07T00:00:00.0000000"
        assert doc["end"]["dateTime"] == "2026-01-09T00:00:00.0000000"


def test_text_body_preference_strips_html() -> None:
    """outlook.body-content-type=text turns the stored HTML into its text."""
    doc = render_event(SHAPES["rich"], body_type="text")
    assert doc["body"] == {"contentType": "text", "content": "Agenda"}
    assert SHAPES["rich"]["body"]["contentType"] == "html"


def test_render_returns_fresh_objects() -> None:
    """Mutating what the store returned does not change the stored event."""
    store = CalendarStore("u@contoso.com", seed=1)
    doc = store.create(
        {
            "subject": "x",
            "start": _when("2026-01-05T09:00:00"),
            "end": _when("2026-01-05T10:00:00"),
        },
        NOW,
    )
    doc["location"]["displayName"] = "mutated"
    doc["categories"].append("mutated")
    again = store.get(doc["id"])
    assert again["location"]["displayName"] == ""
    assert again["categories"] == []


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<html><head><style>p{}</style></head><body><p>a</p><p>b</p></body></html>", "a\nb"),
        ("line 1<br>\r\nline 2 &amp; more", "line 1\nline 2 & more"),
        ("plain text, no tags", "plain text, no tags"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    """HTML bodies become text with breaks kept and entities decoded."""
    assert html_to_text(html) == text


@pytest.mark.parametrize("name", ["Mars Standard Time", "", "../etc/passwd", "Not/AZone"])
def test_unknown_time_zones_are_400(name: str) -> None:
    """An unknown zone name is 400 TimeZoneNotSupportedException naming the value."""
    with pytest.raises(GraphRequestError) as err:
        to_zone(name)
    assert (err.value.status, err.value.code) == (400, "TimeZoneNotSupportedException")


def test_bad_body_type_preference_is_400() -> None:
    """Only text and html are body content types."""
    with pytest.raises(GraphRequestError) as err:
        render_event(SHAPES["single"], body_type="markdown")
    assert err.value.status == 400
