"""Graph v1.0 users, calendars, events, calendarView and instances.

Rule: handlers translate HTTP to the calendar model (graphsim.model.calendar) and back, nothing
more: query options are checked (an unknown `$` option is 400), `Prefer: outlook.timezone` and
`outlook.body-content-type` are applied on the way out (api/user-list-events), ids are REST
ids unless `Prefer: IdType="ImmutableId"` asks for immutable ones (outlook-immutable-id), lists
are paged with `@odata.nextLink` and `$skip` (default 10 per page, as Graph's calendarView). A
mailbox has its default calendar and any others made for it (model.directory): `/calendars/{id}/...`
reaches one by its id, `/users/{id}/events` lists and creates in the default calendar only, and
`/users/{id}/events/{id}` reaches an event of any calendar of the mailbox, as in Exchange. Writes
in a calendar whose canEdit is false are 403. Sources (learn.microsoft.com/graph/...):
api/resources/event, api/user-list-calendarview, api/event-update (If-Match),
api/user-list-calendars, api/calendar-post-events.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from graphsim.api.calls import GraphResult
from graphsim.api.pipeline import (
    READ,
    USERS,
    WRITE,
    Ctx,
    Handler,
    cached,
    check_query,
    page_size,
    prefer,
    route,
)
from graphsim.errors import GraphRequestError
from graphsim.model.calendar.render import render_event
from graphsim.model.calendar.timezones import parse_instant
from graphsim.model.directory import Mailbox

LIST_OPTIONS = {"$select", "$top", "$skip", "$orderby", "$count", "$expand"}
ITEM_OPTIONS = {"$select", "$expand"}
EVENTS_OPTIONS = LIST_OPTIONS | {"$filter"}
# The one $expand and $filter calsync-like clients send for extended properties
# (api/singlevaluelegacyextendedproperty-get); anything else is refused, never ignored.
_EXPAND = re.compile(r"^singleValueExtendedProperties\(\$filter=id eq '([^']+)'\)$", re.I)
_FILTER = re.compile(
    r"^singleValueExtendedProperties/any\((\w+): ?\1/id eq '([^']+)' and \1/value eq "
    r"'((?:[^']|'')*)'\)$",
    re.I,
)


def _context(ctx: Ctx, what: str) -> str:
    return f"{ctx.sim.urls.graph_base_url}/$metadata#users('{ctx.box.user.id}')/{what}"


def render_options(ctx: Ctx) -> tuple[str | None, str, dict[str, str]]:
    """(time zone, body type, Preference-Applied headers) from the Prefer header."""
    wanted = prefer(ctx.call)
    time_zone = wanted.get("outlook.timezone") or None
    body_type = wanted.get("outlook.body-content-type") or "html"
    applied = []
    if time_zone:
        applied.append(f'outlook.timezone="{time_zone}"')
    if "outlook.body-content-type" in wanted:
        applied.append(f'outlook.body-content-type="{body_type}"')
    return time_zone, body_type, ({"Preference-Applied": ", ".join(applied)} if applied else {})


def immutable_ids(ctx: Ctx) -> bool:
    """Did the request ask for immutable ids (`Prefer: IdType="ImmutableId"`)?"""
    return prefer(ctx.call).get("idtype", "").lower() == "immutableid"


def _select(doc: dict[str, Any], selected: str) -> dict[str, Any]:
    if not selected:
        return doc
    keep = {s.strip() for s in selected.split(",") if s.strip()}
    keep.update({"id", "@odata.etag"})
    return {k: v for k, v in doc.items() if k in keep}


def window(query: dict[str, str]) -> tuple[datetime, datetime]:
    """startDateTime/endDateTime, both required (api/user-list-calendarview)."""
    start, end = query.get("startDateTime"), query.get("endDateTime")
    if not start or not end:
        raise GraphRequestError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        lo, hi = parse_instant(start), parse_instant(end)
    except ValueError:
        raise GraphRequestError(
            400,
            "ErrorInvalidParameter",
            f"startDateTime '{start}' or endDateTime '{end}' is not an ISO 8601 date-time; send "
            "e.g. 2026-11-21T00:00:00Z.",
        ) from None
    if hi <= lo:
        raise GraphRequestError(
            400, "ErrorInvalidParameter", "endDateTime must be later than startDateTime."
        )
    return lo, hi


def expanded_property(query: dict[str, str]) -> str | None:
    """The extended property id `$expand` asks for, or None; 400 for another $expand."""
    text = query.get("$expand")
    if text is None:
        return None
    found = _EXPAND.match(text.strip())
    if found is None:
        raise GraphRequestError(
            400,
            "BadRequest",
            "The simulator expands only singleValueExtendedProperties($filter=id eq '...').",
        )
    return found.group(1)


def with_extended(ctx: Ctx, doc: dict[str, Any], prop_id: str | None) -> dict[str, Any]:
    """`doc` with the expanded extended property, when the event has it (Graph leaves the
    collection out when nothing matches)."""
    if prop_id is None:
        return doc
    props = ctx.box.store.extended(doc["id"])
    found = [{"id": k, "value": v} for k, v in props.items() if k.lower() == prop_id.lower()]
    if found:
        doc["singleValueExtendedProperties"] = found
    return doc


def paged(ctx: Ctx, docs: list[dict[str, Any]], query: dict[str, str], what: str) -> GraphResult:
    """One page of a list, rendered, with `@odata.nextLink` built from `$skip`."""
    time_zone, body_type, headers = render_options(ctx)
    expand = expanded_property(query)
    try:
        top = int(query.get("$top") or page_size(ctx.call, 10))
        skip = int(query.get("$skip") or 0)
    except ValueError:
        raise GraphRequestError(
            400, "BadRequest", "$top and $skip must be non-negative integers."
        ) from None
    if top < 1 or skip < 0:
        raise GraphRequestError(400, "BadRequest", "$top must be >= 1 and $skip >= 0.")
    top = min(top, 1000)
    selected = query.get("$select", "")
    chunk = docs[skip : skip + top]
    immutable, store = immutable_ids(ctx), ctx.box.store
    body: dict[str, Any] = {
        "@odata.context": _context(ctx, what),
        "value": [
            _select(
                store.in_form(
                    with_extended(
                        ctx, render_event(d, time_zone=time_zone, body_type=body_type), expand
                    ),
                    immutable=immutable,
                ),
                selected,
            )
            for d in chunk
        ],
    }
    if skip + top < len(docs):
        raw = {k: v for k, v in ctx.call.query().items() if k.lower() != "$skip"}
        raw["$skip"] = str(skip + top)
        link = f"{ctx.sim.urls.graph_base_url}{ctx.call.raw_path}?{urlencode(raw, quote_via=quote)}"
        body["@odata.nextLink"] = link
    return GraphResult(200, body, headers)


def one(ctx: Ctx, doc: dict[str, Any], status: int = 200) -> GraphResult:
    query = check_query(ctx.call, ITEM_OPTIONS)
    time_zone, body_type, headers = render_options(ctx)
    shown = with_extended(
        ctx, render_event(doc, time_zone=time_zone, body_type=body_type), expanded_property(query)
    )
    shown = ctx.box.store.in_form(shown, immutable=immutable_ids(ctx))
    rendered = _select(shown, query.get("$select", ""))
    return GraphResult(
        status, {"@odata.context": _context(ctx, "events/$entity"), **rendered}, headers
    )


def check_calendar(ctx: Ctx, calendar: str) -> None:
    """Point the request at the mailbox's calendar `calendar` (404 when it has none)."""
    ctx.mailbox = ctx.box.calendar(calendar)


