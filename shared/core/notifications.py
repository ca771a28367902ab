"""Pure: decoding Graph change and lifecycle notifications, and the clientState secret.

Rule: a notification is a hint, never state. This module checks shape only: the body size, that
it is `{"value": [...]}` JSON, and that each item carries the fields the intake needs, as strings.
Bad items are skipped with a reason (one bad item must not cost its neighbours: Graph would retry
the whole POST for hours on a 5xx). Whether an item's clientState and subscription are known is
the service's question (`client_state_matches` against the stored digest).
Shapes: learn.microsoft.com/graph/change-notifications-delivery-webhooks and
/graph/change-notifications-lifecycle-events. Reasons never quote clientState values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from typing import Any

from shared.core.model import ChangeNotification, LifecycleNotification
from shared.errors import InputError, NotificationRejected

MAX_NOTIFICATION_BYTES = 1_048_576
MAX_VALIDATION_TOKEN_CHARS = 1_024
MAX_CLIENT_STATE_CHARS = 128  # Graph's limit on clientState (api/resources/subscription)
_MIN_CLIENT_STATE_BYTES = 16

_RESOURCE_RE = re.compile(r"^/?users(?:/([^/()']+)|\('([^/()']+)'\))(?:/|$)", re.IGNORECASE)


def parse_validation_token(raw: str) -> str:
    """The token to echo as text/plain (already URL-decoded by the host); rejects unsafe text."""
    if not raw:
        raise NotificationRejected("validationToken is empty: nothing to echo")
    if len(raw) > MAX_VALIDATION_TOKEN_CHARS:
        raise NotificationRejected(
            f"validationToken is {len(raw)} characters, over {MAX_VALIDATION_TOKEN_CHARS}: "
            "refusing to echo it"
        )
    for ch in raw:
        # Cc: control characters; Cs: lone surrogates; Zl/Zp: line and paragraph separators.
        if ch in "<>" or unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"}:
            raise NotificationRejected(
                f"validationToken holds {ch!r} (U+{ord(ch):04X}): only plain text is echoed"
            )
    return raw


def _load_value(body: bytes, what: str) -> list[Any]:
    if len(body) > MAX_NOTIFICATION_BYTES:
        raise NotificationRejected(
            f"{what} body is {len(body)} bytes, over the {MAX_NOTIFICATION_BYTES} byte limit"
        )
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotificationRejected(f"{what} body is not UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        raise NotificationRejected(f'{what} body must be a JSON object {{"value": [...]}}')
    value: list[Any] = doc["value"]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strings(item: Any, index: int, names: tuple[str, ...]) -> tuple[dict[str, str], str | None]:
    """The named string fields of `item`, or a reason naming every missing or mistyped one."""
    if not isinstance(item, dict):
        return {}, f"item {index}: not a JSON object"
    found: dict[str, str] = {}
    bad: list[str] = []
    for name in names:
        value = item.get(name)
        if name not in item or value is None:
            bad.append(f"missing {name}")
        elif not isinstance(value, str) or not value:
            bad.append(f"{name} must be a non-empty string")
        else:
            found[name] = value
    return found, (f"item {index}: {', '.join(bad)}" if bad else None)


def parse_change_notifications(body: bytes) -> tuple[list[ChangeNotification], list[str]]:
    """The structurally valid change notifications of a POST body, and reasons for skipped ones."""
    items: list[ChangeNotification] = []
    skipped: list[str] = []
    names = ("subscriptionId", "clientState", "tenantId", "changeType", "resource")
    for index, raw in enumerate(_load_value(body, "change notification")):
        found, reason = _strings(raw, index, names)
        event_id: str | None = None
        if reason is None:
            data = raw.get("resourceData")
            if data is not None and not isinstance(data, dict):
                reason = f"item {index}: resourceData must be a JSON object"
            elif isinstance(data, dict) and data.get("id") is not None:
                if not isinstance(data["id"], str):
                    reason = f"item {index}: resourceData.id must be a string"
                else:
                    event_id = data["id"]
        if reason is not None:
            skipped.append(reason)
            continue
        items.append(
            ChangeNotification(
                subscription_id=found["subscriptionId"],
                tenant_id=found["tenantId"].lower(),
                change_type=found["changeType"],
                resource=found["resource"],
                client_state=found["clientState"],
                event_id=event_id,
            )
        )
    return items, skipped


def parse_lifecycle_notifications(body: bytes) -> tuple[list[LifecycleNotification], list[str]]:
    """The structurally valid lifecycle notifications of a POST body, and reasons for skipped."""
    items: list[LifecycleNotification] = []
    skipped: list[str] = []
    names = ("subscriptionId", "clientState", "tenantId", "lifecycleEvent")
    for index, raw in enumerate(_load_value(body, "lifecycle notification")):
        found, reason = _strings(raw, index, names)
        if reason is not None:
            skipped.append(reason)
            continue
        items.append(
            LifecycleNotification(
                subscription_id=found["subscriptionId"],
                tenant_id=found["tenantId"].lower(),
                lifecycle_event=found["lifecycleEvent"],
                client_state=found["clientState"],
            )
        )
    return items, skipped


def client_state_digest(client_state: str) -> str:
    """SHA-256 hex of a clientState: what the subscriptions table stores instead of the secret."""
    return hashlib.sha256(client_state.encode("utf-8")).hexdigest()


def client_state_matches(client_state: str, digest: str) -> bool:
    """Whether `client_state` hashes to the stored `digest` (constant-time comparison)."""
    return hmac.compare_digest(client_state_digest(client_state), digest.lower())


def new_client_state(rng_bytes: bytes) -> str:
    """A clientState from caller-supplied random bytes (pass secrets.token_bytes(32))."""
    if len(rng_bytes) < _MIN_CLIENT_STATE_BYTES:
        raise InputError(
            f"a clientState needs at least {_MIN_CLIENT_STATE_BYTES} random bytes, got "
            f"{len(rng_bytes)}: pass secrets.token_bytes(32)"
        )
    state = base64.urlsafe_b64encode(rng_bytes).decode("ascii").rstrip("=")
    if len(state) > MAX_CLIENT_STATE_CHARS:
        raise InputError(
            f"{len(rng_bytes)} random bytes make a clientState of {len(state)} characters, over "
            f"Graph's {MAX_CLIENT_STATE_CHARS}: pass 32 bytes"
        )
    return state


def user_id_from_resource(resource: str) -> str | None:
    """The user id (lower case) in "Users/{id}/Events/{eid}" or "Users('{id}')/...", else None."""
    match = _RESOURCE_RE.match(resource)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).lower()
