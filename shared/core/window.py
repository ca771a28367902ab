"""Pure: the calendarView window a mailbox's delta cursor covers, and when it must roll.

Rule: the window is whole UTC days, [00:00 UTC of (today - 7*weeks_back days),
00:00 UTC of (today + 7*weeks_ahead days + 1 day)), with "today" the UTC date of `now`. The
extra day keeps all of the last day inside. Graph fixes the window inside the delta token
(learn.microsoft.com/graph/delta-query-events), so a cursor whose window differs from today's
plan is stale: the worker starts a new delta round for the new window and diffs the mirror
(events that left the window are deleted then). The plan changes once a day, at 00:00 UTC, or
when the mailbox's weeks_back / weeks_ahead change.

The margin (WINDOW_MARGIN_DAYS, `margin_days`): the delta cursor covers the user's window
widened by `margin_days` on both sides (`plan_delta_window`), and stays valid while the user's
window of the day still lies within it and it is no wider than today's widened plan
(`window_is_stale`). So the cursor's window is recreated (one full listing) every
`margin_days + 1` days instead of daily. What lies in the margin is mirrored but hidden: reads
and the change feed show only what overlaps the user's window (`in_user_window`); an event that
enters the user's window reaches the feed as created, one that leaves it as deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from shared.core.model import MailboxOptions, Window
from shared.errors import InputError


def require_aware(value: datetime, what: str) -> datetime:
    """`value` in UTC; InputError for a naive datetime (its instant would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{what} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def plan_window(now: datetime, options: MailboxOptions) -> Window:
    """The window a delta round started at `now` must cover for a mailbox with `options`."""
    today = require_aware(now, "now").date()
    start = today - timedelta(days=7 * options.weeks_back)
    end = today + timedelta(days=7 * options.weeks_ahead + 1)
    return Window(
        start=datetime.combine(start, time(0), tzinfo=UTC),
        end=datetime.combine(end, time(0), tzinfo=UTC),
    )


def plan_delta_window(now: datetime, options: MailboxOptions, margin_days: int = 0) -> Window:
    """The window a new delta cursor covers: the user's window widened by `margin_days` days on
    both sides."""
    user, margin = plan_window(now, options), timedelta(days=margin_days)
    return Window(start=user.start - margin, end=user.end + margin)


def window_is_stale(
    window: Window, now: datetime, options: MailboxOptions, margin_days: int = 0
) -> bool:
    """True when the cursor's `window` no longer serves at `now`: without a margin, when it
    differs from the planned window; with one, when the user's window is no longer within it, or
    it is wider than the user's window widened by the margin (the mailbox's weeks changed)."""
    start = require_aware(window.start, "window.start")
    end = require_aware(window.end, "window.end")
    user = plan_window(now, options)
    if margin_days <= 0:
        return (user.start, user.end) != (start, end)
    margin = timedelta(days=margin_days)
    inside = start <= user.start and user.end <= end
    return not inside or start < user.start - 2 * margin or end > user.end + 2 * margin


def in_user_window(start: datetime | None, end: datetime | None, user: Window) -> bool:
    """Whether an event spanning [start, end) is shown: it overlaps the user's window (an event
    without times, such as a series master, always is)."""
    if start is None or end is None:
        return True
    return require_aware(end, "end") > user.start and require_aware(start, "start") < user.end


def row_is_shown(row: Mapping[str, Any], user: Window) -> bool:
    """Whether reads show a mirrored row: not hidden in the margin, and overlapping the user's
    window (a series master always is)."""
    if row.get("hidden") is True:
        return False
    if row.get("type") == "seriesMaster":
        return True
    start, end = row.get("start"), row.get("end")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return True
    return in_user_window(start, end, user)
