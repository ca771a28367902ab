"""The read API against the running stack: agenda, "now" and free/busy answered from the
mirror, all-day events placed in the mailbox's zone east and west of UTC, free/busy equal to
the simulator's getSchedule, problem bodies for bad ranges, and 304 for an unchanged read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from devhost.local.stack import Stack
from tests.e2e.harness import at, enrol, graph_token

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _now(stack: Stack) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=stack.offset)


def _utc(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        ("Asia/Tokyo", "T15:00:00Z", "T15:00:00Z"),  # east: the day before, 15:00 UTC
        ("America/Los_Angeles", "T08:00:00Z", "T08:00:00Z"),  # west: the same day, 08:00
    ],
)
def test_agenda_places_all_day_events_in_the_mailbox_zone(
    stack: Stack, zone: str, start: str, end: str
) -> None:
    """An all-day event of Dec D runs from local midnight to local midnight of the mailbox's
    zone; the agenda is sorted by start, camelCase, with the event's IANA zone."""
    mb = enrol(stack, {"timeZone": zone})
    day = (_now(stack) + timedelta(days=10)).date()
    nxt = day + timedelta(days=1)
    all_day = mb.create(
        {
            "subject": "Holiday",
            "isAllDay": True,
            "showAs": "oof",
            "start": {"dateTime": f"{day}T00:00:00", "timeZone": zone},
            "end": {"dateTime": f"{nxt}T00:00:00", "timeZone": zone},
        }
    )
    local_noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(zone))
    timed = mb.create(
        {
            "subject": "Lunch",
            "start": _utc(local_noon),
            "end": _utc(local_noon + timedelta(hours=1)),
            "originalStartTimeZone": "Pacific Standard Time",
        }
    )
    mb.converged()
    with stack.admin() as api:
        answer = api.get(mb.path + "/agenda", params={"start": str(day), "end": str(nxt)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["timeZone"] == zone
    assert [e["id"] for e in body["value"]] == [all_day, timed]
    first = body["value"][0]
    expect_start = (day - timedelta(days=1) if zone == "Asia/Tokyo" else day).isoformat()
    expect_end = (day if zone == "Asia/Tokyo" else nxt).isoformat()
    assert (first["start"], first["end"]) == (expect_start + start, expect_end + end)
    assert (first["isAllDay"], first["startDate"], first["endDate"]) == (True, str(day), str(nxt))
    assert (first["timeZone"], first["showAs"]) == (zone, "oof")
    second = body["value"][1]
    assert second["start"] == local_noon.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert second["isAllDay"] is False
    assert second["startDate"] is None
    assert set(first) >= {"subject", "sensitivity", "seriesMasterId", "iCalUId", "organizer"}
    with stack.admin() as api:
        local = api.get(
            mb.path + "/freebusy", params={"start": str(day), "end": str(nxt), "interval": "60"}
        ).json()
        utc_day = api.get(
            mb.path + "/freebusy",
            params={"start": f"{day}T00:00:00Z", "end": f"{nxt}T00:00:00Z", "interval": "60"},
        ).json()
    assert local["availabilityView"] == "3" * 24  # oof all local day (lunch: oof wins)
    hours = 15 if zone == "Asia/Tokyo" else 8
    expected = "3" * hours + "0" * 9 if zone == "Asia/Tokyo" else "0" * hours + "3" * 16
    assert utc_day["availabilityView"] == expected


def test_freebusy_equals_graph_get_schedule(stack: Stack) -> None:
    """For the same mailbox and range, availabilityView equals the simulator's getSchedule."""
    mb = enrol(stack)
    for days, hour, minutes, length, show_as in [
        (2, 9, 0, 60, "busy"),
        (2, 9, 30, 90, "oof"),
        (2, 11, 10, 20, "tentative"),
        (2, 13, 0, 120, "workingElsewhere"),
        (2, 13, 30, 30, "tentative"),
        (2, 16, 0, 30, "free"),
        (2, 17, 0, 60, "busy"),
    ]:
        mb.create({"subject": show_as, "showAs": show_as, **at(days, hour, minutes, length=length)})
    mb.converged()
    day = at(2, 0)["start"]["dateTime"][:10]
    start, end = f"{day}T08:00:00", f"{day}T18:00:00"
    for interval in (30, 15, 60):
        with stack.admin() as api:
            ours = api.get(
                mb.path + "/freebusy",
                params={"start": start + "Z", "end": end + "Z", "interval": str(interval)},
            )
        assert ours.status_code == 200, ours.text
        with httpx.Client(verify=stack.sim.ssl_context(), timeout=30) as client:
            graph = client.post(
                f"{stack.sim.graph_base_url}/users/{mb.user_id}/calendar/getSchedule",
                headers={"Authorization": f"Bearer {graph_token(stack)}"},
                json={
                    "schedules": [mb.upn],
                    "startTime": {"dateTime": start, "timeZone": "UTC"},
                    "endTime": {"dateTime": end, "timeZone": "UTC"},
                    "availabilityViewInterval": interval,
                },
            )
        graph.raise_for_status()
        expected = graph.json()["value"][0]
        assert ours.json()["availabilityView"] == expected["availabilityView"], interval
        statuses = sorted(i["status"] for i in ours.json()["scheduleItems"])
        assert statuses == sorted(i["status"] for i in expected["scheduleItems"])
    assert set(ours.json()["availabilityView"]) == set("01234")


def test_bad_ranges_are_problems_naming_the_parameter(stack: Stack) -> None:
    """Over 62 days, end before start, a bad interval or date: 400 naming it; unknown: 404."""
    mb = enrol(stack)
    cases: list[tuple[str, dict[str, str], str]] = [
        ("/freebusy", {"start": "2026-01-01", "end": "2026-04-01"}, "end"),
        ("/agenda", {"start": "2026-01-02", "end": "2026-01-01"}, "end"),
        ("/freebusy", {"interval": "4"}, "interval"),
        ("/freebusy", {"interval": "1441"}, "interval"),
        ("/agenda", {"start": "soon"}, "start"),
        ("/agenda", {"start": "0001-01-01T00:00:00Z"}, "start"),
    ]
    with stack.admin() as api:
        for route, params, named in cases:
            answer = api.get(mb.path + route, params=params)
            assert answer.status_code == 400, (route, params, answer.text)
            assert answer.json()["detail"].startswith(named), answer.json()
        ghost = api.get(f"/mailboxes/{stack.tenant_id}/ghost@contoso.example/agenda")
        assert ghost.status_code == 404
        assert ghost.headers["content-type"].startswith("application/problem+json")


def _zone_at_midday(now: datetime) -> str:
    """A zone where it is between 06:00 and 16:00 now, so that "next, today" exists."""
    for name in ("UTC", "Asia/Tokyo", "America/Los_Angeles", "Asia/Kolkata", "America/New_York"):
        if 6 <= now.astimezone(ZoneInfo(name)).hour < 16:
            return name
    raise AssertionError("no zone at midday")  # the five cover every hour of the day


def test_now_reports_status_current_and_next(stack: Stack) -> None:
    """POST /api/now: the busiest event covering now, the next today; unknown: not enrolled."""
    now = _now(stack)
    mb = enrol(stack, {"timeZone": _zone_at_midday(now)})
    idle = enrol(stack)
    minute = now.replace(second=0, microsecond=0)
    meeting = mb.create(
        {
            "subject": "Call",
            "showAs": "busy",
            "start": _utc(minute - timedelta(minutes=10)),
            "end": _utc(minute + timedelta(minutes=50)),
        }
    )
    mb.create(
        {
            "subject": "Soft hold",
            "showAs": "tentative",
            "start": _utc(minute - timedelta(minutes=30)),
            "end": _utc(minute + timedelta(minutes=90)),
        }
    )
    later = mb.create(
        {
            "subject": "Review",
            "start": _utc(minute + timedelta(hours=2)),
            "end": _utc(minute + timedelta(hours=3)),
        }
    )
    mb.converged()
    asked = [{"tenantId": stack.tenant_id, "user": mb.user_id}]
    asked += [{"tenantId": stack.tenant_id, "user": idle.upn}]
    asked += [{"tenantId": stack.tenant_id, "user": f"ghost{i}@contoso.example"} for i in range(98)]
    with stack.admin() as api:
        answer = api.post("/now", json={"mailboxes": asked})
        assert answer.status_code == 200, answer.text
        value = answer.json()["value"]
        assert len(value) == 100
        first, second, ghost = value[0], value[1], value[2]
        assert (first["status"], first["current"]["id"], first["next"]["id"]) == (
            "busy",
            meeting,
            later,
        )
        assert (second["enrolled"], second["status"], second["current"]) == (True, "free", None)
        assert (ghost["enrolled"], ghost["status"]) == (False, "notEnrolled")
        too_many = api.post("/now", json={"mailboxes": asked * 6})
        assert too_many.status_code == 400
        assert "500" in too_many.json()["detail"]
        assert too_many.json()["detail"].startswith("mailboxes")
        assert api.post("/now", content=b"[1]").status_code == 400


def test_reads_answer_304_when_unchanged(stack: Stack) -> None:
    """Every read carries a strong ETag; If-None-Match with it answers 304 with no body, and a
    change in the mirror changes the ETag."""
    mb = enrol(stack)
    mb.create({"subject": "Tagged", **at(0, 12)})
    mb.converged()
    reads: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", mb.path + "/agenda", None),
        ("GET", mb.path + "/freebusy", None),
        ("GET", mb.path + "/events", None),
        ("GET", mb.path, None),
        ("POST", "/now", {"mailboxes": [{"tenantId": stack.tenant_id, "user": mb.user_id}]}),
    ]
    with stack.admin() as api:
        for method, path, body in reads:
            first = api.request(method, path, json=body)
            assert first.status_code == 200, (path, first.text)
            etag = first.headers["etag"]
            assert etag.startswith('"')
            again = api.request(method, path, json=body, headers={"If-None-Match": etag})
            assert again.status_code == 304, path
            assert again.content == b""
            assert again.headers["etag"] == etag
            other = api.request(method, path, json=body, headers={"If-None-Match": '"x"'})
            assert other.status_code == 200
        before = api.get(mb.path + "/agenda", params={"start": at(3, 0)["start"]["dateTime"][:10]})
        mb.create({"subject": "New", **at(3, 9)})
        mb.converged()
        after = api.get(
            mb.path + "/agenda",
            params={"start": at(3, 0)["start"]["dateTime"][:10]},
            headers={"If-None-Match": before.headers["etag"]},
        )
        assert after.status_code == 200
        assert after.headers["etag"] != before.headers["etag"]
