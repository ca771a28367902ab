"""Pure: the calendarView window a mailbox's delta cursor covers, and when it must roll.

Rule: the window is whole UTC days, [00:00 UTC of (today - 7*weeks_back days),
00:00 UTC of (today + 7*weeks_ahead days + 1 day)), with "today" the UTC date of `now`. The
extra day keeps all of the last day inside. Graph fixes the window inside the delta token
(learn.microsoft.com/graph/delta-query-events), so a cursor whose window differs from today's
plan is stale: the worker starts a new delta round for the new window and diffs the mirror
(events that left the window are deleted then). The plan changes once a day, at 00:00 UTC, or
when the mailbox's weeks_back / weeks_ahead change.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

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


def window_is_stale(window: Window, now: datetime, options: MailboxOptions) -> bool:
    """True when the planned window at `now` differs from the cursor's `window`."""
    planned = plan_window(now, options)
    return (planned.start, planned.end) != (
        require_aware(window.start, "window.start"),
        require_aware(window.end, "window.end"),
    )
