"""The Graph v1.0 request pipeline shared by direct requests and `$batch` inner requests.

Rule: every Graph call goes route -> token -> mailbox -> permission -> throttle -> fault ->
handler, in that order, and every refusal is a GraphRequestError rendered once, in Graph's error
shape (https://learn.microsoft.com/graph/errors). Paths are matched on the raw (still
percent-encoded) path, segment by segment, because event ids contain '/' that clients encode.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from graphsim.api.calls import GraphCall, GraphResult, encode_json
from graphsim.errors import GraphRequestError
from graphsim.model.calendar.timezones import format_timestamp
from graphsim.model.directory import Mailbox

if TYPE_CHECKING:
    from graphsim.simulator import Simulator

READ = frozenset({"Calendars.Read", "Calendars.ReadWrite"})
WRITE = frozenset({"Calendars.ReadWrite"})
SCHEDULE = frozenset({"Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite"})
USERS = frozenset(
    {"User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All", "Directory.Read.All"}
)
ANY_APP: frozenset[str] = frozenset()


@dataclass
class Ctx:
    sim: Simulator
    call: GraphCall
    args: list[str]
    app_id: str
    tenant_id: str
    roles: frozenset[str]
    mailbox: Mailbox | None
    now: datetime

    @property
    def box(self) -> Mailbox:
        assert self.mailbox is not None
        return self.mailbox


Handler = Callable[[Ctx], Awaitable[GraphResult]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    handler: Handler
    roles: frozenset[str]
    mailbox: bool


ROUTES: list[Route] = []
_SEG = r"([^/]+)"


def route(
    method: str, template: str, name: str, roles: frozenset[str]
) -> Callable[[Handler], Handler]:
    """Register a handler; `{x}` in the template captures one path segment."""
    parts = re.split(r"(\{[a-z_]+\})", template)
    regex = "^" + "".join(_SEG if p.startswith("{") else re.escape(p) for p in parts) + "/?$"

    def deco(fn: Handler) -> Handler:
        ROUTES.append(
            Route(method, re.compile(regex, re.IGNORECASE), name, fn, roles, "/users/{" in template)
        )
        return fn

    return deco


_CACHE_LIMIT = 4096


def cached(handler: Handler) -> Handler:
    """Serve a read from a cache keyed on the mailbox's version: any change to the calendar
    bumps the version, so a hit is always what the handler would answer now. Keeps repeated
    GETs cheap (the simulator must never be a benchmark's bottleneck)."""

    async def run(ctx: Ctx) -> GraphResult:
        call = ctx.call
        key = (
            ctx.box.user.id,
            ctx.box.calendar_id,
            ctx.box.store.version(),
            call.raw_path,
            call.raw_query,
            call.headers.get("prefer", ""),
        )
        cache = ctx.sim.response_cache
        hit = cache.get(key)
        if hit is not None:
            return GraphResult(hit.status, hit.body, dict(hit.headers), hit.raw)
        result = await handler(ctx)
        if result.status == 200 and isinstance(result.body, dict):
            result.raw = encode_json(result.body)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = GraphResult(result.status, result.body, dict(result.headers), result.raw)
        return result

    return run


def unauthorized(message: str) -> GraphRequestError:
    return GraphRequestError(401, "InvalidAuthenticationToken", message)


def access_denied(*, directory: bool = False) -> GraphRequestError:
    """Graph's 403: Exchange's words for mailbox data, the directory's for users."""
    if directory:
        return GraphRequestError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    return GraphRequestError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


def check_query(call: GraphCall, allowed: set[str]) -> dict[str, str]:
    """OData system options ($...) not in `allowed` are a 400, as Graph answers them."""
    query = call.query()
    for name in query:
        if name.startswith("$") and name.lower() not in allowed:
            raise GraphRequestError(
                400,
                "BadRequest",
                f"Query option '{name}' is not allowed on this resource; allowed: "
                f"{', '.join(sorted(allowed)) or 'none'}.",
            )
    return {k.lower() if k.startswith("$") else k: v for k, v in query.items()}


async def dispatch(sim: Simulator, call: GraphCall) -> tuple[GraphResult, str, str | None]:
    """Run one Graph call; returns (result, endpoint name, mailbox id) for the counters."""
    endpoint = "graph.unknown"
    mailbox_id: str | None = None
    slot: tuple[str, str] | None = None
    try:
        path = call.raw_path
        found: Route | None = None
        match: re.Match[str] | None = None
        method_seen = False
        for r in ROUTES:
            m = r.pattern.match(path)
            if m is None:
                continue
            method_seen = True
            if r.method == call.method:
                found, match = r, m
                break
        if found is None or match is None:
            if method_seen:
                raise GraphRequestError(
                    405, "Request_BadRequest", f"The HTTP method '{call.method}' is not allowed."
                )
            if re.match(r"^/me(/|$)", path, re.IGNORECASE):
                raise GraphRequestError(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
            segment = path.strip("/").split("/")[-1] if path.strip("/") else ""
            raise GraphRequestError(
                400, "BadRequest", f"Resource not found for the segment '{unquote(segment)}'."
            )
        endpoint = found.name
        claims = _claims(sim, call)
        tenant_id = str(claims["tid"])
        roles = frozenset(claims.get("roles", ()))
        args = [unquote(g) for g in match.groups()]
        mailbox: Mailbox | None = None
        if found.mailbox:
            mailbox = sim.directory.mailbox_for(args[0])
            mailbox_id = mailbox.user.id
            if mailbox.user.tenant_id.lower() != tenant_id.lower():
                raise access_denied()
        if found.roles and not (found.roles & roles):
            raise access_denied(directory=found.roles is USERS)
        app_id = str(claims["appid"])
        if mailbox is not None and not sim.directory.allows(tenant_id, app_id, mailbox.user.id):
            raise GraphRequestError(
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
                "AccessPolicy settings.",
            )
        if mailbox is not None:
            slot = sim.throttle.enter(app_id, mailbox.user.id)
        latency, fault = sim.faults.pick(call.method, path, mailbox_id or "")
        if latency > 0:
            await asyncio.sleep(latency)
        if fault is not None:
            raise fault
        ctx = Ctx(sim, call, args, app_id, tenant_id, roles, mailbox, sim.clock.now())
        result = await found.handler(ctx)
    except GraphRequestError as exc:
        result = error_result(sim, call, exc)
    finally:
        if slot is not None:
            sim.throttle.leave(slot)
    result.headers.setdefault("request-id", call.request_id)
    result.headers.setdefault(
        "client-request-id", call.headers.get("client-request-id", call.request_id)
    )
    return result, endpoint, mailbox_id


def error_result(sim: Simulator, call: GraphCall, exc: GraphRequestError) -> GraphResult:
    body = exc.body(
        date=format_timestamp(sim.clock.now())[:19],
        request_id=call.request_id,
        client_request_id=call.headers.get("client-request-id", ""),
    )
    return GraphResult(exc.status, body, dict(exc.headers))


def _claims(sim: Simulator, call: GraphCall) -> dict[str, Any]:
    auth = call.headers.get("authorization", "")
    if not auth:
        raise unauthorized("Access token is empty.")
    if not auth.startswith("Bearer "):
        raise unauthorized(
            "Access token validation failure: the Authorization header is not 'Bearer <token>'."
        )
    claims = sim.signer.claims(auth[7:])
    if claims is None:
        raise unauthorized("Access token validation failure. Invalid signature or token shape.")
    if claims.get("aud") != sim.urls.graph_resource:
        raise unauthorized("Access token validation failure. Invalid audience.")
    now = sim.clock.timestamp()
    if float(claims.get("exp", 0)) <= now:
        raise unauthorized("Lifetime validation failed, the token is expired.")
    if float(claims.get("nbf", 0)) > now + 300:
        raise unauthorized("Lifetime validation failed, the token is not yet valid.")
    if sim.directory.find_tenant(str(claims.get("tid", ""))) is None:
        raise unauthorized("Access token validation failure: the token's tenant is unknown.")
    return claims


def prefer(call: GraphCall) -> dict[str, str]:
    """Parse `Prefer` (comma separated `name=value`, values maybe quoted)."""
    out: dict[str, str] = {}
    for part in call.headers.get("prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            out[name.strip().lower()] = value.strip().strip('"')
    return out


def page_size(call: GraphCall, default: int) -> int:
    raw = prefer(call).get("odata.maxpagesize", "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise GraphRequestError(
            400, "BadRequest", f"Prefer: odata.maxpagesize must be a positive integer, not {raw!r}."
        )
    return int(raw)
