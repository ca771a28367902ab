"""A small FunctionApp that exercises every path of the dev host (tests only).

HTTP functions at each auth level with route parameters, a timer every second and a run-on-startup
timer that record their firings in an Azurite table, and a queue trigger that records each
attempt and fails on `{"fail": true}`, on a body that is not JSON, or while its dequeue count is
below `fail_until`. Storage comes from the AzureWebJobsStorage app setting, read at call time.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from functools import cache

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

TICKS = "devhostticks"
ATTEMPTS = "devhostattempts"
WORK_QUEUE = "devhost-work"
STORAGE_SETTING = "AzureWebJobsStorage"

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@cache
def table(name: str) -> TableClient:
    client = TableClient.from_connection_string(os.environ[STORAGE_SETTING], name)
    with contextlib.suppress(ResourceExistsError):
        client.create_table()
    return client


def echo(req: func.HttpRequest, **extra: object) -> func.HttpResponse:
    body = {
        "method": req.method,
        "url": req.url,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "body": req.get_body().decode("latin-1"),
        "content_type": req.headers.get("content-type"),
        "x_multi": req.headers.get("x-multi"),
        **extra,
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="anon/{item_id:int}", methods=["GET", "POST"], auth_level="ANONYMOUS")
def anon_item(req: func.HttpRequest) -> func.HttpResponse:
    return echo(req)


@app.route(route="keyed/{name}", methods=["GET"])  # the app's default level: function
def keyed(req: func.HttpRequest) -> func.HttpResponse:
    return echo(req)


@app.route(route="admin/{name}", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return echo(req)


@app.route(route="files/{*path}", auth_level="ANONYMOUS")  # no methods: any method
def files(req: func.HttpRequest) -> func.HttpResponse:
    return echo(req)


@app.route(route="opt/{name?}", methods=["GET"], auth_level="ANONYMOUS")
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return echo(req)


@app.route(route="opt/special", methods=["GET"], auth_level="ANONYMOUS")
def special(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("special", headers={"X-Custom": "yes"})


@app.function_name("async_context")
@app.route(route="async/{x}", methods=["GET"], auth_level="ANONYMOUS")
async def async_echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return echo(req, function_name=context.function_name, invocation_id=context.invocation_id)


@app.route(route="boom", methods=["GET"], auth_level="ANONYMOUS")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


@app.route(route="enqueue", methods=["POST"], auth_level="ANONYMOUS")
@app.queue_output(arg_name="out", queue_name=WORK_QUEUE, connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)


@app.timer_trigger(arg_name="timer", schedule="* * * * * *")
def tick(timer: func.TimerRequest) -> None:
    now = time.time()
    table(TICKS).create_entity(
        {"PartitionKey": "tick", "RowKey": f"{now:.6f}", "at": now, "past_due": timer.past_due}
    )


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def on_startup(timer: func.TimerRequest) -> None:
    now = time.time()
    table(TICKS).create_entity({"PartitionKey": "startup", "RowKey": f"{now:.6f}", "at": now})


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")  # yearly: run by the admin API
def yearly(timer: func.TimerRequest) -> None:
    now = time.time()
    table(TICKS).create_entity(
        {"PartitionKey": "yearly", "RowKey": f"{now:.6f}", "at": now, "past_due": timer.past_due}
    )


@app.queue_trigger(arg_name="msg", queue_name=WORK_QUEUE, connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    text = msg.get_body().decode("utf-8", errors="replace")
    table(ATTEMPTS).create_entity(
        {
            "PartitionKey": msg.id,
            "RowKey": f"{msg.dequeue_count:03d}",
            "body": text,
            "at": time.time(),
        }
    )
    doc = json.loads(text)  # raises on a body that is not JSON
    if doc.get("fail") or msg.dequeue_count < doc.get("fail_until", 0):
        raise RuntimeError(f"asked to fail (dequeue count {msg.dequeue_count})")
