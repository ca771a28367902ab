"""core.writes: a write request checked field by field, the Graph body it becomes (write
options, origin marker), write ids from Idempotency-Keys, a record's states; and the Graph
builders and answers of writes in core.graph."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core import graph as g
from shared.core import writes as w
from shared.core.model import BodyType, MailboxKey, MailboxOptions, Window
from shared.errors import CalsyncError, InputError, NotFoundError, Throttled, WriteConflict

KEY = MailboxKey("t1", "u1")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
START = {"dateTime": "2026-12-02T09:00:00", "timeZone": "Europe/Berlin"}
END = {"dateTime": "2026-12-02T10:00:00", "timeZone": "Europe/Berlin"}
WEEKLY = {
    "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["wednesday"]},
    "range": {"type": "numbered", "startDate": "2026-12-02", "numberOfOccurrences": 4},
}


def _create(**event: Any) -> dict[str, Any]:
    return {"action": "create", "event": {"subject": "Visit", "start": START, "end": END, **event}}


def _problem(body: Any) -> str:
    with pytest.raises(InputError) as info:
        w.parse_write(body)
    return info.value.message


@pytest.mark.parametrize(
    ("body", "starts"),
    [
        ({"action": "move"}, "action: must be one of create, update, delete, cancel"),
        (_create(colour="red"), "event.colour: not a property calsync writes"),
        (_create(showAs="away"), "event.showAs: must be one of"),
        (_create(sensitivity="secret"), "event.sensitivity: must be one of"),
        (
            _create(end={"dateTime": "2026-12-02T08:00:00", "timeZone": "Europe/Berlin"}),
            "event.end: must not be before event.start",
        ),
        (_create(start={"dateTime": "tomorrow"}), "event.start.dateTime: must be a local"),
        (
            _create(end={"dateTime": "2026-12-02T07:30:00", "timeZone": "UTC"}),
            "event.end: must not be before event.start",
        ),
        (
            _create(isAllDay=True, end={"dateTime": "2026-12-03T00:00:00"}),
            "event.start.dateTime: an all-day event starts and ends at midnight",
        ),
        (
            _create(start={"dateTime": "2026-12-02T09:00:00", "timeZone": "Mars"}),
            "event.start.timeZone",
        ),
        (_create(recurrence={"pattern": WEEKLY["pattern"]}), "event.recurrence.range: required"),
        (
            _create(recurrence={**WEEKLY, "pattern": {"type": "weekly"}}),
            "event.recurrence.pattern.daysOfWeek",
        ),
        (
            _create(recurrence={"pattern": {"type": "hourly"}, "range": WEEKLY["range"]}),
            "event.recurrence.pattern.type",
        ),
        (
            _create(attendees=[{"emailAddress": {"address": "nobody"}}]),
            "event.attendees[0].emailAddress.address",
        ),
        (_create(isReminderOn="yes"), "event.isReminderOn: must be true or false"),
        (_create(reminderMinutesBeforeStart=-5), "event.reminderMinutesBeforeStart"),
        ({"action": "create", "event": {"subject": "x"}}, "event.start: required"),
        (
            {"action": "create", "eventId": "x", "event": {"start": START, "end": END}},
            "eventId: not allowed",
        ),
        ({"action": "update", "event": {"subject": "x"}}, "eventId: required for update"),
        ({"action": "update", "eventId": "e", "event": {}}, "event: must be a JSON object"),
        (
            {"action": "delete", "eventId": "e", "event": {}},
            "event: not allowed with action delete",
        ),
        ({"action": "delete", "eventId": "e", "writer": "a b"}, "writer: must be 1 to 64"),
        ({"action": "cancel", "eventId": "e", "comment": 5}, "comment: a string"),
        (
            {"action": "delete", "eventId": "e", "changeKey": "k"},
            "changeKey: a string, with action update",
        ),
        ({"action": "delete", "eventId": "e", "extra": 1}, "extra: unknown"),
    ],
)
def test_bad_input_names_the_field_first(body: dict[str, Any], starts: str) -> None:
    """Each malformed write is refused before any Graph call, its message starting with the
    field's path."""
    assert _problem(body).startswith(starts)


def test_every_problem_is_listed_in_one_error() -> None:
    """Several problems come back together, the first one leading."""
    message = _problem(_create(showAs="away", colour="red", isAllDay=3))
    assert "and 2 more problem(s)" in message
    for path in ("event.colour", "event.showAs", "event.isAllDay"):
        assert path in message


def test_times_in_different_zones_compare_as_instants() -> None:
    """A start at 09:00 Berlin (08:00 UTC) and an end at 08:30 UTC: a later instant although
    an earlier wall time, so not refused."""
    body = _create(end={"dateTime": "2026-12-02T08:30:00", "timeZone": "UTC"})
    assert w.parse_write(body).event["end"]["timeZone"] == "UTC"


