"""End to end: changes made in Outlook reach the mirror, which then equals Graph field by field."""

from __future__ import annotations

import pytest

from devhost.local.stack import Stack
from tests.e2e.harness import at, enrol

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_single_event_create_update_delete(stack: Stack) -> None:
    """A single event is mirrored on create, changed on update and removed on delete."""
    mb = enrol(stack)
    mb.converged()
    eid = mb.create(
        {
            "subject": "Dentist",
            **at(1, 9),
            "body": {"contentType": "html", "content": "<b>bring card</b>"},
        }
    )
    mb.converged()
    mb.update(
        eid,
        {
            "subject": "Dentist (moved)",
            **at(2, 14),
            "showAs": "oof",
            "sensitivity": "private",
            "location": {"displayName": "Main St 1"},
        },
    )
    mb.converged()
    assert mb.mirror()[eid]["subject"] == "Dentist (moved)"
    mb.delete(eid)
    mb.converged()
    assert eid not in mb.mirror()


def test_recurring_series_edits_cancellations_and_pattern_change(stack: Stack) -> None:
    """Occurrences, an edited occurrence (exception), a cancelled one and a new pattern."""
    mb = enrol(stack)
    series = at(0, 8)
    series["recurrence"] = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {
            "type": "numbered",
            "startDate": series["start"]["dateTime"][:10],
            "numberOfOccurrences": 10,
        },
    }
    master = mb.create({"subject": "Daily sync", **series})
    mb.converged()
    occurrences = sorted(
        (e for e in mb.mirror().values() if e.get("series_master_id") == master),
        key=lambda e: str(e["start"]),
    )
    assert len(occurrences) == 10
    assert all(e["type"] == "occurrence" for e in occurrences)
    mb.update(
        occurrences[2]["event_id"], {"subject": "Daily sync (long one)", **at(2, 10, length=90)}
    )
    mb.delete(occurrences[5]["event_id"])
    mb.converged()
    mirror = mb.mirror()
    assert mirror[occurrences[2]["event_id"]]["type"] == "exception"
    assert occurrences[5]["event_id"] not in mirror
    mb.update(
        master,
        {
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "thursday"]},
                "range": {
                    "type": "endDate",
                    "startDate": series["start"]["dateTime"][:10],
                    "endDate": at(40, 0)["start"]["dateTime"][:10],
                },
            }
        },
    )
    mb.converged()


def test_all_day_and_multi_day_events_keep_their_dates(stack: Stack) -> None:
    """All-day events keep their local dates; multi-day events span every day they cover."""
    mb = enrol(stack, {"timeZone": "Pacific Standard Time"})
    day = at(3, 0)["start"]["dateTime"][:10]
    end = at(6, 0)["start"]["dateTime"][:10]
    eid = mb.create(
        {
            "subject": "Offsite",
            "isAllDay": True,
            "start": {"dateTime": f"{day}T00:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": f"{end}T00:00:00", "timeZone": "Pacific Standard Time"},
        }
    )
    mb.converged()
    row = mb.mirror()[eid]
    assert row["is_all_day"] is True
    assert (row["all_day_start_date"], row["all_day_end_date"]) == (day, end)


def test_event_moved_out_of_and_back_into_the_window(stack: Stack) -> None:
    """Moving an event beyond the window removes it from the mirror; moving it back restores it."""
    mb = enrol(stack, {"weeksAhead": 2})
    eid = mb.create({"subject": "Planning", **at(3, 11)})
    mb.converged()
    mb.update(eid, at(40, 11))
    mb.converged()
    assert eid not in mb.mirror()
    mb.update(eid, at(5, 11))
    mb.converged()
    assert eid in mb.mirror()


def test_a_burst_of_fifty_changes_costs_few_delta_rounds(stack: Stack) -> None:
    """50 changes in quick succession (50+ notifications) fold into at most 3 delta rounds."""
    mb = enrol(stack)
    mb.converged()

    def graph_requests() -> int:  # only this test's mailbox is active meanwhile
        return int(stack.sim.control.counters()["requests_by_endpoint"]["calendarView.delta"])

    before = graph_requests()
    for n in range(50):
        mb.create({"subject": f"Burst {n}", **at(1 + n % 20, 8)})
    mb.converged()
    requests = graph_requests() - before
    assert 1 <= requests <= 3, f"{requests} delta requests for one burst"
