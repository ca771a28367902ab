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
from collections.abc import Collection
from typing import Any

from shared.core.model import ChangeNotification, LifecycleNotification
from shared.errors import InputError, NotificationRejected

MAX_NOTIFICATION_BYTES = 1_048_576
# Graph batches at most a few hundred items per POST; more is not Graph, and each item costs work.
MAX_NOTIFICATION_ITEMS = 1_000
MAX_ID_CHARS = 128  # subscription ids are GUIDs; anything longer is not Graph's
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
    except RecursionError:  # nesting deeper than the interpreter's limit: not Graph's shape
        raise NotificationRejected(
            f"{what} body is nested too deeply to be a notification"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("value"), list):
        raise NotificationRejected(f'{what} body must be a JSON object {{"value": [...]}}')
    value: list[Any] = doc["value"]
    if len(value) > MAX_NOTIFICATION_ITEMS:
        raise NotificationRejected(
            f"{what} body holds {len(value)} items, over the limit of {MAX_NOTIFICATION_ITEMS} "
            "per POST"
        )
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
        elif any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            bad.append(f"{name} holds a lone surrogate")  # storage and hashing cannot take it
        elif name == "subscriptionId" and len(value) > MAX_ID_CHARS:
            bad.append(f"subscriptionId is over {MAX_ID_CHARS} characters")
        else:
            found[name] = value
    return found, (f"item {index}: {', '.join(bad)}" if bad else None)


def _tenant_reason(
    found: dict[str, str], index: int, tenants: Collection[str] | None
) -> str | None:
    """Why an item's tenant is not ours (checked before any I/O), or None."""
    if tenants is None or found["tenantId"].lower() in {t.lower() for t in tenants}:
        return None
    return f"item {index}: tenantId is not one of this app's tenants (TENANT_IDS)"


def parse_change_notifications(
    body: bytes, tenants: Collection[str] | None = None
) -> tuple[list[ChangeNotification], list[str]]:
    """The structurally valid change notifications of a POST body, and reasons for skipped ones.
    With `tenants`, an item of any other tenant is skipped too."""
    items: list[ChangeNotification] = []
    skipped: list[str] = []
    names = ("subscriptionId", "clientState", "tenantId", "changeType", "resource")
    for index, raw in enumerate(_load_value(body, "change notification")):
        found, reason = _strings(raw, index, names)
        event_id: str | None = None
        if reason is None:
            reason = _tenant_reason(found, index, tenants)
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


def parse_lifecycle_notifications(
    body: bytes, tenants: Collection[str] | None = None
) -> tuple[list[LifecycleNotification], list[str]]:
    """The structurally valid lifecycle notifications of a POST body, and reasons for skipped.
    With `tenants`, an item of any other tenant is skipped too."""
    items: list[LifecycleNotification] = []
    skipped: list[str] = []
    names = ("subscriptionId", "clientState", "tenantId", "lifecycleEvent")
    for index, raw in enumerate(_load_value(body, "lifecycle notification")):
        found, reason = _strings(raw, index, names)
        if reason is None:
            reason = _tenant_reason(found, index, tenants)
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