def test_a_good_request_is_kept_as_sent() -> None:
    """A valid series create and an update parse into the request the caller meant."""
    series = w.parse_write({**_create(recurrence=WEEKLY), "writer": "helpdesk"})
    assert (series.action, series.writer, series.event["recurrence"]) == (
        "create",
        "helpdesk",
        WEEKLY,
    )
    update = w.parse_write(
        {"action": "update", "eventId": "e/1+", "changeKey": "ck", "event": {"subject": "y"}}
    )
    assert (update.event_id, update.change_key, update.writer) == ("e/1+", "ck", "calsync")


def test_new_events_get_the_mailbox_write_options() -> None:
    """A create gets reminder, zone, private and body type from the options where it left
    them out, and the origin marker naming writer and write."""
    options = MailboxOptions(
        time_zone="Asia/Tokyo",
        reminder_on_new=True,
        reminder_minutes=30,
        write_time_zone="Europe/Berlin",
        write_private=True,
        write_body_type="text",
    )
    request = w.parse_write(
        {
            "action": "create",
            "writer": "fieldapp",
            "event": {
                "start": {"dateTime": "2026-12-02T09:00:00"},
                "end": {"dateTime": "2026-12-02T10:00:00"},
                "body": "Bring the ladder",
                "location": "Depot",
                "recurrence": WEEKLY,
            },
        }
    )
    body = w.plan_graph_body(request, options, "w1")
    assert body["start"] == {"dateTime": "2026-12-02T09:00:00", "timeZone": "Europe/Berlin"}
    assert body["end"]["timeZone"] == "Europe/Berlin"
    assert (body["isReminderOn"], body["reminderMinutesBeforeStart"]) == (True, 30)
    assert body["sensitivity"] == "private"
    assert body["body"] == {"contentType": "text", "content": "Bring the ladder"}
    assert body["location"] == {"displayName": "Depot"}
    assert body["recurrence"]["range"]["recurrenceTimeZone"] == "Europe/Berlin"
    assert body["singleValueExtendedProperties"] == [
        {"id": w.ORIGIN_PROPERTY, "value": "calsync;writer=fieldapp;write=w1"}
    ]
    assert "attendees" not in body  # no attendees: an appointment, no invitation


def test_caller_fields_win_and_updates_get_no_new_event_defaults() -> None:
    """What the caller sent is kept; an update gets no reminder or sensitivity defaults."""
    options = MailboxOptions(reminder_on_new=True, write_private=True)
    create = w.parse_write(_create(isReminderOn=False, sensitivity="normal"))
    body = w.plan_graph_body(create, options, "w1")
    assert (body["isReminderOn"], body["sensitivity"]) == (False, "normal")
    assert "reminderMinutesBeforeStart" not in body
    update = w.parse_write({"action": "update", "eventId": "e", "event": {"subject": "z"}})
    patch = w.plan_graph_body(update, options, "w2")
    assert set(patch) == {"subject", "singleValueExtendedProperties"}


def test_write_ids_follow_the_idempotency_key() -> None:
    """One (mailbox, key) is one write id; another key or mailbox another; no key a fresh one."""
    first = w.write_id_for(KEY, "k-1")
    assert first == w.write_id_for(KEY, "k-1")
    assert first != w.write_id_for(KEY, "k-2")
    assert first != w.write_id_for(MailboxKey("t1", "u2"), "k-1")
    assert w.write_id_for(KEY, "") != w.write_id_for(KEY, "")
    assert len(first) == 32


@pytest.mark.parametrize("value", ["a b", "x" * 256, "é"])
def test_a_malformed_idempotency_key_is_refused(value: str) -> None:
    """Idempotency-Key is 1-255 visible ASCII characters."""
    with pytest.raises(InputError, match=r"^Idempotency-Key"):
        w.check_idempotency_key(value)


def test_origin_marker_round_trip() -> None:
    """The marker's value names writer and write; one of another app is not ours."""
    value = w.origin_value("helpdesk", "abc")
    assert w.parse_origin(value) == ("helpdesk", "abc")
    assert w.parse_origin("other;writer=x") is None
    event = {"singleValueExtendedProperties": [{"id": w.ORIGIN_PROPERTY.upper(), "value": value}]}
    assert w.origin_of(event) == value
    assert w.origin_of({}) == ""


