"""`GET /users/{id}/calendarView/delta` (or `delta()`): the HTTP face of the DeltaEngine.

Rule: the first request needs startDateTime and endDateTime and refuses $select, $filter,
$expand, $orderby, $search and $top (api/event-delta); later requests carry only the opaque
`$skiptoken` or `$deltatoken` the previous page handed out. A page has `@odata.nextLink` or
`@odata.deltaLink`, never both. Page size comes from `Prefer: odata.maxpagesize`. Tokens older
than the `delta_token_max_age_s` knob (virtual clock) are expired before each request, so they
answer 410 Gone / SyncStateNotFound, as an expired sync state does in Graph. Ids follow each
request's `Prefer: IdType` (a round compares ids in the form its request asked for).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from graphsim.api.calls import GraphResult
from graphsim.api.events import check_calendar, immutable_ids, render_options, window
from graphsim.api.pipeline import READ, Ctx, check_query, page_size, route
from graphsim.errors import GraphRequestError
from graphsim.model.calendar.delta import DeltaPage

# Every query option Graph refuses on calendarView delta (api/event-delta, "Query parameters").
_REFUSED = ("$select", "$filter", "$expand", "$orderby", "$search", "$top", "$skip", "$count")


async def calendar_view_delta(ctx: Ctx) -> GraphResult:
    query = ctx.call.query()
    refused = [name for name in query if name.lower() in _REFUSED]
    if refused:
        raise GraphRequestError(
            400,
            "ErrorInvalidUrlQuery",
            "The following parameters are not supported with change tracking over the "
            f"'CalendarView' resource: '{', '.join(refused)}'. Send only startDateTime and "
            "endDateTime, then follow @odata.nextLink / @odata.deltaLink as given.",
        )
    query = check_query(ctx.call, {"$skiptoken", "$deltatoken"})
    sim = ctx.sim
    engine = ctx.box.delta
    max_age = sim.knobs.delta_token_max_age_s
    if max_age > 0:
        engine.expire_older_than(ctx.now - timedelta(seconds=max_age))
    time_zone, body_type, headers = render_options(ctx)
    size = page_size(ctx.call, sim.knobs.default_page_size)
    immutable = immutable_ids(ctx)
    if "$skiptoken" in query:
        page = engine.next_page(query["$skiptoken"], ctx.now)
    elif "$deltatoken" in query:
        page = engine.resume(
            query["$deltatoken"],
            ctx.now,
            page_size=size,
            time_zone=time_zone,
            body_type=body_type,
            immutable_ids=immutable,
        )
    else:
        lo, hi = window(query)
        page = engine.start(
            lo,
            hi,
            ctx.now,
            page_size=size,
            time_zone=time_zone,
            body_type=body_type,
            immutable_ids=immutable,
        )
    if "odata.maxpagesize" in ctx.call.headers.get("prefer", ""):
        applied = headers.get("Preference-Applied", "")
        headers["Preference-Applied"] = ", ".join(
            p for p in (applied, f"odata.maxpagesize={size}") if p
        )
    return GraphResult(200, _page_body(ctx, page), headers)


def _page_body(ctx: Ctx, page: DeltaPage) -> dict[str, Any]:
    base = f"{ctx.sim.urls.graph_base_url}{ctx.call.raw_path}"
    body: dict[str, Any] = {
        "@odata.context": f"{ctx.sim.urls.graph_base_url}/$metadata#Collection(event)",
        "value": page.items,
    }
    if page.skiptoken:
        body["@odata.nextLink"] = f"{base}?$skiptoken={quote(page.skiptoken, safe='')}"
    else:
        body["@odata.deltaLink"] = f"{base}?$deltatoken={quote(str(page.deltatoken), safe='')}"
    return body


async def _delta_in_calendar(ctx: Ctx) -> GraphResult:
    check_calendar(ctx, ctx.args[1])
    if ctx.box.owner is not None and ctx.sim.knobs.calendar_delta_refused:
        raise GraphRequestError(
            400,
            "ErrorInvalidRequest",
            "Change tracking over 'CalendarView' is supported for the primary calendar only; "
            "list users/{id}/calendars/{id}/calendarView instead.",
        )
    return await calendar_view_delta(ctx)


# Graph accepts the function-call form `delta()` too; it is the one the msgraph-sdk sends.
for _call in ("delta", "delta()"):
    route("GET", f"/users/{{u}}/calendarView/{_call}", "calendarView.delta", READ)(
        calendar_view_delta
    )
    route("GET", f"/users/{{u}}/calendar/calendarView/{_call}", "calendarView.delta", READ)(
        calendar_view_delta
    )
    route("GET", f"/users/{{u}}/calendars/{{c}}/calendarView/{_call}", "calendarView.delta", READ)(
        _delta_in_calendar
    )
