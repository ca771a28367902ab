"""CalendarStore: create validation, ids, changeKeys, If-Match, transactionId, change
callbacks, delete and cancel, calendarView overlap rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.store import CalendarStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "x",
        "start": {"dateTime": "2026-01-05T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-01-05T10:00:00", "timeZone": "UTC"},
    }
    body.update(extra)
    return body


def _error(call: Any, *args: Any, **kwargs: Any) -> GraphRequestError:
    with pytest.raises(GraphRequestError) as err:
        call(*args, **kwargs)
    return err.value


BAD_BODIES = [
    pytest.param(_body(colour="red"), 400, "RequestBodyRead", "colour", id="unknown-property"),
    pytest.param(_body(importance="urgent"), 400, "RequestBodyRead", "urgent", id="bad-enum"),
    pytest.param(_body(showAs="away"), 400, "RequestBodyRead", "away", id="bad-show-as"),
    pytest.param(_body(isAllDay="yes"), 400, "RequestBodyRead", "Edm.Boolean", id="bad-bool"),
    pytest.param(
        _body(reminderMinutesBeforeStart=-5),
        400,
        "RequestBodyRead",
        "Int32",
        id="negative-reminder",
    ),
    pytest.param(
        _body(end={"dateTime": "2026-01-05T08:00:00", "timeZone": "UTC"}),
        400,
        "ErrorInvalidRequest",
        "before its start",
        id="end-before-start",
    ),
    pytest.param(
        _body(start={"dateTime": "05/01/2026", "timeZone": "UTC"}),
        400,
        "ErrorInvalidRequest",
        "not a date-time",
        id="malformed-date",
    ),
    pytest.param(
        _body(start={"dateTime": "2026-01-05T09:00:00", "timeZone": "Mars"}),
        400,
        "TimeZoneNotSupportedException",
        "Mars",
        id="unknown-zone",
    ),
    pytest.param(
        _body(isAllDay=True), 400, "ErrorInvalidRequest", "midnight", id="all-day-not-midnight"
    ),
    pytest.param(
        {"subject": "no times"}, 400, "ErrorInvalidRequest", "start is required", id="missing-start"
    ),
    pytest.param(
        _body(attendees=[{"emailAddress": {"address": f"a{i}@x.com"}} for i in range(501)]),
        400,
        "ErrorInvalidRequest",
        "at most 500",
        id="too-many-attendees",
    ),
    pytest.param(
        _body(attendees=[{"emailAddress": {"name": "no address"}}]),
        400,
        "ErrorInvalidRequest",
        "address",
        id="attendee-without-address",
    ),
    pytest.param(
        _body(body={"contentType": "markdown", "content": "x"}),
        400,
        "RequestBodyRead",
        "bodyType",
        id="bad-body-type",
    ),
    pytest.param(
        _body(location={"displayName": "R", "floor": 3}),
        400,
        "RequestBodyRead",
        "floor",
        id="unknown-location-property",
    ),
    pytest.param([1, 2], 400, "RequestBodyRead", "JSON object", id="not-an-object"),
]


@pytest.mark.parametrize(("body", "status", "code", "named"), BAD_BODIES)
def test_malformed_bodies_are_refused_like_graph(
    body: Any, status: int, code: str, named: str
) -> None:
    """Each malformed POST body is refused with Graph's status and code and a clear message."""
    store = CalendarStore("u@contoso.com", seed=1)
    err = _error(store.create, body, NOW)
    assert (err.status, err.code) == (status, code)
    assert named in err.message
    assert store.list_events() == []
    assert store.version() == 0


def test_exactly_500_attendees_are_accepted() -> None:
    """500 attendees is the documented maximum, and it is allowed."""
    store = CalendarStore("u@contoso.com", seed=1)
    doc = store.create(
        _body(attendees=[{"emailAddress": {"address": f"a{i}@x.com"}} for i in range(500)]), NOW
    )
    assert len(doc["attendees"]) == 500
    assert doc["attendees"][0]["type"] == "required"


def test_read_only_properties_echoed_back_are_ignored() -> None:
    """A body carrying id/changeKey/createdDateTime from a GET is accepted; they are ignored."""
    store = CalendarStore("u@contoso.com", seed=1)
    doc = store.create(
        _body(
            id="AAA=",
            changeKey="x",
            createdDateTime="2000-01-01T00:00:00Z",
            **{"@odata.etag": 'W/"x"'},
        ),
        NOW,
    )
    assert doc["id"] != "AAA="
    assert doc["changeKey"] != "x"


