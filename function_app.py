"""The Functions app: trigger declarations only. Each function pulls plain values out of its
trigger, calls one service function in `shared/`, and maps the result or a project error to a
response. No Graph JSON is parsed here; services are built once per process by shared.compose."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import azure.functions as func

from shared import web
from shared.errors import InputError
from shared.names import DELIVERY_QUEUE, STORAGE_CONNECTION, SYNC_QUEUE, WRITES_QUEUE
from shared.services.health import run_health

if TYPE_CHECKING:
    from shared.compose import Services

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("calsync")

# NCRONTAB, six fields, seconds first (Functions timer trigger syntax).
POLL_SCHEDULE = "*/30 * * * * *"
RENEW_SCHEDULE = "0 */15 * * * *"
DAILY_SCHEDULE = "0 5 0 * * *"
SWEEP_SCHEDULE = "20 */5 * * * *"


def _services() -> Services:
    from shared.compose import services

    return services()


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness/readiness probe: settings sanity and storage reachability; 503 when unhealthy."""
    report = run_health(os.environ)
    return web.json_response(report.body, status=200 if report.ok else 503)


@app.function_name("openapi")
@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.answered
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """The API's OpenAPI 3.1 document (anonymous: no secret in it; tools discover the API)."""
    from shared.services.apidoc import openapi_document

    return web.read_response(req, openapi_document())


async def _graph_callback(req: func.HttpRequest, kind: str) -> func.HttpResponse:
    """Graph's two callbacks: the validation handshake, or a batch of notifications. A coroutine,
    so that the host awaits it on its event loop (as the Python worker does) and the storage work
    runs on the intake's own executor, never queued behind the sync worker's thread pool."""
    from shared.services import intake

    try:
        token = req.params.get("validationToken")
        if token is not None:
            return web.text_response(intake.validation_echo(token).text or "")
        result = await intake.run_callback(_services, kind, req.get_body())
        return func.HttpResponse(status_code=result.status)
    except Exception as exc:
        return web.intake_error(exc)