def test_record_states_and_the_retry_budget() -> None:
    """pending -> done with the event; a transient failure stays pending until the budget is
    spent, then fails with the reason."""
    record = w.new_record(KEY, w.parse_write(_create()), "k", NOW)
    assert (record.status, record.attempts) == ("pending", 0)
    done = w.plan_done(record, {"id": "e1", "changeKey": "ck1"}, NOW)
    assert (done.status, done.event_id, done.change_key) == ("done", "e1", "ck1")
    later = w.plan_retry(record, "TooManyRequests", "429", 2.5, NOW)
    assert (later.status, later.attempts, later.retry_at) == (
        "pending",
        1,
        NOW + timedelta(seconds=2.5),
    )
    for _ in range(w.MAX_ATTEMPTS - 1):
        later = w.plan_retry(later, "TooManyRequests", "429", 1, NOW)
    assert later.status == "failed"
    assert later.error.startswith(f"gave up after {w.MAX_ATTEMPTS} attempts")
    shown = w.view(later)
    assert shown["error"] == {"code": "TooManyRequests", "message": later.error}
    json.dumps(shown, default=str)


# ---- Graph builders and answers -------------------------------------------------------------


def test_write_builders_make_the_exact_requests() -> None:
    """Each write builder addresses the event (id percent-encoded), sends Prefer as delta
    does, If-Match as a weak ETag, and the transactionId on create."""
    create = g.event_create(KEY, {"subject": "s"}, transaction_id="w1", body_type="text")
    assert (create.method, create.path, create.kind, create.mailbox) == (
        "POST",
        "users/u1/events",
        "event",
        "u1",
    )
    assert create.body == {"subject": "s", "transactionId": "w1"}
    assert create.headers == (
        (
            "Prefer",
            'IdType="ImmutableId", outlook.timezone="UTC", outlook.body-content-type="text"',
        ),
    )
    update = g.event_update(KEY, "a/b+c=", {"subject": "s"}, change_key="ck", body_type="html")
    assert update.path == "users/u1/events/a%2Fb%2Bc%3D"
    assert ("If-Match", 'W/"ck"') in update.headers
    blind = g.event_update(KEY, "e", {}, change_key="", body_type="html")
    assert all(name != "If-Match" for name, _ in blind.headers)
    assert g.event_delete(KEY, "e").method == "DELETE"
    cancel = g.event_cancel(KEY, "e", "sorry")
    assert (cancel.path, cancel.body) == ("users/u1/events/e/cancel", {"Comment": "sorry"})
    window = Window(NOW, NOW + timedelta(days=7))
    instances = g.event_instances(KEY, "m", window, body_type="html")
    assert dict(instances.query)["startDateTime"] == "2026-12-01T09:00:00Z"
    found = g.events_by_origin(KEY, origin_property="P", value="it's", body_type="html")
    assert dict(found.query)["$filter"] == (
        "singleValueExtendedProperties/any(ep: ep/id eq 'P' and ep/value eq 'it''s')"
    )
    got = g.event_get(KEY, "e", origin_property="P", body_type="html")
    assert dict(got.query)["$expand"] == "singleValueExtendedProperties($filter=id eq 'P')"
    with pytest.raises(InputError):
        g.event_delete(KEY, "..")


@pytest.mark.parametrize("body_type", ["html", "text"])
def test_writes_prefer_what_delta_prefers_but_the_page_size(body_type: BodyType) -> None:
    """A write's answer is rendered as a delta page is (same Prefer but odata.maxpagesize), so
    the row written from it is the row delta finds."""
    window = Window(NOW, NOW + timedelta(days=1))
    delta = dict(g.delta_start(KEY, window, body_type=body_type).headers)["Prefer"].split(", ")
    write = g.event_get(KEY, "e", origin_property="P", body_type=body_type)
    wanted = [p for p in delta if not p.startswith("odata.maxpagesize")]
    assert dict(write.headers)["Prefer"].split(", ") == wanted


def _answer(status: int, code: str, headers: dict[str, str] | None = None) -> CalsyncError:
    body = json.dumps({"error": {"code": code, "message": "words"}}).encode()
    request = g.event_update(KEY, "e", {}, change_key="ck", body_type="html")
    with pytest.raises(CalsyncError) as info:
        g.decipher(request, status, headers or {}, body, now=NOW)
    return info.value


def test_write_answers_map_to_the_project_errors() -> None:
    """412 -> WriteConflict (HTTP 409), 404 -> NotFoundError, 400 -> InputError with Graph's
    words, 429 with Retry-After -> Throttled."""
    conflict = _answer(412, "ErrorIrresolvableConflict")
    assert isinstance(conflict, WriteConflict)
    assert conflict.http_status == 409
    assert isinstance(_answer(404, "ErrorItemNotFound"), NotFoundError)
    refused = _answer(400, "RequestBodyRead")
    assert type(refused) is InputError
    assert "RequestBodyRead: words" in str(refused)
    throttled = _answer(429, "TooManyRequests", {"Retry-After": "3"})
    assert isinstance(throttled, Throttled)
    assert throttled.retry_after == 3.0
