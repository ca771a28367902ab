"""The Functions app: trigger declarations only. Each function pulls plain values out of its
trigger, calls one service function in `shared/`, and maps the result or a project error to a
response. No Graph JSON is parsed here."""

from __future__ import annotations

import os

import azure.functions as func

from shared import web
from shared.services.health import run_health

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness/readiness probe: settings sanity and storage reachability; 503 when unhealthy."""
    report = run_health(os.environ)
    return web.json_response(report.body, status=200 if report.ok else 503)
