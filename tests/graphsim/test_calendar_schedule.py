"""getSchedule: request limits, availabilityView digits, schedule items, unknown mailboxes,
and answers that validate as Graph's scheduleInformation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.schedule import get_schedule
from graphsim.model.calendar.store import CalendarStore
from graphsim.schema import validate

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _event(start: str, end: str, show_as: str, **extra: Any) -> dict[str, Any]:
    return {
        "subject": show_as,
        "showAs": show_as,
        "start": {"dateTime": f"2026-03-16T{start}:00", "timeZone": "UTC"},
        "end": {"dateTime": f"2026-03-16T{end}:00", "timeZone": "UTC"},
        **extra,
    }


def _stores() -> dict[str, CalendarStore]:
    adele = CalendarStore("adele-id", seed=1, address="adele@contoso.com")
    for body in (
        _event("09:00", "10:00", "busy", location={"displayName": "Room 1"}),
        _event("09:30", "10:30", "tentative"),
        _event("11:00", "12:00", "oof"),
        _event("12:00", "13:00", "workingElsewhere"),
        _event("13:00", "13:30", "free"),
        _event("14:00", "15:00", "busy", sensitivity="private"),
    ):
        adele.create(body, NOW)
    return {"adele@contoso.com": adele, "megan@contoso.com": CalendarStore("megan-id", seed=2)}


def _request(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schedules": ["Adele@contoso.com"],
        "startTime": {"dateTime": "2026-03-16T09:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2026-03-16T16:00:00", "timeZone": "UTC"},
        "availabilityViewInterval": 60,
    }
    body.update(extra)
    return body


def test_availability_view_digits_take_the_busiest_item_per_slot() -> None:
    """0 free, 1 tentative, 2 busy, 3 oof, 4 working elsewhere; overlaps take the busiest."""
    info = get_schedule(_stores(), _request())["value"][0]
    # 09 busy+tentative, 10 tentative, 11 oof, 12 elsewhere, 13 free, 14 busy, 15 nothing
    assert info["availabilityView"] == "2134020"
    assert info["scheduleId"] == "Adele@contoso.com"
    assert [i["status"] for i in info["scheduleItems"]][3] == "workingElsewhere"


def test_default_interval_is_30_minutes() -> None:
    """Without availabilityViewInterval each digit covers 30 minutes."""
    body = _request()
    del body["availabilityViewInterval"]
    view = get_schedule(_stores(), body)["value"][0]["availabilityView"]
    assert view == "22103344002200"


def test_schedule_items_describe_each_event_and_hide_private_ones() -> None:
    """Items carry status, times in the asked zone, subject and location unless private."""
    info = get_schedule(_stores(), _request(), time_zone="Pacific Standard Time")["value"][0]
    first, private = info["scheduleItems"][0], info["scheduleItems"][-1]
    assert first == {
        "isPrivate": False,
        "status": "busy",
        "subject": "busy",
        "location": "Room 1",
        "start": {"dateTime": "2026-03-16T02:00:00.0000000", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2026-03-16T03:00:00.0000000", "timeZone": "Pacific Standard Time"},
    }
    assert private["isPrivate"] is True
    assert "subject" not in private
    assert "location" not in private


def test_unknown_schedule_gets_an_error_entry_not_a_failure() -> None:
    """An address this tenant does not know answers with a freeBusyError entry."""
    value = get_schedule(_stores(), _request(schedules=["x@elsewhere.com", "megan@contoso.com"]))
    unknown, megan = value["value"]
    assert unknown["error"]["responseCode"] == "ErrorMailRecipientNotFound"
    assert unknown["scheduleId"] == "x@elsewhere.com"
    assert megan["availabilityView"] == "0000000"
    assert megan["scheduleItems"] == []


def test_answers_validate_as_schedule_information() -> None:
    """Every entry, including the error entry, is a valid scheduleInformation."""
    value = get_schedule(_stores(), _request(schedules=["adele@contoso.com", "nobody@x.com"]))
    for info in value["value"]:
        assert validate("scheduleInformation", info) == []


LIMITS = [
    pytest.param({"schedules": []}, "ErrorInvalidParameter", id="no-schedules"),
    pytest.param(
        {"schedules": [f"u{i}@x.com" for i in range(21)]},
        "ErrorMailboxDataArrayTooBig",
        id="21-schedules",
    ),
    pytest.param({"schedules": "a@x.com"}, "ErrorInvalidParameter", id="schedules-not-a-list"),
    pytest.param(
        {"endTime": {"dateTime": "2026-05-18T09:00:00", "timeZone": "UTC"}},
        "ErrorTimeIntervalTooBig",
        id="63-days",
    ),
    pytest.param(
        {"endTime": {"dateTime": "2026-03-16T08:00:00", "timeZone": "UTC"}},
        "ErrorInvalidParameter",
        id="end-before-start",
    ),
    pytest.param({"availabilityViewInterval": 4}, "ErrorInvalidParameter", id="interval-4"),
    pytest.param({"availabilityViewInterval": 1441}, "ErrorInvalidParameter", id="interval-1441"),
    pytest.param({"availabilityViewInterval": "30"}, "ErrorInvalidParameter", id="interval-string"),
    pytest.param({"startTime": "2026-03-16"}, "ErrorInvalidRequest", id="start-not-dtz"),
    pytest.param({"timeWindow": 1}, "RequestBodyRead", id="unknown-parameter"),
]


@pytest.mark.parametrize(("change", "code"), LIMITS)
def test_request_limits(change: dict[str, Any], code: str) -> None:
    """Out-of-range requests are 400 with Graph's code and a message that says what to fix."""
    with pytest.raises(GraphRequestError) as err:
        get_schedule(_stores(), _request(**change))
    assert (err.value.status, err.value.code) == (400, code)


@pytest.mark.parametrize(
    ("count", "end", "interval"), [(20, "2026-05-17T09:00:00", 1440), (1, "2026-03-16T09:05:00", 5)]
)
def test_limits_themselves_are_allowed(count: int, end: str, interval: int) -> None:
    """20 schedules, 62 days and intervals of 5 and 1440 minutes are all accepted."""
    body = _request(
        schedules=[f"u{i}@x.com" for i in range(count)],
        endTime={"dateTime": end, "timeZone": "UTC"},
        availabilityViewInterval=interval,
    )
    assert len(get_schedule(_stores(), body)["value"]) == count


def test_working_elsewhere_yields_to_any_busier_item() -> None:
    """An hour working elsewhere shows 4, but tentative, busy or oof overlapping it wins."""
    store = CalendarStore("x-id", seed=3, address="x@contoso.com")
    store.create(_event("09:00", "12:00", "workingElsewhere"), NOW)
    store.create(_event("10:00", "11:00", "tentative"), NOW)
    store.create(_event("11:00", "12:00", "free"), NOW)
    view = get_schedule({"x@contoso.com": store}, _request(schedules=["x@contoso.com"]))
    assert view["value"][0]["availabilityView"][:3] == "414"
