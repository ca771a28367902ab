"""The control API under `/_sim/...` for tests, the demo and benchmarks (no auth: loopback only).

Rule: everything a test needs to arrange or observe goes through here: seed tenants, apps,
consents, users, events and vault secrets; change events "as a person in Outlook would" (the
change then notifies like any other); set knobs and queue faults; move the virtual clock; expire
delta tokens; fire lifecycle events; read counters and the delivery log. Bad input is a 400
whose `error` says what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.timezones import format_timestamp, parse_instant
from graphsim.model.directory import AppCertificate, AppSecret

if TYPE_CHECKING:
    from graphsim.simulator import Simulator

Body = dict[str, Any]
Action = Callable[["Simulator", Request, Body], Awaitable[Any] | Any]


def _action(fn: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        sim: Simulator = request.app.state.sim
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            result = fn(sim, request, body)
            if hasattr(result, "__await__"):
                result = await result
        except GraphRequestError as exc:
            return JSONResponse(
                exc.body(date=format_timestamp(sim.clock.now()), request_id="control"), exc.status
            )
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return JSONResponse(result if result is not None else {"ok": True})

    return endpoint


def _when(sim: Simulator, value: Any) -> Any:
    """An absolute ISO time, or {"in_s": seconds} relative to the virtual now."""
    if value is None:
        return None
    if isinstance(value, dict):
        return sim.clock.now() + timedelta(seconds=float(value["in_s"]))
    return parse_instant(str(value))


def seed(sim: Simulator, request: Request, body: Body) -> Any:
    d = sim.directory
    out: dict[str, Any] = {"users": {}, "events": []}
    for t in body.get("tenants", []):
        d.add_tenant(t["id"], t["domain"], t.get("name", ""))
    for a in body.get("apps", []):
        app = d.add_app(a["client_id"], a["tenant"], a.get("name", ""))
        for s in a.get("secrets", []):
            app.secrets.append(AppSecret(s["value"], _when(sim, s.get("expires"))))
        for pem in a.get("certificates", []):
            app.certificates.append(AppCertificate.from_pem(pem.encode()))
    for c in body.get("consents", []):
        d.grant_consent(c["tenant"], c["client_id"], list(c.get("roles", [])))
    for u in body.get("users", []):
        user = d.add_user(
            u["tenant"],
            u["upn"],
            user_id=u.get("id", ""),
            name=u.get("name", ""),
            kind=u.get("kind", "user"),
        )
        out["users"][user.upn] = user.id
        for name in u.get("calendars", []):
            box = d.add_calendar(user.id, name)
            out.setdefault("calendars", {}).setdefault(user.upn, {})[name] = box.calendar_id
    for e in body.get("events", []):
        doc = d.mailbox_for(e["user"]).store.create(e["event"], sim.clock.now())
        out["events"].append(doc["id"])
    if "vault_tenant" in body:
        sim.vault.tenant_id = body["vault_tenant"]
    for s in body.get("secrets", []):
        version = sim.vault.set_secret(
            s["name"],
            s["value"],
            now=sim.clock.now(),
            exp=_when(sim, s.get("exp")),
            nbf=_when(sim, s.get("nbf")),
            enabled=s.get("enabled", True),
            content_type=s.get("content_type"),
        )
        out.setdefault("secret_versions", {})[s["name"]] = version.version
    return out


def access_policy(sim: Simulator, request: Request, body: Body) -> Any:
    """{tenant, client_id, users: [...] | null}: restrict the app to these mailboxes (or lift)."""
    users = body.get("users")
    sim.directory.restrict_access(
        body["tenant"], body["client_id"], None if users is None else list(users)
    )


def consent(sim: Simulator, request: Request, body: Body) -> Any:
    if body.get("revoke"):
        sim.directory.revoke_consent(body["tenant"], body["client_id"])
        # An admin revoking permissions is one documented cause of reauthorizationRequired
        # (change-notifications-lifecycle-events).
        tenant = sim.directory.find_tenant(body["tenant"])
        for sub in list(sim.subscriptions.by_id.values()):
            if (
                tenant
                and sub.tenant_id == tenant.id
                and sub.app_id.lower() == body["client_id"].lower()
            ):
                sim.subscriptions.lifecycle(sub, "reauthorizationRequired")
    else:
        sim.directory.grant_consent(body["tenant"], body["client_id"], list(body["roles"]))


def app_secret(sim: Simulator, request: Request, body: Body) -> Any:
    app = sim.directory.apps[request.path_params["client_id"].lower()]
    app.secrets.append(AppSecret(body["value"], _when(sim, body.get("expires"))))


def _box(sim: Simulator, request: Request) -> Any:
    """The user's default calendar, or the one `?calendar=` names (by Graph id or by name)."""
    box = sim.directory.mailbox_for(request.path_params["user"])
    wanted = request.query_params.get("calendar", "")
    if not wanted:
        return box
    for cal in box.all_calendars():
        if wanted in (cal.calendar_id, cal.name):
            return cal
    raise ValueError(f"user {box.user.upn} has no calendar {wanted!r}")


