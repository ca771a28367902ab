"""The HTTP front of the dev host: an ASGI app serving the app's HTTP triggers under /<prefix>.

Rule: requests reach the function as the worker would build them (`func.HttpRequest` with the
full URL, headers, query, route params and the body bytes untouched) and its `func.HttpResponse`
goes back as the worker encodes it (no content-type: the mimetype, with the charset for text/*).
Auth levels as the host applies them: `anonymous` needs nothing; `function` needs the function
key or the master key, in the `code` query parameter or the `x-functions-key` header; `admin`
needs the master key. Locally the keys are the DEVHOST_FUNCTION_KEY and DEVHOST_MASTER_KEY
settings. Unknown routes (404), wrong methods (405 with Allow), missing keys (401) and a
function that raised (500) get RFC 9457 problem bodies. Key values are never logged or echoed.
POST /admin/functions/<name> (master key) runs a timer or queue function now, as on the host.
Doc: https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#authorization-level
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence

import azure.functions as func
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from devhost.admin import ADMIN_PATH, admin_input, trigger_value
from devhost.discovery import FunctionSpec
from devhost.invoke import Invoker
from devhost.routes import RouteTable
from devhost.settings import FUNCTION_KEY_SETTING, MASTER_KEY_SETTING

log = logging.getLogger("calsync.devhost")
_REASON = "This function was programmatically called via the host APIs."


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(
        json.dumps(body), status, headers=dict(headers or {}), media_type="application/problem+json"
    )


class HttpFront:
    """ASGI app: route, check the key, build the request, invoke, encode the response."""

    def __init__(
        self,
        specs: Sequence[FunctionSpec],
        invoker: Invoker,
        settings: Mapping[str, str],
        route_prefix: str = "api",
    ) -> None:
        self.invoker = invoker
        self.settings = settings
        self.routes: RouteTable[FunctionSpec] = RouteTable(route_prefix)
        self.by_name = {spec.name.lower(): spec for spec in specs}
        for spec in specs:
            if spec.trigger_type == "httpTrigger" and not spec.unsupported:
                self.routes.add(spec.route or spec.name, spec, spec.methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off; websockets are not a Functions thing
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        method, path = request.method, str(request.scope["path"])  # percent-decoded, as routed
        admin = ADMIN_PATH.match(path)
        if admin:  # the host reserves /admin, whatever the route prefix
            return await self.run_admin(admin.group("name"), request)
        found = self.routes.match(method, path)
        if found is None:
            return problem(404, "Not Found", f"no function serves {path}")
        if isinstance(found, set):
            allowed = ", ".join(sorted(found))
            detail = f"{path} does not accept {method}; it accepts {allowed}"
            return problem(405, "Method Not Allowed", detail, {"Allow": allowed})
        spec, route_params = found
        denied = self._check_key(spec.auth_level, request, spec.name)
        if denied:
            return problem(401, "Unauthorized", denied)
        headers: dict[str, str] = {}
        for name, value in request.headers.items():  # repeated headers are joined, as by the host
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        req = func.HttpRequest(
            method,
            str(request.url),
            headers=headers,
            params=dict(request.query_params),
            route_params=route_params,
            body=await request.body(),
        )
        try:
            result = await self.invoker.invoke(spec, req, _REASON)
        except Exception as exc:  # already logged with its traceback by the invoker
            return problem(500, "Function Failed", f"{spec.name} raised {type(exc).__name__}")
        return encode_response(spec, result)

    async def run_admin(self, name: str, request: Request) -> Response:
        """POST /admin/functions/<name>: run a timer or queue function now (see admin.py)."""
        if request.method != "POST":
            return problem(405, "Method Not Allowed", "POST runs a function", {"Allow": "POST"})
        denied = self._check_key("admin", request, "the admin API")
        if denied:
            return problem(401, "Unauthorized", denied)
        spec = self.by_name.get(name.lower())
        if spec is None:
            return problem(404, "Not Found", f"no function is named {name!r}")
        if spec.unsupported or spec.trigger_type not in ("timerTrigger", "queueTrigger"):
            detail = f"{spec.name} is not a timer or queue function; call its route instead"
            return problem(400, "Bad Request", detail)
        text = admin_input(await request.body())
        if text is None:
            return problem(400, "Bad Request", 'send a JSON body {"input": "<string>"}')
        with contextlib.suppress(Exception):  # logged by the invoker; the host answers 202 anyway
            await self.invoker.invoke(spec, trigger_value(spec, text), _REASON)
        return Response(status_code=202)

    def _check_key(self, level: str, request: Request, what: str) -> str | None:
        """None if the request may call at this auth level; otherwise why not (no key values)."""
        if level == "anonymous":
            return None
        given = request.headers.get("x-functions-key") or request.query_params.get("code") or ""
        master = self.settings.get(MASTER_KEY_SETTING, "")
        keys = (
            [master] if level == "admin" else [master, self.settings.get(FUNCTION_KEY_SETTING, "")]
        )
        if given and any(k and hmac.compare_digest(given, k) for k in keys):
            return None
        kind, setting = (
            ("the master key", MASTER_KEY_SETTING)
            if level == "admin"
            else ("a function key", FUNCTION_KEY_SETTING)
        )
        return (
            f"{what} needs {kind}: send it in the x-functions-key header or the code query "
            f"parameter (locally the value of the {setting} setting)"
        )


def encode_response(spec: FunctionSpec, result: object) -> Response:
    """A function's return value as the worker encodes it (HttpResponse or str)."""
    if isinstance(result, str):
        return Response(result, 200, media_type="text/plain; charset=utf-8")
    if not isinstance(result, func.HttpResponse):
        detail = f"{spec.name} returned {type(result).__name__}; return a func.HttpResponse"
        return problem(500, "Function Failed", detail)
    pairs = [(k.lower(), v) for k, v in result.headers.items() if k.lower() != "content-length"]
    if not any(k == "content-type" for k, _ in pairs):
        mimetype, charset = result.mimetype, result.charset
        pairs.append(
            (
                "content-type",
                f"{mimetype}; charset={charset}" if mimetype.startswith("text/") else mimetype,
            )
        )
    response = Response(result.get_body(), result.status_code)
    response.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
    response.raw_headers.append((b"content-length", str(len(result.get_body())).encode()))
    return response
