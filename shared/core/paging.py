"""Pure: the one follower of Graph's paged answers, over any `send` (the Graph port).

A page is decoded by the caller's decoder; while it carries a next link, the same request is sent
again to that link (the link carries the query; headers such as Prefer are sent again). Delta
pages end on @odata.deltaLink (`decode_delta_page` enforces exactly one link per page), lists end
when @odata.nextLink is absent. A chain longer than MAX_PAGES is a bug, not a calendar: it raises
GraphProtocolError, which is not retried.

https://learn.microsoft.com/graph/paging
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from shared.core.delta import decode_delta_page
from shared.core.graph import GraphRequest
from shared.core.graph_types import GraphSubscription, decode_event_page, decode_subscription_page
from shared.core.model import DeltaPageData
from shared.errors import GraphProtocolError

MAX_PAGES = 10_000  # a runaway nextLink chain is a bug, not a calendar

Send = Callable[[GraphRequest], Any]


class Page(Protocol):
    @property
    def next_link(self) -> str | None: ...


P = TypeVar("P", bound=Page)


def iter_pages(
    first: GraphRequest, send: Send, decode: Callable[[Any], P], *, max_pages: int = MAX_PAGES
) -> Iterator[P]:
    """Each decoded page, from `first` along next links; at most `max_pages` requests."""
    request: GraphRequest | None = first
    sent = 0
    while request is not None:
        if sent == max_pages:
            whose = f" of {first.mailbox}" if first.mailbox else ""
            raise GraphProtocolError(
                f"Graph paging of {first.describe()}{whose} exceeded {max_pages} pages: a "
                "runaway next-link chain; the cursor was not advanced, report it",
                status=None,
                graph_code="RunawayPaging",
            )
        sent += 1
        page = decode(send(request))
        yield page
        request = request.follow(page.next_link) if page.next_link else None


def _delta_page(payload: Any) -> DeltaPageData:
    return decode_delta_page(payload or {})  # an empty 2xx is malformed too: no `value` list


def iter_delta_pages(
    first: GraphRequest, send: Send, *, max_pages: int = MAX_PAGES
) -> Iterator[DeltaPageData]:
    """calendarView/delta pages; the last one carries the delta link (and no next link)."""
    return iter_pages(
        first, send, lambda payload: decode_delta_page(payload or {}), max_pages=max_pages
    )


def iter_subscriptions(
    first: GraphRequest, send: Send, *, max_pages: int = MAX_PAGES
) -> Iterator[GraphSubscription]:
    """Every subscription of a GET /subscriptions list, across its pages."""
    for page in iter_pages(first, send, decode_subscription_page, max_pages=max_pages):
        yield from page.items


def iter_events(
    first: GraphRequest, send: Send, *, max_pages: int = MAX_PAGES
) -> Iterator[dict[str, Any]]:
    """Every event of an event list (a series' instances, a filtered /events), across pages."""
    for page in iter_pages(first, send, decode_event_page, max_pages=max_pages):
        yield from page.items
