"""`POST /users/{id}/calendar/getSchedule`: free/busy of up to 20 mailboxes of the caller's tenant.

Rule: the handler only gathers the tenant's calendars and the `Prefer: outlook.timezone` zone;
the answer (limits, availabilityView, scheduleItems) is `graphsim.model.calendar.schedule`'s.
Source: https://learn.microsoft.com/graph/api/calendar-getschedule.
"""

from __future__ import annotations

from graphsim.api.calls import GraphResult
from graphsim.api.events import render_options
from graphsim.api.pipeline import SCHEDULE, Ctx, check_query, route
from graphsim.model.calendar.schedule import get_schedule


@route("POST", "/users/{u}/calendar/getSchedule", "getSchedule", SCHEDULE)
async def schedule(ctx: Ctx) -> GraphResult:
    check_query(ctx.call, set())
    stores = {
        m.user.upn.lower(): m.store
        for m in ctx.sim.directory.mailboxes.values()
        if m.user.tenant_id == ctx.box.user.tenant_id
    }
    time_zone, _, headers = render_options(ctx)
    body = get_schedule(stores, ctx.call.json(), time_zone=time_zone)
    context = (
        f"{ctx.sim.urls.graph_base_url}/$metadata#Collection(microsoft.graph.scheduleInformation)"
    )
    return GraphResult(200, {"@odata.context": context, **body}, headers)