def test_ids_look_like_graph_ids_and_resolve() -> None:
    """Ids are long base64 with '+', '/' and '=' among them, case-sensitive, and resolvable;
    the store's own are immutable ids (AAkAL), their REST twins look like REST ids (AAMkA)."""
    store = CalendarStore("u@contoso.com", seed=3)
    made = [store.create(_body(), NOW)["id"] for _ in range(60)]
    joined = "".join(made)
    assert {"+", "/", "="} <= set(joined)
    assert all(len(i) >= 150 and i.startswith("AAkAL") for i in made)
    assert all(store.rest_id(i).startswith("AAMkA") for i in made)
    assert len(set(made)) == 60
    assert store.get(made[0])["id"] == made[0]
    assert store.get(store.rest_id(made[0]))["id"] == made[0]
    swapped = made[0][:20] + made[0][20:].swapcase()
    assert _error(store.get, swapped).status in (400, 404)


def test_unknown_and_malformed_ids() -> None:
    """A malformed id is 400 ErrorInvalidIdMalformed; a well-formed unknown one is 404."""
    store = CalendarStore("u@contoso.com", seed=1)
    other = CalendarStore("v@contoso.com", seed=1)
    foreign = other.create(_body(), NOW)["id"]
    assert _error(store.get, "not an id!").code == "ErrorInvalidIdMalformed"
    assert _error(store.get, "AAMkAA==").code == "ErrorInvalidIdMalformed"
    assert _error(store.get, foreign).code == "ErrorItemNotFound"
    doc = store.create(_body(), NOW)
    store.delete(doc["id"], NOW)
    err = _error(store.get, doc["id"])
    assert (err.status, err.code) == (404, "ErrorItemNotFound")
    assert _error(store.delete, doc["id"], NOW).status == 404


def test_change_key_and_etag_change_on_every_update() -> None:
    """Every PATCH gives a new changeKey, etag and lastModifiedDateTime."""
    store = CalendarStore("u@contoso.com", seed=1)
    doc = store.create(_body(), NOW)
    later = NOW + timedelta(minutes=5)
    updated = store.update(doc["id"], {"subject": "y"}, later)
    assert updated["changeKey"] != doc["changeKey"]
    assert updated["@odata.etag"] == f'W/"{updated["changeKey"]}"'
    assert updated["lastModifiedDateTime"] == "2026-01-01T00:05:00.0000000Z"
    assert updated["createdDateTime"] == doc["createdDateTime"]
    assert store.get(doc["id"])["subject"] == "y"


def test_stale_if_match_is_412_and_current_one_passes() -> None:
    """If-Match with an old etag is 412 ErrorIrresolvableConflict; the current etag or * works."""
    store = CalendarStore("u@contoso.com", seed=1)
    doc = store.create(_body(), NOW)
    fresh = store.update(doc["id"], {"subject": "y"}, NOW, if_match=doc["@odata.etag"])
    err = _error(store.update, doc["id"], {"subject": "z"}, NOW, if_match=doc["@odata.etag"])
    assert (err.status, err.code) == (412, "ErrorIrresolvableConflict")
    assert store.get(doc["id"])["subject"] == "y"
    store.update(doc["id"], {"subject": "z"}, NOW, if_match=fresh["changeKey"])
    store.update(doc["id"], {"subject": "w"}, NOW, if_match="*")


def test_invalid_patch_leaves_the_event_unchanged() -> None:
    """A PATCH that would end before start is 400 and changes nothing (no new changeKey)."""
    store = CalendarStore("u@contoso.com", seed=1)
    doc = store.create(_body(), NOW)
    version = store.version()
    patch = {"subject": "new", "end": {"dateTime": "2026-01-04T00:00:00", "timeZone": "UTC"}}
    assert _error(store.update, doc["id"], patch, NOW).status == 400
    assert store.get(doc["id"]) == doc
    assert store.version() == version


def test_transaction_id_refuses_a_repeated_create() -> None:
    """A repeated create with a known transactionId is 409 and makes no second event."""
    store = CalendarStore("u@contoso.com", seed=1)
    first = store.create(_body(transactionId="tx-42"), NOW)
    again = _error(store.create, _body(subject="different", transactionId="tx-42"), NOW)
    assert (again.status, again.code) == (409, "ErrorDuplicateTransactionId")
    assert first["id"] not in again.message
    by_argument = _error(store.create, _body(subject="third"), NOW, transaction_id="tx-42")
    assert by_argument.status == 409
    assert len(store.list_events()) == 1
    other = store.create(_body(transactionId="tx-43"), NOW)
    assert other["id"] != first["id"]
    assert other["transactionId"] == "tx-43"


