"""The delta window: whole UTC days, rolling once a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.core.model import MailboxOptions, Window
from shared.core.window import plan_window, window_is_stale
from shared.errors import InputError

OPTS = MailboxOptions(weeks_back=2, weeks_ahead=3)


def test_window_bounds() -> None:
    """start = today - 7*weeks_back at 00:00 UTC; end = today + 7*weeks_ahead + 1 day."""
    window = plan_window(datetime(2026, 11, 21, 15, 30, tzinfo=UTC), OPTS)
    assert window == Window(datetime(2026, 11, 7, tzinfo=UTC), datetime(2026, 12, 13, tzinfo=UTC))


def test_today_is_the_utc_date() -> None:
    """A local time just after midnight east of UTC still belongs to the previous UTC day."""
    tokyo = timezone(timedelta(hours=9))
    assert plan_window(datetime(2026, 11, 22, 1, 0, tzinfo=tokyo), OPTS) == plan_window(
        datetime(2026, 11, 21, 16, 0, tzinfo=UTC), OPTS
    )


def test_zero_weeks_back_starts_today() -> None:
    """weeks_back=0 starts at today's midnight UTC."""
    window = plan_window(datetime(2026, 1, 1, 23, 59, tzinfo=UTC), MailboxOptions(weeks_back=0))
    assert window.start == datetime(2026, 1, 1, tzinfo=UTC)


def test_stable_within_a_day_and_rolls_at_midnight() -> None:
    """The window is the same all day; it becomes stale at 00:00 UTC, moved by one day."""
    morning = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    window = plan_window(morning, OPTS)
    for minutes in range(0, 24 * 60, 17):
        assert not window_is_stale(window, morning + timedelta(minutes=minutes), OPTS)
    tomorrow = morning + timedelta(days=1)
    assert window_is_stale(window, tomorrow, OPTS)
    rolled = plan_window(tomorrow, OPTS)
    assert (rolled.start - window.start, rolled.end - window.end) == (timedelta(days=1),) * 2


def test_stale_when_options_change() -> None:
    """Changing weeks_back or weeks_ahead makes the stored window stale."""
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    window = plan_window(now, OPTS)
    assert window_is_stale(window, now, MailboxOptions(weeks_back=3, weeks_ahead=3))
    assert window_is_stale(window, now, MailboxOptions(weeks_back=2, weeks_ahead=4))
    assert not window_is_stale(
        window, now, MailboxOptions(weeks_back=2, weeks_ahead=3, mode="poll")
    )


def test_equal_instants_in_other_zones_are_not_stale() -> None:
    """A stored window read back with another UTC offset notation is the same window."""
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    window = plan_window(now, OPTS)
    plus_one = timezone(timedelta(hours=1))
    shifted = Window(window.start.astimezone(plus_one), window.end.astimezone(plus_one))
    assert not window_is_stale(shifted, now, OPTS)


def test_naive_now_refused() -> None:
    """A naive `now` is an InputError: its instant would be a guess."""
    with pytest.raises(InputError, match="timezone-aware"):
        plan_window(datetime(2026, 11, 21), OPTS)