def _store(sim: Simulator, request: Request) -> Any:
    return _box(sim, request).store


def add_calendar(sim: Simulator, request: Request, body: Body) -> Any:
    """{name, can_edit}: one more calendar of the mailbox; its Graph id."""
    box = sim.directory.add_calendar(
        request.path_params["user"], str(body["name"]), can_edit=bool(body.get("can_edit", True))
    )
    return {"id": box.calendar_id, "name": box.name}


def create_event(sim: Simulator, request: Request, body: Body) -> Any:
    return _store(sim, request).create(body, sim.clock.now())


def bulk_events(sim: Simulator, request: Request, body: Body) -> Any:
    """{count, start, step_minutes, duration_minutes, subject}: many single events, fast."""
    store = _store(sim, request)
    start = parse_instant(body["start"])
    step = timedelta(minutes=float(body.get("step_minutes", 60)))
    length = timedelta(minutes=float(body.get("duration_minutes", 30)))
    ids = []
    for i in range(int(body["count"])):
        begin = start + i * step
        doc = store.create(
            {
                "subject": f"{body.get('subject', 'Event')} {i}",
                "start": {"dateTime": begin.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {
                    "dateTime": (begin + length).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC",
                },
            },
            sim.clock.now(),
        )
        ids.append(doc["id"])
    return {"ids": ids}


def update_event(sim: Simulator, request: Request, body: Body) -> Any:
    return _store(sim, request).update(body["id"], body["patch"], sim.clock.now())


def delete_event(sim: Simulator, request: Request, body: Body) -> Any:
    _store(sim, request).delete(body["id"], sim.clock.now())


def cancel_event(sim: Simulator, request: Request, body: Body) -> Any:
    _store(sim, request).cancel(body["id"], sim.clock.now(), comment=body.get("comment", ""))


_COPIED = ("subject", "body", "start", "end", "location", "attendees", "recurrence", "isAllDay")


def invite(sim: Simulator, request: Request, body: Body) -> Any:
    """{from, id}: the meeting `id` of mailbox `from` lands in this mailbox (an attendee's copy,
    with the organizer's iCalUId, as Exchange delivers an invitation)."""
    source = sim.directory.mailbox_for(body["from"]).store.get(body["id"])
    copy = {k: source[k] for k in _COPIED if source.get(k) is not None}
    return _store(sim, request).create(copy, sim.clock.now(), ical_uid=source["iCalUId"])


def move_event(sim: Simulator, request: Request, body: Body) -> Any:
    """{id}: the event goes to another folder and back (deleted items, then restored)."""
    return _store(sim, request).move(body["id"], sim.clock.now())


def list_events(sim: Simulator, request: Request, body: Body) -> Any:
    return {"value": _store(sim, request).list_events()}


def knobs(sim: Simulator, request: Request, body: Body) -> Any:
    problems = sim.knobs.update(body)
    if problems:
        raise ValueError("; ".join(problems))
    if "seed" in body:
        sim.reseed(int(body["seed"]))
    options: dict[str, object] = {
        "replay_rate": sim.knobs.delta_replay_rate,
        "empty_page_rate": sim.knobs.delta_empty_page_rate,
        "page_size_jitter": sim.knobs.delta_page_size_jitter,
    }
    if options != sim.directory.delta_options:
        sim.directory.delta_options = options
        for box in sim.directory.every_calendar():
            for name, value in options.items():
                setattr(box.delta, name, value)
    sim.delivery.wake()
    return sim.knobs.as_dict()


def faults(sim: Simulator, request: Request, body: Body) -> Any:
    if request.method == "DELETE":
        sim.faults.rules.clear()
        return None
    rule = sim.faults.add(body)
    return {"queued": len(sim.faults.rules), "status": rule.status}


def advance(sim: Simulator, request: Request, body: Body) -> Any:
    if request.method == "POST":
        sim.clock.advance(float(body["seconds"]))
        sim.subscriptions.purge_expired()
        sim.delivery.wake()
    return {"now": format_timestamp(sim.clock.now()), "offset_s": sim.clock.offset_s}


def counters(sim: Simulator, request: Request, body: Body) -> Any:
    if request.method == "POST":
        sim.counters.reset()
        return None
    snap = sim.counters.snapshot()
    snap["delivery_pending"] = sim.delivery.pending()
    snap["delivery_idle"] = sim.delivery.idle()
    return snap


def expire_delta(sim: Simulator, request: Request, body: Body) -> Any:
    box = _box(sim, request)
    return {"expired": box.delta.expire(body.get("token"))}


def lifecycle(sim: Simulator, request: Request, body: Body) -> Any:
    sub = sim.subscriptions.by_id.get(request.path_params["sub_id"].lower())
    if sub is None:
        raise ValueError(f"no live subscription {request.path_params['sub_id']!r}")
    return {"sent": sim.subscriptions.lifecycle(sub, body["event"])}


def subscriptions(sim: Simulator, request: Request, body: Body) -> Any:
    sim.subscriptions.purge_expired()
    return {
        "value": [
            {**s.as_graph(sim.urls.graph_base_url, with_client_state=False), "paused": s.paused}
            for s in sim.subscriptions.by_id.values()
        ]
    }


def bulk_subscriptions(sim: Simulator, request: Request, body: Body) -> Any:
    """{user | users, client_id, count, notification_url?, lifecycle_url?, client_state?,
    lifetime_s?, spread_s?}: live subscriptions without a handshake (quota tests; seeding many
    mailboxes for the renewal benchmark, whose lifecycle notifications then reach the app with
    `client_state`). Each expires `lifetime_s` (default 2 days) minus up to `spread_s` from now;
    the answer has the mailbox's count (one user) or each user's new ids (`users`)."""
    users = list(body.get("users") or [body["user"]])
    lifetime = float(body.get("lifetime_s") or 2 * 86400)
    spread = float(body.get("spread_s") or 0)
    url = str(body.get("notification_url") or "https://127.0.0.1:9/bulk")
    lifecycle_url = body.get("lifecycle_url") or None
    client_state = body.get("client_state") or None
    made: dict[str, list[str]] = {}
    for user in users:
        box = sim.directory.mailbox_for(user)
        for i in range(int(body["count"])):
            sub = sim.subscriptions.add(
                app_id=body["client_id"],
                tenant_id=box.user.tenant_id,
                mailbox_id=box.user.id,
                resource=f"users/{box.user.id}/events",
                change_type="created,updated,deleted" if "users" in body else "created",
                change_types=frozenset({f"bulk-{i}"})
                if "users" not in body
                else frozenset({"created", "updated", "deleted"}),
                notification_url=url,
                lifecycle_url=None if lifecycle_url is None else str(lifecycle_url),
                client_state=None if client_state is None else str(client_state),
                expiration=sim.clock.now()
                + timedelta(seconds=lifetime - spread * sim.rng.random()),
                latest_tls="v1_2",
                creator_id=body["client_id"],
            )
            made.setdefault(user, []).append(sub.id)
    if "users" in body:
        return {"ids": made}
    box = sim.directory.mailbox_for(users[0])
    return {"count": sim.subscriptions.count_for_mailbox(box.user.id)}


def deliveries(sim: Simulator, request: Request, body: Body) -> Any:
    since = int(request.query_params.get("since", "0"))
    log = list(sim.delivery.log)
    return {
        "next": len(log),
        "entries": log[since:],
        "idle": sim.delivery.idle(),
        "endpoints": {url: sim.delivery.classify(url) for url in sim.delivery.health},
    }


def health(sim: Simulator, request: Request, body: Body) -> Any:
    return {"ok": True, "now": format_timestamp(sim.clock.now())}


def routes() -> list[Route]:
    p = "/_sim"
    table: list[tuple[str, Action, list[str]]] = [
        (
            "/health",
            lambda sim, r, b: {"ok": True, "now": format_timestamp(sim.clock.now())},
            ["GET"],
        ),
        ("/seed", seed, ["POST"]),
        ("/consents", consent, ["POST"]),
        ("/access-policies", access_policy, ["POST"]),
        ("/apps/{client_id}/secrets", app_secret, ["POST"]),
        ("/users/{user}/calendars", add_calendar, ["POST"]),
        ("/users/{user}/events", create_event, ["POST"]),
        ("/users/{user}/events/list", list_events, ["GET"]),
        ("/users/{user}/events/bulk", bulk_events, ["POST"]),
        ("/users/{user}/events/update", update_event, ["POST"]),
        ("/users/{user}/events/delete", delete_event, ["POST"]),
        ("/users/{user}/events/cancel", cancel_event, ["POST"]),
        ("/users/{user}/events/move", move_event, ["POST"]),
        ("/users/{user}/events/invite", invite, ["POST"]),
        ("/users/{user}/delta/expire", expire_delta, ["POST"]),
        ("/knobs", knobs, ["GET", "POST"]),
        ("/faults", faults, ["POST", "DELETE"]),
        ("/clock", advance, ["GET"]),
        ("/clock/advance", advance, ["POST"]),
        ("/counters", counters, ["GET"]),
        ("/counters/reset", counters, ["POST"]),
        ("/subscriptions", subscriptions, ["GET"]),
        ("/subscriptions/bulk", bulk_subscriptions, ["POST"]),
        ("/subscriptions/{sub_id}/lifecycle", lifecycle, ["POST"]),
        ("/deliveries", deliveries, ["GET"]),
        ("/throttle/reset", lambda sim, r, b: sim.throttle.reset(), ["POST"]),
    ]
    return [Route(p + path, _action(fn), methods=methods) for path, fn, methods in table]