def _writable(ctx: Ctx) -> None:
    if not ctx.box.can_edit:
        raise GraphRequestError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )


# --- users and calendars -------------------------------------------------------------------
@route("GET", "/users/{u}", "users.get", USERS)
async def get_user(ctx: Ctx) -> GraphResult:
    check_query(ctx.call, ITEM_OPTIONS)
    body = {"@odata.context": f"{ctx.sim.urls.graph_base_url}/$metadata#users/$entity"}
    return GraphResult(200, {**body, **ctx.box.user.as_graph()})


def _calendar(box: Mailbox) -> dict[str, Any]:
    user, default = box.user, box.owner is None
    seed = (user.id + box.cal_id).encode()
    return {
        "id": box.calendar_id,
        "name": box.name,
        "color": box.color,
        "hexColor": "",
        "isDefaultCalendar": default,
        "changeKey": base64.b64encode(hashlib.sha256(seed).digest()[:12]).decode(),
        "canShare": box.can_edit,
        "canViewPrivateItems": True,
        "canEdit": box.can_edit,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"],
        "defaultOnlineMeetingProvider": "teamsForBusiness",
        "isTallyingResponses": default,
        "isRemovable": not default,
        "owner": {"name": user.display_name, "address": user.upn},
    }


@route("GET", "/users/{u}/calendar", "calendar.get", READ)
async def get_default_calendar(ctx: Ctx) -> GraphResult:
    check_query(ctx.call, ITEM_OPTIONS)
    what = "calendars/$entity" if len(ctx.args) > 1 else "calendar/$entity"
    body = {"@odata.context": _context(ctx, what), **_calendar(ctx.box)}
    return GraphResult(200, body)


@route("GET", "/users/{u}/calendars/{c}", "calendar.get", READ)
async def get_calendar(ctx: Ctx) -> GraphResult:
    check_calendar(ctx, ctx.args[1])
    return await get_default_calendar(ctx)


