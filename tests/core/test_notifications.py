"""Notification decoding, the validation token, and the clientState secret."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from shared.core.model import ChangeNotification, LifecycleNotification
from shared.core.notifications import (
    MAX_NOTIFICATION_BYTES,
    client_state_digest,
    client_state_matches,
    new_client_state,
    parse_change_notifications,
    parse_lifecycle_notifications,
    parse_validation_token,
    user_id_from_resource,
)
from shared.errors import InputError, NotificationRejected

TENANT = "7A1B2C3D-0000-4000-8000-000000000001"
USER = "0f8e7d6c-1111-4111-8111-000000000002"
EVENT_ID = "AAMkAGI2/TQ3=+"


def _item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "subscriptionId": "sub-1",
        "subscriptionExpirationDateTime": "2026-11-27T09:00:00Z",
        "clientState": "s3cr3t-state",
        "changeType": "updated",
        "resource": f"Users/{USER}/Events/{EVENT_ID}",
        "tenantId": TENANT,
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": f"Users/{USER}/Events/{EVENT_ID}",
            "@odata.etag": 'W/"abc"',
            "id": EVENT_ID,
        },
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not ...}


def _body(*items: Any) -> bytes:
    return json.dumps({"value": list(items)}).encode()


def test_change_notification_parsed() -> None:
    """A documented notification becomes a ChangeNotification with the event id."""
    items, skipped = parse_change_notifications(_body(_item()))
    assert skipped == []
    assert items == [
        ChangeNotification(
            subscription_id="sub-1",
            tenant_id=TENANT.lower(),
            change_type="updated",
            resource=f"Users/{USER}/Events/{EVENT_ID}",
            client_state="s3cr3t-state",
            event_id=EVENT_ID,
        )
    ]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (_item(subscriptionId=...), "missing subscriptionId"),
        (_item(clientState=...), "missing clientState"),
        (_item(clientState=None), "missing clientState"),
        (_item(tenantId=...), "missing tenantId"),
        (_item(changeType=...), "missing changeType"),
        (_item(resource=...), "missing resource"),
        (_item(changeType=3), "changeType must be a non-empty string"),
        (_item(subscriptionId=""), "subscriptionId must be a non-empty string"),
        (_item(resourceData=[1]), "resourceData must be a JSON object"),
        (_item(resourceData={"id": 5}), "resourceData.id must be a string"),
        ("just text", "not a JSON object"),
    ],
)
def test_bad_items_skipped_with_reason(item: Any, reason: str) -> None:
    """A bad item is skipped with a reason naming the field; its valid neighbour is kept."""
    items, skipped = parse_change_notifications(_body(item, _item(subscriptionId="sub-2")))
    assert [i.subscription_id for i in items] == ["sub-2"]
    assert skipped == [f"item 0: {reason}"]


def test_reasons_never_quote_the_client_state() -> None:
    """Skip reasons name fields, never the clientState value."""
    _, skipped = parse_change_notifications(_body(_item(tenantId=None, changeType=None)))
    assert skipped == ["item 0: missing tenantId, missing changeType"]
    assert "s3cr3t" not in " ".join(skipped)


def test_resource_data_is_optional() -> None:
    """Without resourceData the item is kept with no event id."""
    items, _ = parse_change_notifications(_body(_item(resourceData=...)))
    assert items[0].event_id is None


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"x" * (MAX_NOTIFICATION_BYTES + 1), "over the 1048576 byte limit"),
        (b"not json", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b'{"value": NaN}', "not UTF-8 JSON"),
        (b"[]", '{"value": [...]}'),
        (b'{"value": {}}', '{"value": [...]}'),
        (b'{"values": []}', '{"value": [...]}'),
    ],
)
def test_bad_bodies_rejected(body: bytes, match: str) -> None:
    """Too large, not JSON, or not {"value": [...]} is NotificationRejected."""
    with pytest.raises(NotificationRejected, match=match.replace("[", r"\[").replace("]", r"\]")):
        parse_change_notifications(body)


def test_body_at_the_limit_is_read() -> None:
    """A body of exactly MAX_NOTIFICATION_BYTES is accepted."""
    body = _body(_item())
    padded = body[:-1] + b" " * (MAX_NOTIFICATION_BYTES - len(body)) + b"}"
    assert len(padded) == MAX_NOTIFICATION_BYTES
    assert len(parse_change_notifications(padded)[0]) == 1


def test_lifecycle_notifications_parsed_and_checked() -> None:
    """Lifecycle items need subscriptionId, clientState, tenantId and lifecycleEvent."""
    good = {
        "subscriptionId": "sub-1",
        "subscriptionExpirationDateTime": "2026-11-27T09:00:00Z",
        "tenantId": TENANT,
        "clientState": "s3cr3t-state",
        "lifecycleEvent": "reauthorizationRequired",
    }
    bad = {k: v for k, v in good.items() if k != "lifecycleEvent"}
    items, skipped = parse_lifecycle_notifications(_body(bad, good))
    assert items == [
        LifecycleNotification("sub-1", TENANT.lower(), "reauthorizationRequired", "s3cr3t-state")
    ]
    assert skipped == ["item 0: missing lifecycleEvent"]
    with pytest.raises(NotificationRejected):
        parse_lifecycle_notifications(b"{}")


@pytest.mark.parametrize(
    "token",
    [
        "Validation: Testing client application reachability for subscription Request-Id: "
        "25b4e3e8-5b3b-4b5e-9b4d-5ad46ed2a8b0",
        "a+b/c=d&e;f:g",
        "x" * 1024,
        "é中",
    ],
)
def test_validation_token_echoed(token: str) -> None:
    """Plain-text tokens up to 1,024 characters come back unchanged."""
    assert parse_validation_token(token) == token


@pytest.mark.parametrize(
    "token", ["", "x" * 1025, "<script>", "a>b", "line\nbreak", "nul\x00", "\x85", "a\u2028b"]
)
def test_unsafe_validation_tokens_rejected(token: str) -> None:
    """Empty, too long, markup or control characters: NotificationRejected."""
    with pytest.raises(NotificationRejected, match="validationToken"):
        parse_validation_token(token)


def test_client_state_digest_and_match() -> None:
    """The digest is SHA-256 hex; only the same clientState matches it."""
    state = new_client_state(secrets.token_bytes(32))
    digest = client_state_digest(state)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert client_state_matches(state, digest)
    assert client_state_matches(state, digest.upper())
    assert not client_state_matches(state + "x", digest)
    assert not client_state_matches(state, "0" * 64)
    assert client_state_digest("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_new_client_state_shape() -> None:
    """32 random bytes give 43 URL-safe characters, within Graph's 128; too few bytes refused."""
    state = new_client_state(bytes(range(32)))
    assert len(state) == 43
    assert set(state) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert new_client_state(bytes(range(32))) == state
    assert len(new_client_state(b"\xff" * 96)) == 128
    with pytest.raises(InputError, match="at least 16"):
        new_client_state(b"short")
    with pytest.raises(InputError, match="over Graph's 128"):
        new_client_state(b"\x00" * 97)


@pytest.mark.parametrize(
    ("resource", "user"),
    [
        (f"Users/{USER}/Events/{EVENT_ID}", USER),
        (f"users/{USER.upper()}/events/{EVENT_ID}", USER),
        (f"/USERS/{USER}/EVENTS", USER),
        (f"Users('{USER}')/Events('{EVENT_ID}')", USER),
        (f"users/{USER}", USER),
        ("me/events", None),
        ("Groups/x/Events/y", None),
        ("Users//Events/e", None),
        ("", None),
    ],
)
def test_user_id_from_resource(resource: str, user: str | None) -> None:
    """The user id comes out of Users/{id}/... in any case, lower-cased; others give None."""
    assert user_id_from_resource(resource) == user
