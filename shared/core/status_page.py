"""Pure: the operator's status page as one self-contained HTML document (no build step, no CDN,
no script from elsewhere: styles and the small script are inline). Every value from storage or
Graph is escaped; the page never holds a secret (mailbox records hold none).

Rows are plain dicts so the renderer stays independent of the records' classes:
`tenant`, `user`, `calendar` ("" for the default calendar, else its name and handle), `state`,
`mode`, `health`, `ok`, `subscription_expiry`, `last_sync`, `lag_seconds`, `last_error`,
`last_error_code`, `event_count`. The change feed's webhook
subscribers that are failing or disabled are listed below them ("failing subscribers": `id`,
`host`, `status`, `since`, `last_error`; the URL's host only, as a URL may carry a token).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from shared.core.times import iso_utc

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#1b1b1b;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 .2rem}
h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
.summary{margin:.5rem 0 1rem;color:#555}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:.35rem .5rem;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}
tr.failing td{background:#fff1f0}
.badge{display:inline-block;padding:0 .4rem;border-radius:.6rem;font-size:.8rem}
.badge.ok{background:#e3f6e8;color:#1a6b34}.badge.failing{background:#fde2e1;color:#a4161a}
.error{color:#a4161a}
"""
_SCRIPT = """
document.querySelectorAll('[data-when]').forEach(function (el) {
  var t = Date.parse(el.getAttribute('data-when'));
  if (!isNaN(t)) { el.title = new Date(t).toString(); }
});
"""


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    text = iso_utc(value)
    return f'<time data-when="{escape(text)}">{escape(text)}</time>'


def _lag(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _row(row: dict[str, Any]) -> str:
    ok = bool(row.get("ok"))
    badge = f'<span class="badge {"ok" if ok else "failing"}">{"ok" if ok else "failing"}</span>'
    error = ""
    if row.get("last_error"):
        code = escape(str(row.get("last_error_code") or ""))
        error = f'<span class="error">{code}: {escape(str(row["last_error"]))}</span>'
    cells = [
        escape(str(row.get("tenant", ""))),
        escape(str(row.get("user", "")))
        + (f" / {escape(str(row['calendar']))}" if row.get("calendar") else ""),
        badge,
        escape(str(row.get("state", ""))),
        escape(str(row.get("health", ""))),
        _when(row.get("subscription_expiry")),
        _when(row.get("last_sync")),
        _lag(row.get("lag_seconds")),
        escape(str(row.get("event_count", ""))),
        error,
    ]
    tds = "".join(f"<td>{c}</td>" for c in cells)
    state = "ok" if ok else "failing"
    return f'<tr class="{state}" data-state="{state}">{tds}</tr>'


CHART_WIDTH, CHART_HEIGHT = 720, 90


def changes_chart(hours: Sequence[tuple[datetime, int]]) -> str:
    """An inline SVG bar chart of changes per hour (oldest first), each bar titled with its
    hour and count; a line of text when there are no hours."""
    if not hours:
        return "<p id='changes-chart'>no change counts yet</p>"
    top = max(n for _, n in hours) or 1
    step = CHART_WIDTH / len(hours)
    bars = []
    for index, (hour, n) in enumerate(hours):
        height = round(CHART_HEIGHT * n / top, 1)
        bars.append(
            f"<rect x='{index * step:.1f}' y='{CHART_HEIGHT - height:.1f}' width='{step - 2:.1f}' "
            f"height='{height}' fill='#3b73b9'><title>{escape(iso_utc(hour))}: {n} "
            f"change{'' if n == 1 else 's'}</title></rect>"
        )
    labels = [
        f"<text x='{index * step:.1f}' y='{CHART_HEIGHT + 14}' font-size='11' fill='#555'>"
        f"{hour.strftime('%H:00')}</text>"
        for index, (hour, _) in enumerate(hours)
        if index % 6 == 0
    ]
    axis = (
        f"<line x1='0' y1='{CHART_HEIGHT + 0.5}' x2='{CHART_WIDTH}' y2='{CHART_HEIGHT + 0.5}' "
        "stroke='#bbb'/>"
    )
    total = sum(n for _, n in hours)
    return (
        f"<h2>Changes per hour</h2><p class='summary'>{total} in the last {len(hours)} hours "
        f"(UTC, oldest left; most in one hour: {top if total else 0})</p>"
        f"<svg id='changes-chart' role='img' aria-label='changes per hour' "
        f"viewBox='0 0 {CHART_WIDTH} {CHART_HEIGHT + 18}' width='{CHART_WIDTH}' "
        f"height='{CHART_HEIGHT + 18}'>{''.join(bars)}{axis}{''.join(labels)}</svg>"
    )


def _subscribers(subscribers: Sequence[dict[str, Any]]) -> str:
    if not subscribers:
        return ""
    head = (
        "<tr><th>subscriber</th><th>host</th><th>status</th><th>since</th><th>last error</th></tr>"
    )
    rows = "".join(
        "<tr class='failing' data-state='failing'>"
        + "".join(
            f"<td>{c}</td>"
            for c in (
                escape(str(sub.get("id", ""))),
                escape(str(sub.get("host", ""))),
                escape(str(sub.get("status", ""))),
                _when(sub.get("since")),
                f"<span class='error'>{escape(str(sub.get('last_error', '')))}</span>",
            )
        )
        + "</tr>"
        for sub in subscribers
    )
    return (
        f"<h2>failing subscribers: <span id='failing-subscribers'>{len(subscribers)}</span></h2>"
        f"<table id='subscribers'><thead>{head}</thead><tbody>{rows}</tbody></table>"
    )


def render_status_page(
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime,
    version: str,
    credential: str = "",
    hours: Sequence[tuple[datetime, int]] = (),
    subscribers: Sequence[dict[str, Any]] = (),
) -> str:
    """The page for these mailbox rows at `now`; `credential`: a warning about the app's
    credential expiry to show above the table (escaped), or ""; `hours`: changes per hour for
    the chart below the table; `subscribers`: the failing or disabled webhook subscribers."""
    failing = sum(1 for r in rows if not r.get("ok"))
    tenants = len({r.get("tenant") for r in rows})
    head = (
        "<tr><th>tenant</th><th>mailbox</th><th>health</th><th>state</th><th>detail</th>"
        "<th>subscription expiry</th><th>last sync</th><th>lag</th><th>events</th>"
        "<th>last error</th></tr>"
    )
    body = "".join(_row(r) for r in rows) or '<tr><td colspan="10">no mailbox enrolled</td></tr>'
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>calsync status</title><style>{_STYLE}</style></head><body>"
        f"<h1>calsync status</h1><div class='summary' id='summary'>{len(rows)} mailboxes in "
        f"{tenants} tenant{'' if tenants == 1 else 's'}, "
        f"<strong id='failing'>{failing}</strong> failing · version "
        f"{escape(version)} · {_when(now)}</div>"
        + (f"<p class='error' id='credential'>{escape(credential)}</p>" if credential else "")
        + f"<table id='mailboxes'><thead>{head}</thead><tbody>{body}</tbody></table>"
        + changes_chart(hours)
        + _subscribers(subscribers)
        + f"<script>{_SCRIPT}</script></body></html>"
    )
