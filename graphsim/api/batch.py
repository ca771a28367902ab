"""`POST /$batch`: JSON batching of up to 20 Graph requests (https://learn.microsoft.com/graph/json-batching).

Rule: the outer answer is 200 whenever the batch parses; each inner request runs through the
same pipeline as a direct one (token, permission, throttle, faults), so it can get its own 429.
Outlook runs at most 4 inner requests per mailbox at a time (throttling-limits, "Outlook service
limits"), `dependsOn` orders requests and a failed dependency answers 424. Inner responses come
back in completion order, not request order (the docs promise no order).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import urlsplit

from graphsim.api.calls import GraphCall, GraphResult
from graphsim.api.pipeline import ANY_APP, Ctx, dispatch, route
from graphsim.errors import GraphRequestError

_METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}
_MAILBOX = re.compile(r"^/users/([^/?]+)", re.IGNORECASE)


def _bad(message: str) -> GraphRequestError:
    return GraphRequestError(400, "BadRequest", message)


def _parse(ctx: Ctx) -> list[dict[str, Any]]:
    body = ctx.call.json()
    requests = body.get("requests")
    limit = ctx.sim.knobs.batch_max_requests
    if not isinstance(requests, list) or not requests:
        raise _bad("The batch body needs a non-empty 'requests' array.")
    if len(requests) > limit:
        raise _bad(f"The number of requests in a batch exceeds the limit of {limit}.")
    seen: set[str] = set()
    for item in requests:
        if not isinstance(item, dict):
            raise _bad("Each batch request must be a JSON object.")
        rid, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(rid, str) or not rid:
            raise _bad("Each batch request needs a string 'id'.")
        if rid in seen:
            raise _bad(f"Batch request ids must be unique; '{rid}' repeats.")
        seen.add(rid)
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise _bad(f"Batch request '{rid}' has an invalid method {method!r}.")
        if not isinstance(url, str) or not url or "://" in url:
            raise _bad(f"Batch request '{rid}' needs a relative 'url' such as '/users/{{id}}'.")
        headers = item.get("headers", {})
        if not isinstance(headers, dict):
            raise _bad(f"Batch request '{rid}' has headers that are not an object.")
        lowered = {str(k).lower() for k in headers}
        if item.get("body") is not None and "content-type" not in lowered:
            raise _bad(f"Write request id : {rid} does not contain Content-Type header or body.")
        depends = item.get("dependsOn", [])
        if not isinstance(depends, list) or any(d not in seen - {rid} for d in depends):
            raise _bad(f"Batch request '{rid}' depends on an unknown or later request id.")
    return requests


def _inner_call(ctx: Ctx, item: dict[str, Any]) -> GraphCall:
    parts = urlsplit(item["url"] if item["url"].startswith("/") else "/" + item["url"])
    path = parts.path
    if path.lower().startswith("/v1.0/"):
        path = path[5:]
    headers = {str(k).lower(): str(v) for k, v in item.get("headers", {}).items()}
    headers["authorization"] = ctx.call.headers.get("authorization", "")
    body = item.get("body")
    raw = json.dumps(body).encode() if body is not None else b""
    return GraphCall(item["method"].upper(), path, parts.query, headers, raw)


@route("POST", "/$batch", "batch", ANY_APP)
async def batch(ctx: Ctx) -> GraphResult:
    requests = _parse(ctx)
    sim = ctx.sim
    gates: dict[str, asyncio.Semaphore] = {}
    done: dict[str, asyncio.Future[int]] = {
        item["id"]: asyncio.get_running_loop().create_future() for item in requests
    }
    responses: list[dict[str, Any]] = []

    async def run(item: dict[str, Any]) -> None:
        rid = item["id"]
        for dep in item.get("dependsOn", []):
            if await done[dep] >= 400:
                responses.append(
                    {
                        "id": rid,
                        "status": 424,
                        "headers": {"Content-Type": "application/json"},
                        "body": {
                            "error": {
                                "code": "FailedDependency",
                                "message": f"Request '{dep}' failed.",
                            }
                        },
                    }
                )
                done[rid].set_result(424)
                return
        call = _inner_call(ctx, item)
        found = _MAILBOX.match(call.raw_path)
        key = found.group(1).lower() if found else ""
        gate = gates.setdefault(key, asyncio.Semaphore(sim.knobs.batch_parallel_per_mailbox))
        async with gate:
            result, endpoint, mailbox_id = await dispatch(sim, call)
        sim.counters.request(endpoint, result.status, mailbox_id)
        headers = {
            k: v
            for k, v in result.headers.items()
            if k.lower() not in ("request-id", "client-request-id")
        }
        if result.body is not None:
            headers["Content-Type"] = "application/json"
        entry: dict[str, Any] = {"id": rid, "status": result.status, "headers": headers}
        if result.body is not None:
            entry["body"] = result.body
        responses.append(entry)
        done[rid].set_result(result.status)

    await asyncio.gather(*(run(item) for item in requests))
    return GraphResult(200, {"responses": responses})
