"""The simulator's HTTPS origin: EWS at /EWS/Exchange.asmx and the control API at /_sim.

Rule: one path through every EWS request: authenticate (Basic or NTLM), parse the envelope,
throttle, resolve the impersonated mailbox (grant checked), run the operation, answer; each
failure in the shape Exchange gives it (401 with challenges, SOAP faults as HTTP 500, error
response messages as HTTP 200).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ewssim.auth import Authenticator, Unauthorized
from ewssim.delivery import deliver_forever
from ewssim.model import EwsFault, Recurrence, World
from ewssim.operations import OPERATIONS
from ewssim.schema import check_answer_items
from ewssim.soap import SoapError, envelope, fault, parse_request

XML = "text/xml; charset=utf-8"


def _fault(world: World, code: str, text: str, back_off: int | None = None) -> Response:
    return Response(
        fault(world.server_version, code, text, back_off_ms=back_off), 500, media_type=XML
    )


async def ews(request: Request) -> Response:
    world: World = request.app.state.world
    auth: Authenticator = request.app.state.auth
    connection = request.scope.get("client")
    body = await request.body()
    try:
        account = auth.authenticate(connection, request.headers.get("authorization", ""))
    except Unauthorized as exc:
        headers = [("www-authenticate", c) for c in exc.challenge]
        resp = Response(b"", 401)
        resp.raw_headers.extend((k.encode(), v.encode()) for k, v in headers)
        return resp
    try:
        req = parse_request(body, world.server_version)
    except SoapError as exc:
        return _fault(world, exc.code, exc.message)
    world.calls[req.operation] = world.calls.get(req.operation, 0) + 1
    handler = OPERATIONS.get(req.operation)
    if handler is None:
        return _fault(world, "ErrorInvalidRequest", f"{req.operation} is not simulated.")
    if world.garbled > 0:
        world.garbled -= 1
        cut = b'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xml'
        return Response(cut, 200, media_type=XML)
    back_off = world.take_busy(req.impersonate or "")
    if back_off is not None:
        return _fault(
            world,
            "ErrorServerBusy",
            "The server cannot service this request right now. Try again later.",
            back_off,
        )
    try:
        with world.lock:
            if req.impersonate is None:
                box = world.mailbox(account.username)  # service accounts have no mailbox here
            else:
                box = world.check_impersonation(account, req.impersonate)
            answer = handler(world, box, req)
            check_answer_items(answer)
    except EwsFault as exc:
        return _fault(world, exc.code, exc.message)
    except SoapError as exc:
        return _fault(world, exc.code, exc.message)
    return Response(envelope(world.server_version, answer), 200, media_type=XML)


# --- control API -----------------------------------------------------------------------------
def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _appointment_fields(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    simple = (
        "subject",
        "time_zone",
        "is_all_day",
        "body",
        "body_type",
        "location",
        "sensitivity",
        "free_busy",
        "importance",
        "reminder_minutes",
        "reminder_set",
        "is_cancelled",
        "uid",
    )
    for key in simple:
        if key in body:
            out[key] = body[key]
    for key in ("start", "end"):
        if key in body:
            out[key] = _dt(body[key])
    if "organizer" in body:
        out["organizer"] = (body["organizer"]["name"], body["organizer"]["address"])
    for key in ("required", "optional"):
        if key in body:
            out[key] = tuple(
                (p["name"], p["address"], p.get("response", "Unknown")) for p in body[key]
            )
    if "categories" in body:
        out["categories"] = tuple(body["categories"])
    if body.get("recurrence"):
        r = body["recurrence"]
        out["recurrence"] = Recurrence(
            pattern=r["pattern"],
            interval=int(r.get("interval", 1)),
            days_of_week=tuple(r.get("days_of_week", ())),
            start_date=date.fromisoformat(r["start_date"]) if r.get("start_date") else None,
            count=r.get("count"),
            end_date=date.fromisoformat(r["end_date"]) if r.get("end_date") else None,
            day_of_month=int(r.get("day_of_month", 0)),
            week_index=int(r.get("week_index", 0)),
            month=int(r.get("month", 0)),
        )
    return out


async def _json(request: Request) -> dict[str, Any]:
    data = await request.body()

    return json.loads(data) if data else {}


async def add_account(request: Request) -> Response:
    world: World = request.app.state.world
    body = await _json(request)
    world.add_account(body["username"], body["password"], tuple(body.get("impersonates", ())))
    request.app.state.auth.write_users()
    return JSONResponse({"username": body["username"]}, 201)


async def add_mailbox(request: Request) -> Response:
    world: World = request.app.state.world
    body = await _json(request)
    box = world.add_mailbox(body["smtp"])
    box.calendar_denied = bool(body.get("calendar_denied", False))
    return JSONResponse({"smtp": box.smtp, "calendarId": box.calendar_id}, 201)


async def items(request: Request) -> Response:
    world: World = request.app.state.world
    smtp = request.path_params["smtp"]
    try:
        if request.method == "POST":
            appt = world.create(smtp, **_appointment_fields(await _json(request)))
            return JSONResponse({"id": appt.item_id, "uid": appt.uid}, 201)
        item_id = request.query_params["id"]
        if request.method == "PATCH":
            appt = world.update(smtp, item_id, **_appointment_fields(await _json(request)))
            return JSONResponse({"id": appt.item_id, "changeKey": appt.change_key})
        world.delete(smtp, item_id)
        return Response(status_code=204)
    except EwsFault as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, 404)


async def occurrence(request: Request) -> Response:
    world: World = request.app.state.world
    smtp, index = request.path_params["smtp"], int(request.path_params["index"])
    item_id = request.query_params["id"]
    try:
        if request.method == "DELETE":
            world.cancel_occurrence(smtp, item_id, index)
            return Response(status_code=204)
        overrides = _appointment_fields(await _json(request))
        return JSONResponse({"id": world.edit_occurrence(smtp, item_id, index, overrides)})
    except EwsFault as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, 404)


async def view(request: Request) -> Response:
    """The calendar as a CalendarView of [start, end) sees it, in the model's own terms."""
    world: World = request.app.state.world
    box = world.mailbox(request.path_params["smtp"])
    start, end = _dt(request.query_params["start"]), _dt(request.query_params["end"])
    with world.lock:
        found = world.instances(box, start, end)
    return JSONResponse(
        [
            {
                "id": i.item_id,
                "kind": i.kind,
                "masterId": i.appointment.item_id,
                "uid": i.appointment.uid,
                "subject": i.appointment.subject,
                "start": i.appointment.start.isoformat(),
                "end": i.appointment.end.isoformat(),
                "originalStart": i.original_start.isoformat() if i.original_start else None,
                "isAllDay": i.appointment.is_all_day,
                "timeZone": i.appointment.time_zone,
                "location": i.appointment.location,
                "sensitivity": i.appointment.sensitivity,
                "freeBusy": i.appointment.free_busy,
            }
            for i in found
        ]
    )


