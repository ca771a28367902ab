"""The window's margin: the delta window recreated every margin + 1 days, what lies in the margin
hidden from the feed (created when it enters the user's window, deleted when it leaves), the
daily roll's choice (slide, new window, safety net) and the safety net after faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.model import DeltaItem, MailboxKey, MailboxOptions, SyncRequest, Trigger
from shared.core.reconcile import plan_page
from shared.core.rounds import Pass, Run, Slide, is_fault, plan_round, stamp_request
from shared.core.state import CursorRecord
from shared.core.window import in_user_window, plan_delta_window, plan_window, window_is_stale

T0 = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
OPTS = MailboxOptions(weeks_back=0, weeks_ahead=1)  # the user's window: today and 7 days
KEY = MailboxKey("t", "u")


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def test_the_delta_window_is_the_users_widened_by_the_margin() -> None:
    """With a margin of 7 days the delta window starts 7 days before and ends 7 days after
    the user's window."""
    user, delta = plan_window(T0, OPTS), plan_delta_window(T0, OPTS, 7)
    assert delta.start == user.start - timedelta(days=7)
    assert delta.end == user.end + timedelta(days=7)
    assert plan_delta_window(T0, OPTS, 0) == user


def test_a_delta_window_serves_for_margin_plus_one_days() -> None:
    """Created on day 0 with a margin of 7, the window holds the user's window through day 7
    and is stale on day 8; without a margin it is stale the next day (as before)."""
    window = plan_delta_window(T0, OPTS, 7)
    assert [window_is_stale(window, day(n), OPTS, 7) for n in range(10)] == [False] * 8 + [True] * 2
    assert not window_is_stale(plan_window(T0, OPTS), T0, OPTS, 0)
    assert window_is_stale(plan_window(T0, OPTS), day(1), OPTS, 0)


def test_changed_weeks_make_a_margin_window_stale() -> None:
    """More weeks back than the window holds, or far fewer weeks ahead, re-plan the window."""
    window = plan_delta_window(T0, OPTS, 7)
    assert window_is_stale(window, T0, MailboxOptions(weeks_back=2, weeks_ahead=1), 7)
    assert window_is_stale(window, T0, MailboxOptions(weeks_back=0, weeks_ahead=3), 7)
    assert window_is_stale(window, T0, MailboxOptions(weeks_back=0, weeks_ahead=0), 7) is False


@pytest.mark.parametrize(
    ("start", "end", "shown"),
    [
        (day(1), day(1.1), True),
        (day(8), day(8.5), False),  # the user's window ends on day 8 at 00:00
        (day(7.5), day(8.5), True),  # overlaps its last day
        (day(-0.5), day(-0.03), False),  # yesterday (today began 30 minutes before T0)
        (day(-1), day(0), True),  # spans today's start
        (None, None, True),  # no times: a series master
    ],
)
def test_in_user_window(start: datetime | None, end: datetime | None, shown: bool) -> None:
    """An event is shown when it overlaps the user's window, end exclusive."""
    assert in_user_window(start, end, plan_window(T0, OPTS)) is shown


def _event(eid: str, start: datetime, key: str = "ck1", subject: str = "s") -> dict[str, Any]:
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "id": eid,
        "changeKey": key,
        "subject": subject,
        "type": "singleInstance",
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"},
    }


def _stored(plan: Any) -> dict[str, tuple[str, ...]]:
    from shared.services.mirror import version_of

    return {ev.event_id: tuple(version_of(ev)) for ev in plan.upserts}


USER = plan_window(T0, OPTS)


def test_an_event_in_the_margin_is_mirrored_hidden_without_a_change_event() -> None:
    """A new event after the user's window is upserted hidden and makes no change event."""
    plan = plan_page([DeltaItem("a", _event("a", day(12)))], {}, OPTS, USER)
    assert [ev.properties["hidden"] for ev in plan.upserts] == [True]
    assert [(c.type, c.emit) for c in plan.changes] == [("created", False)]


def test_moving_into_the_users_window_is_created_and_out_of_it_deleted() -> None:
    """An event moved from the margin into the user's window is `created` (with its event) on
    the feed; moved back out it is `deleted`, its row kept hidden; a change within the margin
    and the deletion of a hidden event make no change event."""
    hidden = plan_page([DeltaItem("a", _event("a", day(12)))], {}, OPTS, USER)
    moved_in = plan_page([DeltaItem("a", _event("a", day(3), "ck2"))], _stored(hidden), OPTS, USER)
    (change,) = moved_in.changes
    assert (change.type, change.emit, change.changed_fields) == ("created", True, None)
    assert change.event is not None
    assert change.event["subject"] == "s"
    assert moved_in.upserts[0].properties["hidden"] is False
    updated = plan_page(
        [DeltaItem("a", _event("a", day(3), "ck3", "t"))], _stored(moved_in), OPTS, USER
    )
    assert [(c.type, c.emit) for c in updated.changes] == [("updated", True)]
    moved_out = plan_page(
        [DeltaItem("a", _event("a", day(13), "ck4"))], _stored(updated), OPTS, USER
    )
    (gone,) = moved_out.changes
    assert (gone.type, gone.emit, gone.keep_row, gone.event) == ("deleted", True, True, None)
    assert moved_out.upserts[0].properties["hidden"] is True
    again = plan_page([DeltaItem("a", _event("a", day(14), "ck5"))], _stored(moved_out), OPTS, USER)
    assert [(c.type, c.emit) for c in again.changes] == [("updated", False)]
    removed = plan_page([DeltaItem("a", None, removed="deleted")], _stored(again), OPTS, USER)
    assert removed.deletes == ("a",)
    assert [(c.type, c.emit) for c in removed.changes] == [("deleted", False)]


