"""Decoding calendarView/delta pages: items, removals, exactly one link."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.delta import decode_delta_page
from shared.core.model import DeltaItem
from shared.errors import GraphError

NEXT = "https://graph.microsoft.com/v1.0/users/u/calendarView/delta?$skiptoken=abc"
DELTA = "https://graph.microsoft.com/v1.0/users/u/calendarView/delta?$deltatoken=xyz"
EVENT = {"id": "e/1=", "subject": "s", "type": "singleInstance"}


def test_page_with_next_link() -> None:
    """An intermediate page yields its items and the next link."""
    page = decode_delta_page({"@odata.nextLink": NEXT, "value": [EVENT]})
    assert page.items == (DeltaItem("e/1=", event=EVENT),)
    assert (page.next_link, page.delta_link) == (NEXT, None)


def test_last_page_with_delta_link_and_removals() -> None:
    """The last page carries the delta link; @removed items become removals with a reason."""
    payload = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
        "@odata.deltaLink": DELTA,
        "value": [
            {"id": "gone", "@removed": {"reason": "deleted"}},
            {"id": "odd", "@removed": {}},
            {"id": "e/1=", **EVENT},
            {"id": "e/1=", **EVENT},
        ],
    }
    page = decode_delta_page(payload)
    assert page.delta_link == DELTA
    assert page.next_link is None
    assert page.items[:2] == (
        DeltaItem("gone", removed="deleted"),
        DeltaItem("odd", removed="deleted"),
    )
    assert [i.event_id for i in page.items] == ["gone", "odd", "e/1=", "e/1="]  # replays kept


def test_empty_page_is_valid() -> None:
    """A page may have an empty value list."""
    assert decode_delta_page({"@odata.deltaLink": DELTA, "value": []}).items == ()


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"@odata.nextLink": NEXT, "@odata.deltaLink": DELTA, "value": []}, "both"),
        ({"value": []}, "neither"),
        ({"@odata.deltaLink": DELTA}, "no `value` list"),
        ({"@odata.deltaLink": DELTA, "value": {}}, "no `value` list"),
        ({"@odata.deltaLink": 5, "value": []}, "absolute URL"),
        ({"@odata.nextLink": "/relative", "value": []}, "absolute URL"),
        ({"@odata.deltaLink": DELTA, "value": [{"subject": "x"}]}, "value[0] has no string id"),
        ({"@odata.deltaLink": DELTA, "value": ["e"]}, "value[0] is not a JSON object"),
        ([], "not a JSON object"),
    ],
)
def test_malformed_pages(payload: Any, problem: str) -> None:
    """Malformed pages raise GraphError(200, MalformedDeltaPage) saying what is wrong."""
    with pytest.raises(GraphError) as info:
        decode_delta_page(payload)
    assert (info.value.status, info.value.graph_code) == (200, "MalformedDeltaPage")
    assert problem in info.value.message
