"""The intake's pure rules under hostile input: item cap, nesting depth, tenant and field checks
before any I/O, and the subscription cache's positive and negative windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.core.graph import user_lookup
from shared.core.intake import NEGATIVE_TTL_SECONDS, POSITIVE_TTL_SECONDS, SubscriptionCache
from shared.core.model import SubscriptionRecord
from shared.core.notifications import (
    MAX_NOTIFICATION_ITEMS,
    parse_change_notifications,
    parse_lifecycle_notifications,
)
from shared.errors import InputError, NotificationRejected

TENANT = "7a1b2c3d-0000-4000-8000-000000000001"


def _item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "subscriptionId": "sub-1",
        "clientState": "state-1",
        "tenantId": TENANT,
        "changeType": "updated",
        "resource": "Users/u1/Events/e1",
    }
    return item | overrides


def _body(*items: Any) -> bytes:
    return json.dumps({"value": list(items)}).encode()


def test_more_items_than_the_cap_are_refused_naming_the_cap() -> None:
    """A POST of more than MAX_NOTIFICATION_ITEMS items is refused as a whole (400, no I/O)."""
    with pytest.raises(NotificationRejected, match=str(MAX_NOTIFICATION_ITEMS)):
        parse_change_notifications(_body(*[_item()] * (MAX_NOTIFICATION_ITEMS + 1)))
    assert len(parse_change_notifications(_body(*[_item()] * MAX_NOTIFICATION_ITEMS))[0]) == 1000


@pytest.mark.parametrize("depth", [2_000, 100_000])
@pytest.mark.parametrize("parse", [parse_change_notifications, parse_lifecycle_notifications])
def test_deep_nesting_is_an_input_error_not_a_recursion_error(depth: int, parse: Any) -> None:
    """JSON nested thousands deep is a NotificationRejected, never a RecursionError (a 500)."""
    for body in (b"[" * depth + b"]" * depth, b'{"value":[' + b"[" * depth + b"]" * depth + b"]}"):
        with pytest.raises(NotificationRejected):
            parse(body)


def test_items_of_other_tenants_are_skipped_before_any_io() -> None:
    """tenantId must be one of TENANT_IDS: a lone surrogate, a '/' or another tenant is skipped."""
    bodies = [
        b'{"value":[{"subscriptionId":"s","clientState":"c","tenantId":"\\ud800",'
        b'"changeType":"updated","resource":"r"}]}',
        _body(_item(tenantId=f"{TENANT}/x")),
        _body(_item(tenantId="00000000-0000-0000-0000-000000000000")),
    ]
    for body in bodies:
        items, skipped = parse_change_notifications(body, tenants=(TENANT,))
        assert items == []
        assert len(skipped) == 1
        assert "tenantId" in skipped[0]
    items, _ = parse_change_notifications(_body(_item(tenantId=TENANT.upper())), tenants=(TENANT,))
    assert len(items) == 1


def test_fields_that_storage_or_hashing_cannot_take_are_skipped() -> None:
    """A lone surrogate in any field, or an over-long subscriptionId, is skipped with a reason."""
    surrogate = (
        b'{"value":[{"subscriptionId":"s","clientState":"\\udfff","tenantId":"'
        + TENANT.encode()
        + b'","changeType":"updated","resource":"r"}]}'
    )
    for body in (surrogate, _body(_item(subscriptionId="x" * 300))):
        items, skipped = parse_change_notifications(body, tenants=(TENANT,))
        assert items == []
        assert len(skipped) == 1


def _record(sub: str = "sub-1") -> SubscriptionRecord:
    return SubscriptionRecord(
        sub, TENANT, "u1", "users/u1/events", datetime(2030, 1, 1, tzinfo=UTC), "00"
    )


def test_cache_holds_positive_and_negative_answers_for_their_windows() -> None:
    """A found subscription is answered from memory for POSITIVE_TTL, a missing one for
    NEGATIVE_TTL; after that the store is asked again, so a subscription created after a
    negative answer is accepted at most NEGATIVE_TTL seconds later."""
    cache = SubscriptionCache()
    key = (TENANT, "sub-1")
    assert cache.lookup(key, now=0.0) is SubscriptionCache.MISS
    cache.store(key, None, now=0.0)
    assert cache.lookup(key, now=NEGATIVE_TTL_SECONDS - 0.1) is None
    assert cache.lookup(key, now=NEGATIVE_TTL_SECONDS) is SubscriptionCache.MISS
    cache.store(key, _record(), now=10.0)
    assert cache.lookup(key, now=10.0 + POSITIVE_TTL_SECONDS - 0.1) == _record()
    assert cache.lookup(key, now=10.0 + POSITIVE_TTL_SECONDS) is SubscriptionCache.MISS
    assert NEGATIVE_TTL_SECONDS <= 10
    assert 30 <= POSITIVE_TTL_SECONDS <= 60


def test_cache_size_is_bounded_whatever_ids_an_attacker_sends() -> None:
    """Negative entries for attacker-chosen ids never grow the cache past its bound."""
    cache = SubscriptionCache(max_entries=100)
    for n in range(1_000):
        cache.store((TENANT, f"forged-{n}"), None, now=0.0)
    assert len(cache) == 100


@pytest.mark.parametrize("user", [".", "..", " .. "])
def test_dot_segments_never_reach_graph(user: str) -> None:
    """A user '.' or '..' would be normalised by Graph into another path: refused."""
    with pytest.raises(InputError):
        user_lookup(TENANT, user)
    assert user_lookup(TENANT, "..a@contoso.example").path.startswith("users/")