def test_without_a_user_window_everything_is_shown() -> None:
    """Callers that pass no user window (and rows stored before the margin) show everything."""
    plan = plan_page([DeltaItem("a", _event("a", day(400)))], {}, OPTS)
    assert [(c.type, c.emit) for c in plan.changes] == [("created", True)]
    removed = plan_page([DeltaItem("a", None, removed="deleted")], {"a": ("ck1", "h")}, OPTS, USER)
    assert [(c.type, c.emit) for c in removed.changes] == [("deleted", True)]


def _cursor(window_day: float, full_day: float | None, **kw: Any) -> CursorRecord:
    return CursorRecord(
        KEY,
        delta_link="https://graph/delta?token=1",
        window=plan_delta_window(day(window_day), OPTS, 7),
        round_completed=day(window_day),
        full_completed=None if full_day is None else day(full_day),
        **kw,
    )


def _request(trigger: Trigger, at: datetime, event: str = "") -> SyncRequest:
    return SyncRequest("t", "u", trigger, False, stamp_request(at), lifecycle_event=event)


def _plan(req: SyncRequest, cur: CursorRecord, at: datetime) -> Any:
    return plan_round(req, cur, OPTS, now=at, margin_days=7, safety_net_days=7)


def test_the_daily_roll_slides_until_the_window_or_the_safety_net_is_due() -> None:
    """Days 1-6 after a full listing the roll only slides (no Graph request); on day 7 the
    safety net runs on the same window; a window 8 days old is listed anew."""
    for n in range(1, 7):
        assert isinstance(_plan(_request(Trigger.ROLL, day(n)), _cursor(0, 0), day(n)), Slide)
    weekly = _plan(_request(Trigger.ROLL, day(7)), _cursor(0, 0), day(7))
    old = plan_delta_window(T0, OPTS, 7)
    assert isinstance(weekly, Run)
    assert weekly.passes == (Pass(old, full=False), Pass(old, full=True, count_drift=True))
    assert weekly.window == old
    rolled = _plan(_request(Trigger.ROLL, day(8)), _cursor(0, 3), day(8))
    assert isinstance(rolled, Run)
    assert rolled.passes == (Pass(plan_delta_window(day(8), OPTS, 7), full=True),)


def test_the_roll_never_folds() -> None:
    """A round completed after the roll was asked for still leaves the roll its slide."""
    cur = _cursor(0, 0)
    assert isinstance(_plan(_request(Trigger.ROLL, day(-1)), cur, day(1)), Slide)


def test_a_notification_round_keeps_the_margin_window() -> None:
    """An incremental round days later follows the same delta window (no daily recreation)."""
    decision = _plan(_request(Trigger.NOTIFICATION, day(5)), _cursor(0, 0), day(5))
    assert isinstance(decision, Run)
    assert decision.passes == (Pass(plan_delta_window(T0, OPTS, 7), full=False),)


@pytest.mark.parametrize(
    ("trigger", "event", "fault"),
    [
        (Trigger.LIFECYCLE, "missed", True),
        (Trigger.LIFECYCLE, "subscriptionRemoved", True),
        (Trigger.LIFECYCLE, "reauthorizationRequired", False),
        (Trigger.EXPIRED, "", True),
        (Trigger.RECREATED, "", True),
        (Trigger.RESTORED, "", True),
        (Trigger.NOTIFICATION, "", False),
        (Trigger.POLL, "", False),
    ],
)
def test_faults_run_the_safety_net_at_once(trigger: Trigger, event: str, fault: bool) -> None:
    """After a fault that could have lost a change the round is the safety net's (catch up,
    then list in full counting drift), whatever the weekly schedule."""
    req = _request(trigger, day(2), event)
    assert is_fault(req) is fault
    decision = _plan(req, _cursor(0, 0), day(2))
    assert isinstance(decision, Run)
    assert (decision.passes[-1].count_drift, decision.full) == (fault, fault)


def test_a_takeover_runs_the_safety_net() -> None:
    """A round that died holding the lease (stale lease) may have applied half its pages: the
    round that takes over lists the window in full."""
    cur = _cursor(0, 0, lease_owner="dead-host", lease_until=day(2) - timedelta(seconds=1))
    decision = _plan(_request(Trigger.NOTIFICATION, day(2)), cur, day(2))
    assert isinstance(decision, Run)
    assert decision.passes[-1] == Pass(plan_delta_window(T0, OPTS, 7), full=True, count_drift=True)
