"""Pure: a calendar whose calendarView delta Graph refuses is synced by listing its calendarView.

Rules:
- v1.0 documents calendarView delta for the primary calendar only (beta documents other
  calendars: https://learn.microsoft.com/graph/api/event-delta?view=graph-rest-beta). A Graph
  that answers delta of another calendar with 400, 404 ErrorInvalidRequest-like codes, 405 or
  501 refuses it; 401, 403, 410, 429 and 5xx mean what they always mean.
- Refused, the round lists the calendar's calendarView over the window (every instance, paged)
  and diffs it against the mirror as a full round does (core.reconcile.plan_full_diff), so
  deletions are found too. The cursor keeps `LISTING_LINK` as its delta link: later rounds list
  again without asking delta first; a full round (window roll, resync, safety net) asks delta
  again, so a Graph that starts answering it is used from then on.
- The listing is cut into pages of PAGE_SIZE items, the last one carrying `LISTING_LINK`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from shared.core.model import DeltaItem, DeltaPageData

LISTING_LINK = "listing:calendarView"  # never a URL: no stored link can be mistaken for it
PAGE_SIZE = 100
REFUSED_STATUSES = frozenset({400, 404, 405, 501})


def is_refusal(status: int | None, *, default_calendar: bool) -> bool:
    """Whether Graph's answer to calendarView delta refuses delta for this calendar."""
    return not default_calendar and status in REFUSED_STATUSES


def listing_pages(events: Iterable[dict[str, Any]]) -> Iterator[DeltaPageData]:
    """The listed events as delta pages (no removals: the round's diff finds those)."""
    batch: list[DeltaItem] = []
    for event in events:
        batch.append(DeltaItem(str(event.get("id", "")), event))
        if len(batch) == PAGE_SIZE:
            yield DeltaPageData(tuple(batch), next_link="listing:more")
            batch = []
    yield DeltaPageData(tuple(batch), delta_link=LISTING_LINK)
