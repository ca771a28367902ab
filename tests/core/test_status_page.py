"""The status page's chart of changes per hour, rendered without I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shared.core.status_page import CHART_HEIGHT, changes_chart, render_status_page

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_one_bar_an_hour_scaled_to_the_busiest() -> None:
    """24 hours make 24 bars titled with hour and count; the busiest hour is full height."""
    hours = [(NOW - timedelta(hours=23 - h), h % 5) for h in range(24)]
    svg = changes_chart(hours)
    assert svg.count("<rect") == 24
    heights = [float(v) for v in re.findall(r"height='([0-9.]+)' fill", svg)]
    assert max(heights) == CHART_HEIGHT
    assert heights[0] == 0
    assert "2026-12-01T14:00:00Z: 3 changes" in svg
    assert f"{sum(n for _, n in hours)} in the last 24 hours" in svg


def test_no_hours_is_a_line_of_text_and_the_page_still_renders() -> None:
    """Without counts (storage down) the page says so instead of drawing an empty chart."""
    page = render_status_page([], now=NOW, version="1", hours=())
    assert "no change counts yet" in page
    assert "<svg" not in page


def test_a_calendar_row_names_its_calendar_escaped() -> None:
    """Another calendar's row shows its name and handle after the user, escaped; the default
    calendar's row shows the user alone."""
    rows = [
        {"tenant": "t", "user": "adele@contoso.com", "calendar": "<Team> (projects)", "ok": True},
        {"tenant": "t", "user": "ben@contoso.com", "calendar": "", "ok": True},
    ]
    page = render_status_page(rows, now=NOW, version="1", hours=())
    assert "adele@contoso.com / &lt;Team&gt; (projects)" in page
    assert "ben@contoso.com</td>" in page