@route("GET", "/users/{u}/calendars", "calendars.list", READ)
async def list_calendars(ctx: Ctx) -> GraphResult:
    check_query(ctx.call, LIST_OPTIONS)
    listed = [_calendar(box) for box in ctx.box.all_calendars()]
    return GraphResult(200, {"@odata.context": _context(ctx, "calendars"), "value": listed})


# --- events ----------------------------------------------------------------------------------
async def list_events(ctx: Ctx) -> GraphResult:
    query = check_query(ctx.call, EVENTS_OPTIONS)
    text = query.get("$filter")
    if text is None:
        return paged(ctx, ctx.box.store.list_events(), query, "events")
    found = _FILTER.match(text.strip())
    if found is None:
        raise GraphRequestError(
            400,
            "BadRequest",
            "The simulator filters events only by singleValueExtendedProperties/any(ep: "
            "ep/id eq '...' and ep/value eq '...').",
        )
    value = found.group(3).replace("''", "'")
    return paged(ctx, ctx.box.store.with_extended(found.group(2), value), query, "events")


async def create_event(ctx: Ctx) -> GraphResult:
    check_query(ctx.call, set())  # POST takes no $expand: the created event comes back plain
    _writable(ctx)
    body = ctx.call.json()
    tx = body.get("transactionId")
    doc = ctx.box.store.create(body, ctx.now, transaction_id=tx if isinstance(tx, str) else None)
    return one(ctx, doc, 201)


async def get_event(ctx: Ctx) -> GraphResult:
    return one(ctx, ctx.box.store.get(ctx.args[-1]))


async def update_event(ctx: Ctx) -> GraphResult:
    check_query(ctx.call, set())
    _writable(ctx)
    doc = ctx.box.store.update(
        ctx.args[-1], ctx.call.json(), ctx.now, if_match=ctx.call.headers.get("if-match")
    )
    return one(ctx, doc)


async def delete_event(ctx: Ctx) -> GraphResult:
    _writable(ctx)
    ctx.box.store.delete(ctx.args[-1], ctx.now)
    return GraphResult(204)


async def cancel_event(ctx: Ctx) -> GraphResult:
    _writable(ctx)
    body = ctx.call.json() if ctx.call.body.strip() else {}
    comment = body.get("Comment", body.get("comment", ""))
    ctx.box.store.cancel(ctx.args[-1], ctx.now, comment=str(comment or ""))
    return GraphResult(202)


async def list_instances(ctx: Ctx) -> GraphResult:
    query = check_query(ctx.call, LIST_OPTIONS)
    lo, hi = window(query)
    return paged(ctx, ctx.box.store.series_instances(ctx.args[-1], lo, hi), query, "events")


async def calendar_view(ctx: Ctx) -> GraphResult:
    query = check_query(ctx.call, LIST_OPTIONS)
    order = query.get("$orderby", "start/dateTime")
    if order.replace(" asc", "") not in ("start/dateTime", "start/datetime"):
        raise GraphRequestError(
            400, "BadRequest", "The simulator orders calendarView by start/dateTime only."
        )
    lo, hi = window(query)
    return paged(ctx, ctx.box.store.instances(lo, hi), query, "calendarView")


def _in_calendar(handler: Handler) -> Handler:
    async def checked(ctx: Ctx) -> GraphResult:
        check_calendar(ctx, ctx.args[1])
        return await handler(ctx)

    return checked


def _holding(handler: Handler) -> Handler:
    """`/users/{id}/events/{id}`: the event is found in whichever calendar of the mailbox."""

    async def found(ctx: Ctx) -> GraphResult:
        ctx.mailbox = ctx.box.holding(ctx.args[-1])
        return await handler(ctx)

    return found


def _same(handler: Handler) -> Handler:
    return handler


# The wrapper picks the calendar before the cache is asked: its key is that calendar's version.
for _prefix, _wrap, _item in (
    ("/users/{u}", _same, _holding),
    ("/users/{u}/calendar", _same, _holding),
    ("/users/{u}/calendars/{c}", _in_calendar, _in_calendar),
):
    route("GET", f"{_prefix}/events", "events.list", READ)(_wrap(cached(list_events)))
    route("POST", f"{_prefix}/events", "events.create", WRITE)(_wrap(create_event))
    route("GET", f"{_prefix}/events/{{e}}", "events.get", READ)(_item(cached(get_event)))
    route("PATCH", f"{_prefix}/events/{{e}}", "events.update", WRITE)(_item(update_event))
    route("DELETE", f"{_prefix}/events/{{e}}", "events.delete", WRITE)(_item(delete_event))
    route("POST", f"{_prefix}/events/{{e}}/cancel", "events.cancel", WRITE)(_item(cancel_event))
    route("GET", f"{_prefix}/events/{{e}}/instances", "events.instances", READ)(
        _item(cached(list_instances))
    )
    route("GET", f"{_prefix}/calendarView", "calendarView", READ)(_wrap(cached(calendar_view)))