async def knobs(request: Request) -> Response:
    world: World = request.app.state.world
    body = await _json(request)
    kind = request.path_params["knob"]
    if kind == "invalidate-sync":
        world.invalidate_sync(body["smtp"])
    elif kind == "throttle":
        world.throttle(
            body.get("smtp", ""), int(body.get("count", 1)), int(body.get("back_off_ms", 1000))
        )
    elif kind == "keepalive":
        world.keepalive(body["smtp"])
    elif kind == "garble":
        world.garbled += int(body.get("count", 1))
    elif kind == "deny-calendar":
        world.mailbox(body["smtp"]).calendar_denied = bool(body.get("denied", True))
    else:
        return JSONResponse({"code": "UnknownKnob"}, 404)
    return Response(status_code=204)


async def subscriptions(request: Request) -> Response:
    """The live push subscriptions (id, mailbox, URL)."""
    world: World = request.app.state.world
    with world.lock:
        subs = [
            {
                "id": s.subscription_id,
                "smtp": s.smtp,
                "url": s.url,
                "statusMinutes": s.status_minutes,
            }
            for s in world.subscriptions.values()
        ]
    return JSONResponse(subs)


async def clock(request: Request) -> Response:
    """GET: the virtual now; POST /_sim/clock/advance {"seconds"}: move it forward."""
    world: World = request.app.state.world
    if request.method == "POST":
        seconds = float((await _json(request)).get("seconds", 0))
        if seconds < 0:
            return JSONResponse({"code": "BadSeconds", "message": "seconds must be >= 0"}, 400)
        world.clock.advance(seconds)
    return JSONResponse({"now": world.clock.now().isoformat()})


