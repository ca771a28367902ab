"""Pure: decoding one page of `calendarView/delta` into items and the link to follow.

Rule (learn.microsoft.com/graph/delta-query-events, /graph/delta-query-overview): a page carries
a `value` list and exactly one of `@odata.nextLink` (more pages follow) or `@odata.deltaLink`
(the round is complete; keep it as the cursor). Anything else is a malformed page and raises
GraphProtocolError(status=200, graph_code="MalformedDeltaPage"): following a guessed link could
skip changes, and the cursor must never advance past a page that was not understood; it is not
retried (the same page would come back): the round is recorded as failed.
An item is an event, or `{"id": ..., "@removed": {"reason": ...}}` (deleted, or moved out of the
window). Items may repeat within and across pages (replays); `reconcile.plan_page` folds them.
"""

from __future__ import annotations

from typing import Any

from shared.core.model import DeltaItem, DeltaPageData
from shared.errors import GraphProtocolError

MALFORMED = "MalformedDeltaPage"
NEXT_LINK = "@odata.nextLink"
DELTA_LINK = "@odata.deltaLink"


def _malformed(problem: str) -> GraphProtocolError:
    return GraphProtocolError(
        f"Graph returned a malformed calendarView/delta page: {problem}. The cursor was not "
        "advanced; the next round retries from the last committed link",
        status=200,
        graph_code=MALFORMED,
    )


def _link(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise _malformed(f"{key} must be an absolute URL, got {value!r}")
    return value


def _item(raw: Any, index: int) -> DeltaItem:
    if not isinstance(raw, dict):
        raise _malformed(f"value[{index}] is not a JSON object")
    event_id = raw.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise _malformed(f"value[{index}] has no string id")
    if "@removed" in raw:
        marker = raw["@removed"]
        reason = marker.get("reason") if isinstance(marker, dict) else None
        # The docs name "deleted" as the only reason for events; keep any other string as given.
        return DeltaItem(
            event_id, removed=reason if isinstance(reason, str) and reason else "deleted"
        )
    return DeltaItem(event_id, event=raw)


def decode_delta_page(payload: dict[str, Any]) -> DeltaPageData:
    """Items and the one link of a delta page; GraphProtocolError MalformedDeltaPage otherwise."""
    if not isinstance(payload, dict):
        raise _malformed(f"the body is a {type(payload).__name__}, not a JSON object")
    values = payload.get("value")
    if not isinstance(values, list):
        raise _malformed("it has no `value` list")
    next_link = _link(payload, NEXT_LINK)
    delta_link = _link(payload, DELTA_LINK)
    if next_link and delta_link:
        raise _malformed(f"it carries both {NEXT_LINK} and {DELTA_LINK}")
    if not next_link and not delta_link:
        raise _malformed(f"it carries neither {NEXT_LINK} nor {DELTA_LINK}")
    items = tuple(_item(raw, index) for index, raw in enumerate(values))
    return DeltaPageData(items=items, next_link=next_link, delta_link=delta_link)