@app.function_name("notifications")
@app.route(route="notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Graph change notifications (anonymous: Graph sends no keys; clientState is checked)."""
    return await _graph_callback(req, "change")


@app.function_name("lifecycle")
@app.route(route="lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def lifecycle(req: func.HttpRequest) -> func.HttpResponse:
    """Graph lifecycle notifications: reauthorize, recreate or resync, via the queue."""
    return await _graph_callback(req, "lifecycle")


@app.function_name("ews_notifications")
@app.route(
    route="ews/notifications/{tenant}/{user}",
    methods=["POST"],
    auth_level=func.AuthLevel.ANONYMOUS,
)
@web.answered
def ews_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """EWS push notifications (anonymous: Exchange sends no keys; the subscription id is
    checked against the mailbox's): a hint that queues a round, answered in SOAP."""
    from shared.services.ews_push import run_notification

    tenant, user = req.route_params.get("tenant", ""), req.route_params.get("user", "")
    status, body = run_notification(_services(), tenant, user, req.get_body())
    return func.HttpResponse(body, status_code=status, mimetype="text/xml", charset="utf-8")


@app.function_name("mailboxes_list")
@app.route(route="mailboxes", methods=["GET"])
@web.answered
def mailboxes_list(req: func.HttpRequest) -> func.HttpResponse:
    """All enrolled mailboxes, each with a one-line health."""
    from shared.services import mailboxes

    return web.json_response({"value": mailboxes.list_all(_services())})


@app.function_name("mailbox")
@app.route(route="mailboxes/{tenant}/{user}", methods=["GET", "PUT", "DELETE"])
@web.answered
def mailbox(req: func.HttpRequest) -> func.HttpResponse:
    """GET status; PUT enrol or change options (JSON body); DELETE stop (?purge=true drops data)."""
    from shared.services import mailboxes

    tenant, user = req.route_params["tenant"], web.mailbox_ref(req)
    svc = _services()
    if req.method == "PUT":
        body = web.json_body(req) if req.get_body() else {}
        view, created = mailboxes.enrol(svc, tenant, user, body)
        return web.json_response(view, status=201 if created else 200)
    if req.method == "DELETE":
        purge = web.flag(req, "purge")
        return web.json_response(mailboxes.remove(svc, tenant, user, purge=purge))
    return web.read_response(req, mailboxes.status(svc, tenant, user))


@app.function_name("mailbox_resync")
@app.route(route="mailboxes/{tenant}/{user}/resync", methods=["POST"])
@web.answered
def mailbox_resync(req: func.HttpRequest) -> func.HttpResponse:
    """Queue a full resync of the mailbox's window."""
    from shared.services import mailboxes

    result = mailboxes.resync(_services(), req.route_params["tenant"], web.mailbox_ref(req))
    return web.json_response(result, status=202)


@app.function_name("mailbox_events")
@app.route(route="mailboxes/{tenant}/{user}/events", methods=["GET"])
@web.answered
def mailbox_events(req: func.HttpRequest) -> func.HttpResponse:
    """The mirrored events as stored, optionally within ?start=&end= (ISO 8601)."""
    from shared.services import mailboxes

    result = mailboxes.events(
        _services(),
        req.route_params["tenant"],
        web.mailbox_ref(req),
        req.params.get("start"),
        req.params.get("end"),
    )
    return web.read_response(req, result)


@app.function_name("mailbox_agenda")
@app.route(route="mailboxes/{tenant}/{user}/agenda", methods=["GET"])
@web.answered
def mailbox_agenda(req: func.HttpRequest) -> func.HttpResponse:
    """The mailbox's events in ?start=&end= (default today in its zone), normalised, by start."""
    from shared.services import reads

    result = reads.agenda(
        _services(),
        req.route_params["tenant"],
        web.mailbox_ref(req),
        req.params.get("start"),
        req.params.get("end"),
    )
    return web.read_response(req, result)


@app.function_name("mailbox_freebusy")
@app.route(route="mailboxes/{tenant}/{user}/freebusy", methods=["GET"])
@web.answered
def mailbox_freebusy(req: func.HttpRequest) -> func.HttpResponse:
    """availabilityView (getSchedule's digits) and items for ?start=&end=&interval=."""
    from shared.services import reads

    result = reads.freebusy(
        _services(),
        req.route_params["tenant"],
        web.mailbox_ref(req),
        req.params.get("start"),
        req.params.get("end"),
        req.params.get("interval"),
    )
    return web.read_response(req, result)


@app.function_name("mailbox_changes")
@app.route(route="mailboxes/{tenant}/{user}/changes", methods=["GET"])
@web.answered
def mailbox_changes(req: func.HttpRequest) -> func.HttpResponse:
    """The mailbox's change feed after ?after= (a cursor from an earlier page), oldest first."""
    from shared.services import feed

    result = feed.read(
        _services(),
        req.route_params["tenant"],
        web.mailbox_ref(req),
        req.params.get("after"),
        req.params.get("limit"),
    )
    return web.read_response(req, result)


@app.function_name("subscriptions_list")
@app.route(route="subscriptions", methods=["GET"])
@web.answered
def subscriptions_list(req: func.HttpRequest) -> func.HttpResponse:
    """Stored subscriptions with expiry and state (?tenant=&mailbox=); ?graph=true compares
    them with Graph's own list."""
    from shared.services import subscription_admin

    return web.json_response(subscription_admin.list_view(_services(), dict(req.params)))


@app.function_name("subscriptions_renew")
@app.route(route="subscriptions/renew", methods=["POST"])
@web.answered
def subscriptions_renew(req: func.HttpRequest) -> func.HttpResponse:
    """Renew now the subscriptions of {tenant?, mailbox?} (all when the body is empty)."""
    from shared.services import subscription_admin

    body = web.json_body(req) if req.get_body() else {}
    return web.json_response(subscription_admin.renew_now(_services(), body))


@app.function_name("events_by_ical_uid")
@app.route(route="events", methods=["GET"])
@web.answered
def events_by_ical_uid(req: func.HttpRequest) -> func.HttpResponse:
    """The mirrored events with ?iCalUId= across ?tenant='s enrolled mailboxes (one meeting)."""
    from shared.services import icaluid_index

    result = icaluid_index.find(_services(), req.params.get("tenant"), req.params.get("iCalUId"))
    return web.read_response(req, result)


@app.function_name("tenant_changes")
@app.route(route="tenants/{tenant}/changes", methods=["GET"])
@web.answered
def tenant_changes(req: func.HttpRequest) -> func.HttpResponse:
    """Every mailbox's changes of a tenant after ?after= (one opaque cursor), ?limit= a page."""
    from shared.services import tenant_feed

    result = tenant_feed.read(
        _services(),
        req.route_params["tenant"],
        req.params.get("after"),
        req.params.get("limit"),
    )
    return web.read_response(req, result)


@app.function_name("mailbox_calendars")
@app.route(route="mailboxes/{tenant}/{user}/calendars", methods=["GET"])
@web.answered
def mailbox_calendars(req: func.HttpRequest) -> func.HttpResponse:
    """The mailbox's calendars live from Graph: owner, default, what the app may do."""
    from shared.services import connector

    tenant, user = req.route_params["tenant"], web.mailbox_ref(req)
    return web.json_response(connector.calendars(_services(), tenant, user))


@app.function_name("mailbox_live")
@app.route(route="mailboxes/{tenant}/{user}/live", methods=["GET"])
@web.answered
def mailbox_live(req: func.HttpRequest) -> func.HttpResponse:
    """The mailbox's events in ?start=&end= live from Graph (not the mirror)."""
    from shared.services import connector

    tenant, user = req.route_params["tenant"], web.mailbox_ref(req)
    result = connector.live_events(
        _services(), tenant, user, req.params.get("start"), req.params.get("end")
    )
    return web.json_response(result)


@app.function_name("mailbox_live_event")
@app.route(route="mailboxes/{tenant}/{user}/live/{event}", methods=["GET"])
@web.answered
def mailbox_live_event(req: func.HttpRequest) -> func.HttpResponse:
    """One event of the mailbox live from Graph."""
    from shared.services import connector

    tenant, user = req.route_params["tenant"], web.mailbox_ref(req)
    event = req.route_params["event"]
    return web.json_response(connector.live_event(_services(), tenant, user, event))


@app.function_name("mailbox_graph")
@app.route(route="mailboxes/{tenant}/{user}/graph", methods=["POST"])
@web.answered
def mailbox_graph(req: func.HttpRequest) -> func.HttpResponse:
    """A raw Graph request within the mailbox: {method, path, query?, body?, caller?}; Graph's
    status and body come back in the answer (`status`, `body`, `retryAfter`)."""
    from shared.services import connector

    tenant, user = req.route_params["tenant"], web.mailbox_ref(req)
    return web.json_response(connector.raw(_services(), tenant, user, web.json_body(req)))


@app.function_name("now")
@app.route(route="now", methods=["POST"])
@web.answered
def now(req: func.HttpRequest) -> func.HttpResponse:
    """Status, current and next appointment of up to 500 mailboxes, from the mirror."""
    from shared.services import reads

    return web.read_response(req, reads.now(_services(), web.json_body(req)))


@app.function_name("webhooks")
@app.route(route="webhooks", methods=["GET", "POST"])
@web.answered
def webhooks(req: func.HttpRequest) -> func.HttpResponse:
    """GET the change feed's webhook subscribers; POST one (the answer shows its secret once)."""
    from shared.services import webhooks as hooks

    svc = _services()
    if req.method == "POST":
        return web.json_response(hooks.add(svc, web.json_body(req)), status=201)
    return web.json_response({"value": hooks.list_all(svc)})


@app.function_name("webhook")
@app.route(route="webhooks/{id}", methods=["GET", "DELETE"])
@web.answered
def webhook(req: func.HttpRequest) -> func.HttpResponse:
    """GET a subscriber with its delivery state per mailbox; DELETE it."""
    from shared.services import webhooks as hooks

    svc, subscriber_id = _services(), req.route_params["id"]
    if req.method == "DELETE":
        return web.json_response(hooks.remove(svc, subscriber_id))
    return web.json_response(hooks.show(svc, subscriber_id))


@app.function_name("webhook_replay")
@app.route(route="webhooks/{id}/replay", methods=["POST"])
@web.answered
def webhook_replay(req: func.HttpRequest) -> func.HttpResponse:
    """Deliver again the subscriber's dead letters, or a range of one mailbox's feed."""
    from shared.services import webhooks as hooks

    body = web.json_body(req) if req.get_body() else {}
    result = hooks.replay(_services(), req.route_params["id"], body)
    return web.json_response(result, status=202)


@app.function_name("sync_worker")
@app.queue_trigger(arg_name="msg", queue_name=SYNC_QUEUE, connection=STORAGE_CONNECTION)
def sync_worker(msg: func.QueueMessage) -> None:
    """One sync request: lease the mailbox, follow delta, apply, commit the cursor."""
    from shared.services.worker import run_queue_message

    run_queue_message(_services(), msg.get_body(), msg.dequeue_count or 1)


@app.function_name("webhook_worker")
@app.queue_trigger(arg_name="msg", queue_name=DELIVERY_QUEUE, connection=STORAGE_CONNECTION)
def webhook_worker(msg: func.QueueMessage) -> None:
    """One (subscriber, mailbox) work item: deliver its owed changes in order, signed."""
    from shared.services.delivery import run_work_item

    log.info("webhooks: %s", run_work_item(_services(), msg.get_body()))


@app.function_name("sweep_deliveries")
@app.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False)
def sweep_deliveries(timer: func.TimerRequest) -> None:
    """Queue deliveries for pairs behind the feed whose work item got lost."""
    from shared.services.delivery import run_sweep

    log.info("delivery sweep (webhooks, calendar-changes): %s", run_sweep(_services()))


@app.function_name("poll_mailboxes")
@app.timer_trigger(arg_name="timer", schedule=POLL_SCHEDULE, run_on_startup=False)
def poll_mailboxes(timer: func.TimerRequest) -> None:
    """Poll-mode mailboxes at their interval; retry subscribing the ones that fell back."""
    from shared.services.timers import run_poll

    log.info("poll: %s", run_poll(_services()))


@app.function_name("renew_subscriptions")
@app.timer_trigger(arg_name="timer", schedule=RENEW_SCHEDULE, run_on_startup=False)
def renew_subscriptions(timer: func.TimerRequest) -> None:
    """Renew subscriptions before expiry (spread, paced), recreate gone ones, drop orphans."""
    from shared.services.timers import run_renewals

    log.info("renewals: %s", run_renewals(_services()))


@app.function_name("daily_roll")
@app.timer_trigger(arg_name="timer", schedule=DAILY_SCHEDULE, run_on_startup=False)
def daily_roll(timer: func.TimerRequest) -> None:
    """Roll sync windows forward and run the safety-net resync that counts drift."""
    from shared.services.timers import run_daily

    log.info("daily roll: %s", run_daily(_services()))


@app.function_name("test_connection")
@app.route(route="diagnostics/test-connection", methods=["POST"])
@web.answered
def test_connection(req: func.HttpRequest) -> func.HttpResponse:
    """Test connection for a tenant and optionally a mailbox: each step with cause and fix."""
    from shared.services.diagnostics import run_test_connection

    body = web.json_body(req) if req.get_body() else {}
    if not isinstance(body, dict):
        raise InputError('the body must be a JSON object {"tenantId": ..., "mailbox": ...}')
    tenant, mailbox = body.get("tenantId", ""), body.get("mailbox") or ""
    if not isinstance(tenant, str) or not isinstance(mailbox, str):
        raise InputError("tenantId and mailbox must be strings")
    report = run_test_connection(_services(), tenant, mailbox)
    return web.json_response(report.as_dict())


@app.function_name("status_page")
@app.route(route="status", methods=["GET"])
@web.answered
def status_page(req: func.HttpRequest) -> func.HttpResponse:
    """The operator's status page: one self-contained HTML document."""
    from shared.services.status_page import run_status_page

    return web.html_response(run_status_page(_services()))


@app.function_name("operations_log")
@app.route(route="log", methods=["GET"])
@web.answered
def operations_log(req: func.HttpRequest) -> func.HttpResponse:
    """The operations log: notification POSTs received and Graph calls made, newest first,
    filtered by ?tenant=&user=&direction=in|out&since=&until=&top=."""
    from shared.services.oplog import run_log_query

    return web.json_response(run_log_query(_services(), dict(req.params)))


@app.function_name("mailbox_writes")
@app.route(route="mailboxes/{tenant}/{user}/writes", methods=["POST"])
@web.answered
def mailbox_writes(req: func.HttpRequest) -> func.HttpResponse:
    """Create, update, delete or cancel an event in the mailbox's calendar (JSON body; the
    Idempotency-Key header makes a retry return the same write)."""
    from shared.services import writes

    view, status = writes.run_write(
        _services(),
        req.route_params["tenant"],
        web.mailbox_ref(req),
        web.json_body(req),
        req.headers.get("idempotency-key"),
    )
    headers = {"Location": f"/api/writes/{view['id']}"}
    return web.json_response(view, status=status, headers=headers)


@app.function_name("write_status")
@app.route(route="writes/{id}", methods=["GET"])
@web.answered
def write_status(req: func.HttpRequest) -> func.HttpResponse:
    """A write by id: pending, done (with the event) or failed (with the reason)."""
    from shared.services import writes

    return web.json_response(writes.get_write(_services(), req.route_params["id"]))


@app.function_name("write_worker")
@app.queue_trigger(arg_name="msg", queue_name=WRITES_QUEUE, connection=STORAGE_CONNECTION)
def write_worker(msg: func.QueueMessage) -> None:
    """A queued write (throttled or failed transiently before): try it again."""
    from shared.services.writes import run_write_message

    log.info("%s", run_write_message(_services(), msg.get_body()))
