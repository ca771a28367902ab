"""`GET /places/microsoft.graph.room`: the tenant's room mailboxes (users whose mailbox is a
room), as a meeting-room display looks them up.

Rule: rooms are the directory's users of kind "room" in the caller's tenant; the answer is the
room resource's default properties (api/place-list, resources/room), one page, `$top` honoured.
Equipment mailboxes are not places (Graph lists rooms and room lists only). Needs Place.Read.All.
"""

from __future__ import annotations

from typing import Any

from graphsim.api.calls import GraphResult
from graphsim.api.pipeline import Ctx, check_query, route
from graphsim.errors import GraphRequestError
from graphsim.model.directory import User

PLACES = frozenset({"Place.Read.All", "Place.ReadWrite.All"})


def _room(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "displayName": user.display_name,
        "emailAddress": user.upn,
        "bookingType": "standard",
        "capacity": None,
        "building": None,
        "floorNumber": None,
        "isWheelChairAccessible": False,
        "tags": [],
    }


@route("GET", "/places/microsoft.graph.room", "places.rooms", PLACES)
async def list_rooms(ctx: Ctx) -> GraphResult:
    query = check_query(ctx.call, {"$top"})
    try:
        top = int(query.get("$top") or 100)
    except ValueError:
        raise GraphRequestError(400, "BadRequest", "$top must be a positive integer.") from None
    rooms = [
        _room(u)
        for u in ctx.sim.directory.users.values()
        if u.kind == "room" and u.tenant_id.lower() == ctx.tenant_id.lower()
    ]
    base = ctx.sim.urls.graph_base_url
    return GraphResult(
        200,
        {"@odata.context": f"{base}/$metadata#places/microsoft.graph.room", "value": rooms[:top]},
    )