def test_extended_properties_kept_apart_merged_by_patch_and_found() -> None:
    """Extended properties are stored on create, merged by PATCH, never rendered, inherited by
    occurrences, and found by id (any case) and value."""
    store = CalendarStore("u@contoso.com", seed=1)
    prop = "String {4f1c5e2a-8b3d-4c6e-9a7f-2d5b8e1c0a93} Name origin"
    other = "String {4f1c5e2a-8b3d-4c6e-9a7f-2d5b8e1c0a93} Name other"
    doc = store.create(_body(singleValueExtendedProperties=[{"id": prop, "value": "a"}]), NOW)
    assert "singleValueExtendedProperties" not in doc
    assert store.extended(doc["id"]) == {prop: "a"}
    store.update(doc["id"], {"singleValueExtendedProperties": [{"id": other, "value": "b"}]}, NOW)
    assert store.extended(doc["id"]) == {prop: "a", other: "b"}
    assert [d["id"] for d in store.with_extended(prop.upper(), "a")] == [doc["id"]]
    assert store.with_extended(prop, "b") == []
    bad = _error(
        store.create, _body(singleValueExtendedProperties=[{"id": "x", "value": "a"}]), NOW
    )
    assert bad.status == 400


def test_on_change_reports_every_change_and_version_increases() -> None:
    """created/updated/deleted reach every callback; version() grows with each change."""
    store = CalendarStore("u@contoso.com", seed=1)
    seen: list[tuple[str, str]] = []
    store.on_change(lambda change_type, event_id: seen.append((change_type, event_id)))
    versions = [store.version()]
    doc = store.create(_body(), NOW)
    versions.append(store.version())
    store.update(doc["id"], {"subject": "y"}, NOW)
    versions.append(store.version())
    store.delete(doc["id"], NOW)
    versions.append(store.version())
    assert seen == [("created", doc["id"]), ("updated", doc["id"]), ("deleted", doc["id"])]
    assert versions == sorted(set(versions))


def test_series_changes_notify_the_master() -> None:
    """Changing or deleting an occurrence notifies the occurrence and its master."""
    store = CalendarStore("u@contoso.com", seed=1)
    master = store.create(
        _body(
            recurrence={
                "pattern": {"type": "daily"},
                "range": {"type": "noEnd", "startDate": "2026-01-05"},
            }
        ),
        NOW,
    )
    seen: list[tuple[str, str]] = []
    store.on_change(lambda change_type, event_id: seen.append((change_type, event_id)))
    first, second = store.instances(NOW, NOW + timedelta(days=6))
    store.update(first["id"], {"subject": "exception"}, NOW)
    store.delete(second["id"], NOW)
    store.delete(master["id"], NOW)
    assert seen == [
        ("updated", first["id"]),
        ("updated", master["id"]),
        ("deleted", second["id"]),
        ("updated", master["id"]),
        ("deleted", master["id"]),
        ("deleted", first["id"]),
    ]
    assert store.instances(NOW, NOW + timedelta(days=30)) == []


def test_cancel_removes_the_event_and_checks_the_comment() -> None:
    """Cancel removes a single event or one occurrence from the organizer's calendar."""
    store = CalendarStore("u@contoso.com", seed=1)
    doc = store.create(_body(attendees=[{"emailAddress": {"address": "b@x.com"}}]), NOW)
    assert _error(store.cancel, doc["id"], NOW, "x" * 10_001).status == 400
    store.cancel(doc["id"], NOW, "Sorry, cancelled.")
    assert _error(store.get, doc["id"]).status == 404
    master = store.create(
        _body(
            recurrence={
                "pattern": {"type": "daily"},
                "range": {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 2},
            }
        ),
        NOW,
    )
    first = store.series_instances(master["id"], NOW, NOW + timedelta(days=9))[0]
    store.cancel(first["id"], NOW)
    assert len(store.series_instances(master["id"], NOW, NOW + timedelta(days=9))) == 1