async def sent(request: Request) -> Response:
    """Every invitation, update and cancellation sent on the mailboxes' behalf."""
    world: World = request.app.state.world
    with world.lock:
        return JSONResponse(list(world.sent))


async def item(request: Request) -> Response:
    """One stored item as the model holds it, extended properties included."""
    world: World = request.app.state.world
    with world.lock:
        box = world.mailbox(request.path_params["smtp"])
        try:
            inst = world.get(box, request.query_params["id"])
        except EwsFault as exc:
            return JSONResponse({"code": exc.code, "message": exc.message}, 404)
        a = inst.appointment
        return JSONResponse(
            {
                "id": inst.item_id,
                "kind": inst.kind,
                "changeKey": inst.change_key,
                "subject": a.subject,
                "start": a.start.isoformat(),
                "end": a.end.isoformat(),
                "timeZone": a.time_zone,
                "sensitivity": a.sensitivity,
                "reminderSet": a.reminder_set,
                "reminderMinutes": a.reminder_minutes,
                "bodyType": a.body_type,
                "body": a.body,
                "attendees": [p[1] for p in (*a.required, *a.optional)],
                "recurrence": None
                if a.recurrence is None
                else {"pattern": a.recurrence.pattern, "count": a.recurrence.count},
                "extended": {f"{k[0]}|{k[1]}|{k[2]}": v for k, v in a.extended.items()},
            }
        )


async def calls(request: Request) -> Response:
    """Operations answered, by name, and `ntlm_handshakes` completed."""
    counts = dict(request.app.state.world.calls)
    counts["ntlm_handshakes"] = request.app.state.auth.handshakes
    return JSONResponse(counts)


def build_app(world: World, auth: Authenticator, trusted: list[str]) -> Starlette:
    """The app; push receivers' certificates are checked against the CA files `trusted`."""
    routes = [
        Route("/EWS/Exchange.asmx", ews, methods=["POST"]),
        Route("/_sim/accounts", add_account, methods=["POST"]),
        Route("/_sim/mailboxes", add_mailbox, methods=["POST"]),
        Route("/_sim/mailboxes/{smtp}/items", items, methods=["POST", "PATCH", "DELETE"]),
        Route(
            "/_sim/mailboxes/{smtp}/occurrences/{index:int}",
            occurrence,
            methods=["PATCH", "DELETE"],
        ),
        Route("/_sim/mailboxes/{smtp}/view", view, methods=["GET"]),
        Route("/_sim/knobs/{knob}", knobs, methods=["POST"]),
        Route("/_sim/calls", calls, methods=["GET"]),
        Route("/_sim/clock", clock, methods=["GET"]),
        Route("/_sim/clock/advance", clock, methods=["POST"]),
        Route("/_sim/sent", sent, methods=["GET"]),
        Route("/_sim/mailboxes/{smtp}/item", item, methods=["GET"]),
        Route("/_sim/subscriptions", subscriptions, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(deliver_forever(world, trusted))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.world = world
    app.state.auth = auth
    return app


__all__ = ["build_app", "etree"]
