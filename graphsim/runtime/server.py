"""The simulator's one HTTPS origin as an ASGI app: Entra, Graph (/v1.0), Key Vault (/secrets)
and the control API (/_sim).

Rule: Graph requests become `GraphCall`s and go through `api.pipeline.dispatch`, the one place
where a
GraphRequestError turns into Graph's JSON error body (with innerError date/request-id) and where
`request-id` / `client-request-id` headers are set. Nothing slow happens per request: no
middleware, JWT checks cached by token string, counters as dict increments.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

# Importing the Graph handler modules registers their routes with the pipeline.
from graphsim.api import (  # noqa: F401
    applications,
    batch,
    control,
    delta,
    entra,
    events,
    keyvault,
    places,
    schedule,
    subscriptions,
)
from graphsim.api.calls import GraphCall, encode_json
from graphsim.api.pipeline import dispatch
from graphsim.simulator import Simulator

GRAPH_PREFIX = "/v1.0"
JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
JSON_TYPE_BYTES = JSON_TYPE.encode()


async def graph_asgi(sim: Simulator, scope: Scope, receive: Receive, send: Send) -> None:
    """Graph requests skip Starlette's router and Request/Response objects: this is the hot
    path of every benchmark."""
    raw_path = scope.get("raw_path") or scope["path"].encode()
    path = raw_path.decode("latin-1").split("?", 1)[0][len(GRAPH_PREFIX) :]
    if path.lower() == "/%24batch":
        path = "/$batch"
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    method = scope["method"]
    body = b""
    if method in ("POST", "PATCH", "PUT"):
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
    call = GraphCall(method, path, scope["query_string"].decode("latin-1"), headers, body)
    result, endpoint, mailbox_id = await dispatch(sim, call)
    sim.counters.request(endpoint, result.status, mailbox_id)
    out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()]
    if result.body is None:
        content = b""
    elif isinstance(result.body, str):
        content = result.body.encode()
        out.append((b"content-type", b"text/plain; charset=utf-8"))
    else:
        content = result.raw or encode_json(result.body)
        out.append((b"content-type", JSON_TYPE_BYTES))
        out.append((b"odata-version", b"4.0"))
    out.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": result.status, "headers": out})
    await send({"type": "http.response.body", "body": content})


async def not_found(request: Request) -> Response:
    return Response(
        json.dumps(
            {
                "error": {
                    "code": "NotFound",
                    "message": f"No simulator route for {request.url.path}.",
                }
            }
        ),
        status_code=404,
        media_type="application/json",
    )


def build_app(sim: Simulator) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await sim.delivery.start()
        try:
            yield {}
        finally:
            await sim.delivery.stop()

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    routes = [
        Route("/secrets/{name}", keyvault.get_secret, methods=["GET"]),
        Route("/secrets/{name}/", keyvault.get_secret, methods=["GET"]),
        Route("/secrets/{name}/{version}", keyvault.get_secret, methods=["GET"]),
        *control.routes(),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", entra.openid_configuration),
        Route("/{tenant}/oauth2/v2.0/token", entra.token, methods=["POST"]),
        Route("/{tenant}/discovery/v2.0/keys", entra.jwks),
        Route("/{path:path}", not_found, methods=methods),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = sim
    graph_root = GRAPH_PREFIX + "/"

    async def root(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(graph_root):
            await graph_asgi(sim, scope, receive, send)
        else:
            await app(scope, receive, send)

    return root
