"""HTTP handlers of `/subscriptions` (POST, GET, GET list, PATCH, DELETE, /reauthorize).

Rule: each handler paces first (throttling-limits#subscription-service-limits: writes per app
per tenant, reauthorize and list per tenant), then checks the body field by field with a 400
that names the field, then asks `Subscriptions` (the state owner) to act. Sources:
api/subscription-post-subscriptions, api/subscription-update, api/subscription-delete,
api/subscription-reauthorize, api/subscription-list.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from graphsim.api.calls import GraphResult
from graphsim.api.events import immutable_ids
from graphsim.api.pipeline import ANY_APP, READ, Ctx, access_denied, check_query, route
from graphsim.errors import GraphRequestError
from graphsim.model.calendar.timezones import parse_instant
from graphsim.model.subscriptions import CHANGE_TYPES, RESOURCE

_CREATE_FIELDS = {
    "changeType",
    "notificationUrl",
    "resource",
    "expirationDateTime",
    "clientState",
    "lifecycleNotificationUrl",
    "latestSupportedTlsVersion",
    "includeResourceData",
    "encryptionCertificate",
    "encryptionCertificateId",
    "notificationQueryOptions",
    "notificationUrlAppId",
}
_TLS = ("v1_0", "v1_1", "v1_2", "v1_3")


def _bad(message: str, code: str = "BadRequest") -> GraphRequestError:
    return GraphRequestError(400, code, message)


def _https(ctx: Ctx, url: Any, name: str) -> str:
    if not isinstance(url, str) or not url:
        raise _bad(f"{name} must be a URL string.")
    if url.lower().startswith("https://"):
        return url
    if url.lower().startswith("http://") and ctx.sim.knobs.allow_http_notification_urls:
        return url
    raise _bad(
        f"Subscription validation request failed. {name} '{url}' must use the https scheme "
        "(https://learn.microsoft.com/graph/change-notifications-delivery-webhooks)."
    )


def _expiry(ctx: Ctx, value: Any) -> Any:
    if not isinstance(value, str):
        raise _bad(
            "expirationDateTime is required: an ISO 8601 date-time such as 2026-11-21T10:00:00Z."
        )
    try:
        requested = parse_instant(value)
    except ValueError:
        raise _bad(f"expirationDateTime '{value}' is not an ISO 8601 date-time.") from None
    return ctx.sim.subscriptions.clamp_expiry(requested, ctx.now)


@route("POST", "/subscriptions", "subscriptions.create", ANY_APP)
async def create(ctx: Ctx) -> GraphResult:
    sim = ctx.sim
    subs = sim.subscriptions
    check_query(ctx.call, set())
    sim.throttle.pace("write", ctx.tenant_id, ctx.app_id)
    body = ctx.call.json()
    for key in body:
        if key not in _CREATE_FIELDS and not key.startswith("@odata."):
            raise _bad(
                f"Invalid property '{key}': it does not exist on subscription.", "RequestBodyRead"
            )
    for key in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
        if not body.get(key):
            raise _bad(f"The property '{key}' is required to create a subscription.")
    change_type = body["changeType"]
    parts = [p.strip() for p in str(change_type).split(",")]
    if any(p not in CHANGE_TYPES for p in parts) or len(set(parts)) != len(parts):
        raise _bad(
            f"changeType '{change_type}' is invalid: use a comma list of created, updated, deleted."
        )
    resource = str(body["resource"])
    found = RESOURCE.match(resource)
    if found is None:
        if resource.lower().lstrip("/").startswith("me/"):
            raise _bad("'me' is only valid with delegated authentication; use users/{id}/events.")
        raise _bad(
            f"Resource '{resource}' is not supported: subscribe to users/{{id}}/events (a single "
            "event path is rejected).",
            "ExtensionError",
        )
    mailbox = sim.directory.mailbox_for(found.group(1))
    if mailbox.user.tenant_id.lower() != ctx.tenant_id.lower():
        raise access_denied()
    calendar_id = ""
    if found.group(2):
        wanted = unquote(found.group(2))
        try:
            calendar_id = mailbox.calendar(wanted).cal_id
        except GraphRequestError:
            raise GraphRequestError(
                404, "ResourceNotFound", f"Calendar '{wanted}' not found."
            ) from None
    if not READ & ctx.roles:
        raise GraphRequestError(
            403,
            "ExtensionError",
            "Operation: Create; Exception: [Status Code: Forbidden; Reason: The request is not "
            "authorized for this user or application: Calendars.Read is required.]",
        )
    url = _https(ctx, body["notificationUrl"], "notificationUrl")
    lifecycle = body.get("lifecycleNotificationUrl")
    if lifecycle is not None:
        lifecycle = _https(ctx, lifecycle, "lifecycleNotificationUrl")
    client_state = body.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
        raise _bad("clientState must be a string of at most 128 characters.")
    tls = body.get("latestSupportedTlsVersion") or "v1_2"
    if tls not in _TLS:
        raise _bad(f"latestSupportedTlsVersion must be one of {', '.join(_TLS)}.")
    if body.get("includeResourceData"):
        raise _bad(
            "includeResourceData needs encryptionCertificate and encryptionCertificateId; the "
            "simulator does not deliver rich notifications."
        )
    expiration = _expiry(ctx, body["expirationDateTime"])
    change_types = frozenset(parts)
    user_id = mailbox.user.id

    def admit() -> None:
        if subs.count_for_mailbox(user_id) >= sim.knobs.max_subscriptions_per_mailbox:
            raise GraphRequestError(
                403,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: The number of "
                f"subscriptions for mailbox '{mailbox.user.upn}' has reached the limit of "
                f"{sim.knobs.max_subscriptions_per_mailbox}.]",
            )
        if subs.duplicate_of(ctx.app_id, user_id, change_types, calendar_id):
            raise GraphRequestError(
                409,
                "ExtensionError",
                f"Operation: Create; Exception: [Status Code: Conflict; Reason: A subscription "
                f"for resource '{resource}' and changeType '{change_type}' already exists for "
                "this application.]",
            )

    subs.purge_expired()
    admit()
    for target in (url, lifecycle):
        if target is None:
            continue
        ok, why = await sim.delivery.validate(target)
        if not ok:
            sim.counters.note("validation_failures")
            raise _bad(
                "Subscription validation request failed. Notification endpoint must respond "
                f"with 200 OK to validation request ({target}: {why})."
            )
    admit()  # the handshake awaited: look again
    sub = subs.add(
        app_id=ctx.app_id,
        tenant_id=mailbox.user.tenant_id,
        mailbox_id=user_id,
        resource=resource,
        change_type=change_type,
        change_types=change_types,
        notification_url=url,
        lifecycle_url=lifecycle,
        client_state=client_state,
        expiration=expiration,
        latest_tls=tls,
        creator_id=str(ctx.app_id),
        immutable_ids=immutable_ids(ctx),  # its notifications keep the id form it was made with
        calendar_id=calendar_id,
    )
    sim.counters.note("subscriptions_created")
    return GraphResult(201, sub.as_graph(sim.urls.graph_base_url, with_client_state=True))


@route("GET", "/subscriptions", "subscriptions.list", ANY_APP)
async def list_subscriptions(ctx: Ctx) -> GraphResult:
    sim = ctx.sim
    query = check_query(ctx.call, {"$skiptoken"})
    sim.throttle.pace("list", ctx.tenant_id)
    sim.subscriptions.purge_expired()
    mine = sorted(
        (
            s
            for s in sim.subscriptions.by_id.values()
            if s.app_id == ctx.app_id and s.tenant_id.lower() == ctx.tenant_id.lower()
        ),
        key=lambda s: s.id,
    )
    offset = int(query["$skiptoken"]) if query.get("$skiptoken", "").isdigit() else 0
    size = sim.knobs.subscription_list_page_size
    page = mine[offset : offset + size]
    base = sim.urls.graph_base_url
    body: dict[str, Any] = {
        "@odata.context": f"{base}/$metadata#subscriptions",
        "value": [s.as_graph(base, with_client_state=False) for s in page],
    }
    for doc in body["value"]:
        doc.pop("@odata.context", None)
    if offset + size < len(mine):
        body["@odata.nextLink"] = f"{base}/subscriptions?$skiptoken={quote(str(offset + size))}"
    return GraphResult(200, body)


@route("GET", "/subscriptions/{s}", "subscriptions.get", ANY_APP)
async def get_subscription(ctx: Ctx) -> GraphResult:
    check_query(ctx.call, {"$select"})
    sub = ctx.sim.subscriptions.find(ctx.args[0], ctx.app_id, ctx.tenant_id)
    return GraphResult(200, sub.as_graph(ctx.sim.urls.graph_base_url, with_client_state=False))


@route("PATCH", "/subscriptions/{s}", "subscriptions.update", ANY_APP)
async def renew(ctx: Ctx) -> GraphResult:
    sim = ctx.sim
    check_query(ctx.call, set())
    sim.throttle.pace("write", ctx.tenant_id, ctx.app_id)
    sub = sim.subscriptions.find(ctx.args[0], ctx.app_id, ctx.tenant_id)
    body = ctx.call.json()
    if "lifecycleNotificationUrl" in body:
        raise _bad(
            "lifecycleNotificationUrl can not be added or changed by PATCH: delete the "
            "subscription and create a new one with it."
        )
    extra = set(body) - {"expirationDateTime", "notificationUrl"}
    if extra:
        raise _bad(f"Only expirationDateTime can be updated; remove {', '.join(sorted(extra))}.")
    if "notificationUrl" in body and body["notificationUrl"] != sub.notification_url:
        raise _bad(
            "The simulator does not move a subscription to a new notificationUrl; recreate it."
        )
    sim.subscriptions.check_gap(sub, ctx.now, "renew")
    sub.expiration = _expiry(ctx, body.get("expirationDateTime"))
    sub.last_renewal = ctx.now
    sub.paused = False
    sim.counters.note("subscriptions_renewed")
    return GraphResult(200, sub.as_graph(sim.urls.graph_base_url, with_client_state=False))


@route("DELETE", "/subscriptions/{s}", "subscriptions.delete", ANY_APP)
async def delete(ctx: Ctx) -> GraphResult:
    sim = ctx.sim
    sim.throttle.pace("write", ctx.tenant_id, ctx.app_id)
    sub = sim.subscriptions.find(ctx.args[0], ctx.app_id, ctx.tenant_id)
    del sim.subscriptions.by_id[sub.id]
    sim.counters.note("subscriptions_deleted")
    return GraphResult(204)


@route("POST", "/subscriptions/{s}/reauthorize", "subscriptions.reauthorize", ANY_APP)
async def reauthorize(ctx: Ctx) -> GraphResult:
    sim = ctx.sim
    sim.throttle.pace("reauthorize", ctx.tenant_id)
    sub = sim.subscriptions.find(ctx.args[0], ctx.app_id, ctx.tenant_id)
    sim.subscriptions.check_gap(sub, ctx.now, "reauthorize")
    sub.last_reauthorize = ctx.now
    sub.paused = False
    sim.counters.note("subscriptions_reauthorized")
    return GraphResult(204)
