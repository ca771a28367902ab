"""Pure: Graph's answers as typed values, so services never index raw Graph JSON. Each decoder
takes the parsed JSON of a 2xx answer and raises GraphProtocolError when a field we rely on is
missing (nothing is guessed); the fields kept are the ones the product uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.core.graph import ABSOLUTE
from shared.core.times import parse_iso
from shared.errors import GraphProtocolError


@dataclass(frozen=True)
class GraphUser:
    """https://learn.microsoft.com/graph/api/resources/user (the fields we $select)."""

    id: str
    user_principal_name: str
    mail: str


@dataclass(frozen=True)
class GraphSubscription:
    """https://learn.microsoft.com/graph/api/resources/subscription (the fields we use)."""

    id: str
    resource: str
    notification_url: str
    expiration: datetime | None


@dataclass(frozen=True)
class SubscriptionPage:
    items: tuple[GraphSubscription, ...]
    next_link: str | None


def _unexpected(what: str, problem: str) -> GraphProtocolError:
    return GraphProtocolError(
        f"Graph returned an unexpected {what}: {problem}; nothing was changed, report it",
        status=200,
        graph_code="UnexpectedPayload",
    )


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    return value if isinstance(value, str) else ""


def decode_user(payload: Any) -> GraphUser:
    if not isinstance(payload, dict) or not _text(payload, "id"):
        raise _unexpected("user", "it has no string id")
    return GraphUser(payload["id"], _text(payload, "userPrincipalName"), _text(payload, "mail"))


def decode_subscription(payload: Any) -> GraphSubscription:
    if not isinstance(payload, dict) or not _text(payload, "id"):
        raise _unexpected("subscription", "it has no string id")
    return GraphSubscription(
        id=payload["id"],
        resource=_text(payload, "resource"),
        notification_url=_text(payload, "notificationUrl"),
        expiration=parse_iso(payload.get("expirationDateTime")),
    )


def decode_subscription_page(payload: Any) -> SubscriptionPage:
    """One page of GET /subscriptions: `value`, and @odata.nextLink while more follow."""
    if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
        raise _unexpected("subscription list page", "it has no `value` list")
    link = payload.get("@odata.nextLink")
    if link is not None and not (isinstance(link, str) and link.startswith(ABSOLUTE)):
        raise _unexpected("subscription list page", f"@odata.nextLink is {link!r}")
    return SubscriptionPage(tuple(decode_subscription(s) for s in payload["value"]), link or None)


@dataclass(frozen=True)
class EventPage:
    """One page of an event list (instances, a filtered /events): the events as Graph sent
    them (normalised later by core.events), and @odata.nextLink while more follow."""

    items: tuple[dict[str, Any], ...]
    next_link: str | None


def decode_event(payload: Any) -> dict[str, Any]:
    """An event answer: a JSON object with a string id."""
    if not isinstance(payload, dict) or not _text(payload, "id"):
        raise _unexpected("event", "it has no string id")
    return payload


def decode_event_page(payload: Any) -> EventPage:
    if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
        raise _unexpected("event list page", "it has no `value` list")
    link = payload.get("@odata.nextLink")
    if link is not None and not (isinstance(link, str) and link.startswith(ABSOLUTE)):
        raise _unexpected("event list page", f"@odata.nextLink is {link!r}")
    return EventPage(tuple(decode_event(e) for e in payload["value"]), link or None)
