"""The admin API's subscriptions: `GET /api/subscriptions` lists the stored ones with expiry and
state (optionally side by side with Graph's own list: one list call per tenant, well under
Graph's 25 per 20 s), `POST /api/subscriptions/renew` renews them now through
services.subscriptions (paced per tenant like the timer; one reauthorized within 10 minutes is
skipped, as Graph would refuse the PATCH with 409).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.compose import Services
from shared.core.model import SubscriptionRecord
from shared.core.renewals import REAUTHORIZE_GAP, plan_expiry
from shared.core.times import iso_utc
from shared.errors import GraphError, InputError, TokenError
from shared.services import subscriptions
from shared.services.mailboxes import find

RENEW_DUE = timedelta(days=2)  # the renewal timer's window (core.renewals.plan_renewals)


def _tenant(svc: Services, tenant_id: str) -> str:
    tenant = tenant_id.strip().lower()
    if tenant not in {t.lower() for t in svc.settings.tenant_ids}:
        raise InputError(f"tenant {tenant_id!r} is not one of this app's tenants (TENANT_IDS)")
    return tenant


def _state(sub: SubscriptionRecord, now: datetime) -> str:
    if sub.expiration <= now:
        return "expired"
    return "renewDue" if sub.expiration <= now + RENEW_DUE else "active"


def _when(value: datetime | None) -> str | None:
    return iso_utc(value) if value else None


def _view(sub: SubscriptionRecord, now: datetime, upns: Mapping[Any, str]) -> dict[str, Any]:
    return {
        "subscriptionId": sub.subscription_id,
        "tenantId": sub.tenant_id,
        "userId": sub.user_id,
        "calendar": sub.mailbox.calendar_name,
        "upn": upns.get((sub.tenant_id.lower(), sub.user_id.lower()), ""),
        "resource": sub.resource,
        "expiresOn": iso_utc(sub.expiration),
        "state": _state(sub, now),
        "lastRenewed": _when(sub.last_renewed),
        "lastReauthorized": _when(sub.last_reauthorized),
        "lastLifecycleEvent": sub.last_lifecycle_event or None,
    }


def _selected(svc: Services, tenant: str | None, mailbox: str | None) -> list[SubscriptionRecord]:
    if mailbox and not tenant:
        raise InputError("mailbox needs tenant: give the mailbox's tenant id too")
    subs = svc.state.list_subscriptions()
    if tenant:
        wanted = _tenant(svc, tenant)
        subs = [s for s in subs if s.tenant_id.lower() == wanted]
        if mailbox:  # a user: all its calendars; user:handle: that calendar's
            key = find(svc, wanted, mailbox).key
            user = key.user_id.lower()
            subs = [s for s in subs if s.user_id.lower() == user]
            if key.calendar:
                subs = [s for s in subs if s.calendar == key.calendar]
    return sorted(subs, key=lambda s: (s.tenant_id, s.user_id, s.subscription_id))


def _upns(svc: Services) -> dict[tuple[str, str], str]:
    return {
        (m.key.tenant_id.lower(), m.key.user_id.lower()): m.upn for m in svc.state.list_mailboxes()
    }


def _flag(value: str | None, name: str) -> bool:
    text = (value or "").strip().lower()
    if text in ("", "false", "0", "no"):
        return False
    if text in ("true", "1", "yes"):
        return True
    raise InputError(f"query parameter {name}={text[:16]!r} must be true or false")


def list_view(svc: Services, params: Mapping[str, str]) -> dict[str, Any]:
    """Stored subscriptions (filtered by ?tenant=&mailbox=), each with its state; with
    ?graph=true also what Graph lists for this app in those tenants."""
    tenant, mailbox = params.get("tenant") or None, params.get("mailbox") or None
    compare = _flag(params.get("graph"), "graph")
    now = svc.now()
    subs = _selected(svc, tenant, mailbox)
    value = [_view(s, now, _upns(svc)) for s in subs]
    body: dict[str, Any] = {"count": len(value), "value": value}
    if not compare:
        return body
    tenants = [_tenant(svc, tenant)] if tenant else [t.lower() for t in svc.settings.tenant_ids]
    seen: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for tenant_id in tenants:
        try:
            for found in subscriptions.list_graph_subscriptions(svc, tenant_id):
                seen[found.id] = {
                    "subscriptionId": found.id,
                    "tenantId": tenant_id,
                    "resource": found.resource,
                    "expiresOn": _when(found.expiration),
                    "ours": found.notification_url == svc.settings.notification_url,
                }
        except (GraphError, TokenError) as exc:
            errors[tenant_id] = exc.message
    for view in value:
        in_graph = seen.pop(view["subscriptionId"], None)
        if view["tenantId"].lower() in errors:
            view["inGraph"], view["graphExpiresOn"] = None, None
        else:
            view["inGraph"] = in_graph is not None
            view["graphExpiresOn"] = in_graph["expiresOn"] if in_graph else None
    if mailbox:  # Graph's other subscriptions are of other mailboxes
        seen.clear()
    body["graphOnly"] = sorted(seen.values(), key=lambda v: (v["tenantId"], v["subscriptionId"]))
    body["graphErrors"] = errors
    return body


def renew_now(svc: Services, body: Any) -> dict[str, Any]:
    """Renew the selected subscriptions now ({tenant?, mailbox?}); each one's outcome."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise InputError("the body must be a JSON object: {} or {tenant, mailbox}")
    for name in ("tenant", "mailbox"):
        if body.get(name) is not None and not isinstance(body.get(name), str):
            raise InputError(f"{name} must be a string")
    subs = _selected(svc, body.get("tenant") or None, body.get("mailbox") or None)
    counts = {"renewed": 0, "recreated": 0, "failed": 0, "deferred": 0, "skipped": 0}
    value = []
    for sub in subs:
        now = svc.now()
        if sub.last_reauthorized is not None and now - sub.last_reauthorized < REAUTHORIZE_GAP:
            result, expiry = "skipped", None  # Graph refuses a PATCH this soon after
        else:
            result, expiry = subscriptions.renew_one(svc, sub, plan_expiry(now, svc.rng))
        counts[result] += 1
        value.append(
            {
                "subscriptionId": sub.subscription_id,
                "tenantId": sub.tenant_id,
                "userId": sub.user_id,
                "calendar": sub.mailbox.calendar_name,
                "result": result,
                "expiresOn": _when(expiry),
            }
        )
    return counts | {"value": value}
