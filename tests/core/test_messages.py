"""A sync request's message validated field by field: every mistyped field named, none dropped."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.messages import decode_sync_request
from shared.core.model import SyncRequest, Trigger
from shared.errors import InputError

BASE: dict[str, Any] = {"tenant_id": "t", "user_id": "u", "trigger": "notification"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, SyncRequest("t", "u", Trigger.NOTIFICATION)),
        (
            {"full": True, "requested_at": "x"},
            SyncRequest("t", "u", Trigger.NOTIFICATION, True, "x"),
        ),
        ({"attempt": 3}, SyncRequest("t", "u", Trigger.NOTIFICATION, attempt=3)),
        (
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            SyncRequest(
                "t",
                "u",
                Trigger.NOTIFICATION,
                traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ),
        ({"traceparent": ""}, SyncRequest("t", "u", Trigger.NOTIFICATION)),
        ({"newer_field": [1]}, SyncRequest("t", "u", Trigger.NOTIFICATION)),  # unknown: ignored
        (
            {"trigger": "lifecycle", "lifecycle_event": "missed", "subscription_id": "s"},
            SyncRequest("t", "u", Trigger.LIFECYCLE, lifecycle_event="missed", subscription_id="s"),
        ),
    ],
)
def test_well_typed_messages_decode(changes: dict[str, Any], expected: SyncRequest) -> None:
    """Each field of the right type lands in the request; unknown fields are ignored."""
    assert decode_sync_request(BASE | changes) == expected


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"trigger": None}, "trigger must be a string, got null"),
        ({"trigger": 5}, "trigger must be a string, got int"),
        ({"trigger": "whim"}, "unknown trigger 'whim'"),
        ({"requested_at": 123}, "requested_at must be str, got int"),
        ({"full": "no"}, "full must be bool, got str"),
        ({"full": 1}, "full must be bool, got int"),
        ({"lifecycle_event": ["missed"]}, "lifecycle_event must be str, got list"),
        ({"subscription_id": 7}, "subscription_id must be str, got int"),
        ({"attempt": "2"}, "attempt must be int, got str"),
        ({"attempt": True}, "attempt must be int, got bool"),
        ({"attempt": -1}, "attempt must be 0 or more"),
        ({"tenant_id": 1}, "tenant_id must be a string, got int"),
        ({"traceparent": 1}, "traceparent must be str, got int"),
        ({"traceparent": "00-abc-def-01"}, "traceparent: not a W3C traceparent"),
    ],
)
def test_each_mistyped_field_is_named(changes: dict[str, Any], names: str) -> None:
    """A field of the wrong type is an InputError naming the field, never silently dropped."""
    with pytest.raises(InputError, match=names):
        decode_sync_request(BASE | changes)


def test_a_missing_trigger_is_named() -> None:
    """No trigger (and no legacy reason) is an error naming the trigger."""
    with pytest.raises(InputError, match="trigger is missing"):
        decode_sync_request({"tenant_id": "t", "user_id": "u"})


def test_every_problem_is_named_at_once() -> None:
    """Several wrong fields are all listed in one error."""
    with pytest.raises(InputError) as caught:
        decode_sync_request({"user_id": 2, "trigger": 5, "full": "no"})
    for name in ("tenant_id", "user_id", "trigger", "full"):
        assert name in caught.value.message


@pytest.mark.parametrize("data", [[1], "text", None, 3])
def test_not_an_object(data: Any) -> None:
    """Anything but a JSON object is refused."""
    with pytest.raises(InputError, match="JSON object"):
        decode_sync_request(data)