OVERLAP_CASES = [
    pytest.param("2026-01-05T09:00:00", "2026-01-05T10:00:00", True, id="inside"),
    pytest.param("2026-01-04T23:00:00", "2026-01-05T00:00:00", False, id="ends-at-window-start"),
    pytest.param("2026-01-04T23:00:00", "2026-01-05T00:30:00", True, id="straddles-start"),
    pytest.param("2026-01-06T00:00:00", "2026-01-06T01:00:00", False, id="starts-at-window-end"),
    pytest.param("2026-01-05T00:00:00", "2026-01-05T00:00:00", True, id="instant-at-start"),
    pytest.param("2026-01-01T00:00:00", "2026-01-09T00:00:00", True, id="covers-window"),
]


@pytest.mark.parametrize(("start", "end", "inside"), OVERLAP_CASES)
def test_calendar_view_overlap(start: str, end: str, inside: bool) -> None:
    """calendarView [start, end) returns events that overlap it, half-open at both ends."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(
        _body(
            start={"dateTime": start, "timeZone": "UTC"}, end={"dateTime": end, "timeZone": "UTC"}
        ),
        NOW,
    )
    lo, hi = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)
    assert len(store.instances(lo, hi)) == int(inside)


def test_multi_day_all_day_event_overlaps_every_day_it_covers() -> None:
    """A three-day all-day event in Berlin shows in each of its local days, not the next."""
    store = CalendarStore("u@contoso.com", seed=1)
    store.create(
        _body(
            isAllDay=True,
            start={"dateTime": "2026-01-05T00:00:00", "timeZone": "Europe/Berlin"},
            end={"dateTime": "2026-01-08T00:00:00", "timeZone": "Europe/Berlin"},
        ),
        NOW,
    )
    berlin_day = [datetime(2026, 1, d, 23, tzinfo=UTC) - timedelta(days=1) for d in range(4, 10)]
    hits = [len(store.instances(day, day + timedelta(days=1))) for day in berlin_day]
    assert hits == [0, 1, 1, 1, 0, 0]
    assert store.list_events()[0]["showAs"] == "free"


def test_explicit_offsets_and_fractions_are_understood() -> None:
    """dateTime with 7 fraction digits or an explicit offset lands on the right instant."""
    store = CalendarStore("u@contoso.com", seed=1)
    doc = store.create(
        _body(
            start={"dateTime": "2026-01-05T09:00:00.1234567", "timeZone": "UTC"},
            end={"dateTime": "2026-01-05T12:00:00+02:00", "timeZone": "UTC"},
        ),
        NOW,
    )
    assert doc["start"]["dateTime"] == "2026-01-05T09:00:00.1234560"
    assert doc["end"]["dateTime"] == "2026-01-05T10:00:00.0000000"


def test_naive_now_is_a_programming_error() -> None:
    """Times passed by the server must be aware; a naive one fails loudly."""
    store = CalendarStore("u@contoso.com", seed=1)
    with pytest.raises(ValueError, match="aware"):
        store.create(_body(), datetime(2026, 1, 1))


def test_a_move_changes_the_rest_id_and_never_the_immutable_id() -> None:
    """After a move the immutable id resolves as before, the old REST id is 404, the new one
    resolves, and the changeKey is new; occurrences' REST ids follow their master's."""
    store = CalendarStore("u@contoso.com", seed=5)
    single = store.create(_body(), NOW)
    daily = {"pattern": {"type": "daily"}, "range": {"type": "noEnd", "startDate": "2026-01-05"}}
    series = store.create(_body(subject="series", recurrence=daily), NOW)
    occurrence = next(
        i for i in store.instances(NOW, NOW + timedelta(days=6)) if i["type"] == "occurrence"
    )
    before = store.rest_id(single["id"]), store.rest_id(occurrence["id"])
    moved = store.move(before[0], NOW)
    store.move(store.rest_id(series["id"]), NOW)
    assert moved["id"] == single["id"]
    assert moved["changeKey"] != single["changeKey"]
    assert store.get(single["id"])["changeKey"] == moved["changeKey"]
    assert _error(store.get, before[0]).code == "ErrorItemNotFound"
    assert _error(store.get, before[1]).code == "ErrorItemNotFound"
    after = store.rest_id(single["id"]), store.rest_id(occurrence["id"])
    assert after[0] != before[0]
    assert after[1] != before[1]
    assert store.get(after[1])["id"] == occurrence["id"]
    shown = store.in_form(store.get(occurrence["id"]), immutable=False)
    assert (shown["id"], shown["seriesMasterId"]) == (after[1], store.rest_id(series["id"]))
    assert store.rest_id(series["id"]) in shown["occurrenceId"]
    assert store.in_form(shown, immutable=True) is shown
    assert _error(store.move, occurrence["id"], NOW).status == 400
