"""The schema validator: it accepts Graph's own shapes and catches wrong names, types, enum
values and nulls, so the simulator's payloads can be held to Graph's schema."""

from __future__ import annotations

from typing import Any

import pytest

from graphsim import schema
from graphsim.errors import GraphRequestError

VALID_EVENT: dict[str, Any] = {
    "@odata.etag": 'W/"abc"',
    "id": "AAMkAGI1AAAt9AHjAAA=",
    "subject": "Review",
    "categories": ["Red"],
    "isAllDay": False,
    "reminderMinutesBeforeStart": 15,
    "createdDateTime": "2026-01-01T08:30:00.1234567Z",
    "originalStart": "2026-01-05T10:00:00-08:00",
    "showAs": "busy",
    "start": {"dateTime": "2026-01-05T09:00:00.0000000", "timeZone": "UTC"},
    "attendees": [
        {
            "type": "required",
            "emailAddress": {"address": "a@b.c", "name": "A"},
            "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
        }
    ],
    "recurrence": {
        "pattern": {
            "type": "daily",
            "interval": 1,
            "month": 0,
            "dayOfMonth": 0,
            "daysOfWeek": [],
            "firstDayOfWeek": "sunday",
            "index": "first",
        },
        "range": {
            "type": "noEnd",
            "startDate": "2026-01-05",
            "endDate": "0001-01-01",
            "numberOfOccurrences": 0,
        },
    },
    "occurrenceId": None,
    "seriesMasterId": None,
}


def test_a_valid_event_has_no_problems() -> None:
    """Graph's own event shape, with annotations and a documented dynamic property, passes."""
    assert schema.validate("event", VALID_EVENT) == []


CASES = [
    pytest.param({"subjet": "typo"}, "no property 'subjet'", id="wrong-property-name"),
    pytest.param({"isAllDay": "false"}, "Edm.Boolean", id="string-for-boolean"),
    pytest.param({"reminderMinutesBeforeStart": True}, "Edm.Int32", id="bool-for-int"),
    pytest.param({"reminderMinutesBeforeStart": 2**31}, "out of range", id="int32-overflow"),
    pytest.param({"showAs": "away"}, "not a member of freeBusyStatus", id="bad-enum"),
    pytest.param({"id": None}, "null is not allowed", id="null-in-not-null"),
    pytest.param({"categories": "Red"}, "expected a list", id="string-for-collection"),
    pytest.param({"categories": [None]}, "null in a collection", id="null-in-collection"),
    pytest.param(
        {"createdDateTime": "2026-01-01T08:30:00"},
        "Edm.DateTimeOffset",
        id="timestamp-without-offset",
    ),
    pytest.param(
        {"start": {"timeZone": "UTC", "dateTime": None}},
        "null is not allowed",
        id="nested-not-null",
    ),
    pytest.param({"start": "2026-01-05T09:00:00"}, "expected an object", id="string-for-complex"),
    pytest.param({"attendees": [{"type": "boss"}]}, "attendeeType", id="enum-in-base-type"),
    pytest.param(
        {"attendees": [{"emailAddress": {"adress": "x"}}]},
        "no property 'adress'",
        id="typo-deep-inside",
    ),
    pytest.param(
        {"recurrence": {"range": {"startDate": "2026-02-30"}}}, "Edm.Date", id="impossible-date"
    ),
    pytest.param(
        {"recurrence": {"pattern": {"daysOfWeek": ["funday"]}}},
        "dayOfWeek",
        id="enum-in-collection",
    ),
]


@pytest.mark.parametrize(("change", "expected"), CASES)
def test_the_validator_catches_each_kind_of_mistake(change: dict[str, Any], expected: str) -> None:
    """A wrong name, type, enum value or null is reported with its path and reason."""
    problems = schema.validate("event", {**VALID_EVENT, **change})
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith("event.")


def test_problems_name_their_path() -> None:
    """Each problem starts with the JSON path of the offending value."""
    problems = schema.validate("event", {"attendees": [{}, {"type": "x"}]})
    assert problems == [
        "event.attendees[1].type: 'x' is not a member of attendeeType "
        "(required, optional, resource)"
    ]


def test_derived_types_via_odata_type() -> None:
    """@odata.type switches to a derived type, and a wrong one is reported."""
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "a.txt",
        "contentBytes": "aGVsbG8=",
        "isInline": False,
        "size": 5,
    }
    assert schema.validate("attachment", attachment) == []
    wrong = {"@odata.type": "#microsoft.graph.event"}
    assert "does not derive" in schema.validate("attachment", wrong)[0]


def test_open_types_without_properties_take_any_property() -> None:
    """resourceData (open, no declared properties) accepts the id Graph puts in it."""
    notification = {
        "subscriptionId": "6e0b1d2e-1f5a-4a63-9f0c-7a1c5c0b7e11",
        "tenantId": "0b7e1122-1f5a-4a63-9f0c-7a1c5c0b7e11",
        "changeType": "updated",
        "resource": "Users/u/Events/e",
        "subscriptionExpirationDateTime": "2026-01-02T00:00:00Z",
        "clientState": "s",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": "Users/u/Events/e",
            "id": "e",
        },
    }
    assert schema.validate("changeNotification", notification) == []
    assert (
        "Edm.Guid" in schema.validate("changeNotification", {**notification, "tenantId": "nope"})[0]
    )


def test_schedule_information_shapes() -> None:
    """scheduleInformation with workingHours (Edm.TimeOfDay) validates; a bad time does not."""
    info: dict[str, Any] = {
        "scheduleId": "a@b.c",
        "availabilityView": "0120",
        "workingHours": {
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "daysOfWeek": ["monday"],
            "timeZone": {"name": "UTC"},
        },
    }
    assert schema.validate("scheduleInformation", info) == []
    info["workingHours"]["startTime"] = "25:00:00"
    assert "Edm.TimeOfDay" in schema.validate("scheduleInformation", info)[0]


def test_unknown_type_name_is_a_key_error() -> None:
    """Asking for a type the schema does not have is a programming error, not a problem list."""
    with pytest.raises(KeyError, match="unknown type"):
        schema.validate("evnt", {})


def test_validate_or_raise() -> None:
    """validate_or_raise passes valid payloads and raises naming the problem otherwise."""
    schema.validate_or_raise("event", VALID_EVENT)
    with pytest.raises(GraphRequestError, match="subjet"):
        schema.validate_or_raise("event", {"subjet": "x"})


def test_schema_is_found_beside_the_repository_or_vendored() -> None:
    """../shared/graph-schema/ beside the repository wins; else the vendored copy is used."""
    assert schema.SCHEMA_PATH.parent.parent.parent == schema.REPO_ROOT.parent
    expected = schema.SCHEMA_PATH if schema.SCHEMA_PATH.is_file() else schema.VENDORED_PATH
    assert schema.schema_path() == expected
    assert {"event", "outlookItem", "entity"} <= set(schema.types())


def test_vendored_schema_matches_the_reference_copy() -> None:
    """The copy kept in the repository is byte for byte the reference schema (when present)."""
    vendored = schema.VENDORED_PATH.read_bytes()
    assert b'"event"' in vendored
    if schema.SCHEMA_PATH.is_file():
        assert vendored == schema.SCHEMA_PATH.read_bytes()
