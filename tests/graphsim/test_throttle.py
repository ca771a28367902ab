"""Throttling, injected faults and $batch against the running simulator."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from simworld import Receiver, World

pytestmark = pytest.mark.integration


def calendar_path(world: World) -> str:
    return f"users/{world.user_id}/calendar"


def assert_too_many(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert float(response.headers["Retry-After"]) > 0
    error = response.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["message"] == "Please retry again later."
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_fifth_concurrent_request_per_mailbox_is_429(world: World) -> None:
    """With 4 requests in flight for one app+mailbox, more get 429 with Retry-After."""
    world.sim.control.knobs(latency_ms=1000)
    token = world.token()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=world.sim.graph_base_url + "/",
            verify=world.sim.ssl_context(),
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=10),
        ) as client:
            return list(await asyncio.gather(*(client.get(calendar_path(world)) for _ in range(6))))

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert_too_many(next(r for r in responses if r.status_code == 429))


def test_budget_per_window_is_429_until_the_window_slides(world: World) -> None:
    """Over the request budget (10,000 per 10 min; 5 here) is 429 until the window moves on."""
    world.sim.control.knobs(budget_requests=5)
    graph = world.graph()
    assert [graph.get(calendar_path(world)).status_code for _ in range(5)] == [200] * 5
    assert_too_many(graph.get(calendar_path(world)))
    other = world.users[list(world.users)[1]]
    assert graph.get(f"users/{other}/calendar").status_code == 200  # budgets are per mailbox
    world.sim.control.advance(601)
    assert world.graph().get(calendar_path(world)).status_code == 200


def test_subscription_writes_are_paced_per_tenant(world: World, receiver: Receiver) -> None:
    """Subscription creates over the per-app-per-tenant pace (500 per 20 s; 2 here) get 429."""
    world.sim.control.knobs(subscription_writes_per_window=2)
    now = dt.datetime.fromisoformat(world.sim.control.now().replace("0Z", "+00:00"))
    graph = world.graph()
    statuses = []
    for change in ("created", "updated", "deleted"):
        body = {
            "changeType": change,
            "notificationUrl": receiver.url,
            "resource": f"users/{world.user_id}/events",
            "expirationDateTime": (now + dt.timedelta(hours=2)).isoformat(),
        }
        statuses.append(graph.post("subscriptions", json=body).status_code)
    assert statuses == [201, 201, 429]


def test_injected_503_with_retry_after(world: World) -> None:
    """A queued 503 fault answers once with Retry-After and Graph's error body, then heals."""
    world.sim.control.fault(503, count=1, path_contains="/calendar", retry_after_s=2)
    graph = world.graph()
    failed = graph.get(calendar_path(world))
    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "2"
    assert failed.json()["error"]["code"] == "ServiceUnavailable"
    assert graph.get(calendar_path(world)).status_code == 200


def test_injected_504_rate(world: World) -> None:
    """fault_rate_504=1 makes every Graph request a 504 GatewayTimeout."""
    world.sim.control.knobs(fault_rate_504=1.0)
    response = world.graph().get(calendar_path(world))
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "GatewayTimeout"


def test_counters_by_endpoint_mailbox_and_status(world: World) -> None:
    """The control API counts requests per endpoint, per mailbox and per status."""
    graph = world.graph()
    graph.get(calendar_path(world))
    graph.get(f"users/{world.user_id}/nonsense")
    counters = world.sim.control.counters()
    assert counters["requests_by_endpoint"]["calendar.get"] == 1
    assert counters["requests_by_mailbox"][world.user_id] == 1
    assert counters["requests_by_status"]["400"] == 1
    assert counters["requests_by_endpoint_status"]["calendar.get 200"] == 1


def batch(world: World, requests: list[dict[str, object]]) -> httpx.Response:
    return world.graph().post("$batch", json={"requests": requests})


def test_batch_over_20_is_400(world: World) -> None:
    """A $batch of 21 requests is refused whole with 400."""
    requests = [
        {"id": str(i), "method": "GET", "url": f"/{calendar_path(world)}"} for i in range(21)
    ]
    assert batch(world, requests).status_code == 400


def test_batch_runs_inner_requests_and_inner_429s(world: World) -> None:
    """Outer 200; each inner request is throttled on its own (inner 429 with Retry-After)."""
    world.sim.control.knobs(budget_requests=3)
    requests = [
        {"id": str(i), "method": "GET", "url": f"/{calendar_path(world)}"} for i in range(5)
    ]
    response = batch(world, requests)
    assert response.status_code == 200
    inner = response.json()["responses"]
    assert sorted(r["status"] for r in inner) == [200, 200, 200, 429, 429]
    throttled = next(r for r in inner if r["status"] == 429)
    assert "Retry-After" in throttled["headers"]
    assert throttled["body"]["error"]["code"] == "TooManyRequests"


def test_batch_runs_at_most_4_per_mailbox_at_once(world: World) -> None:
    """8 inner requests to one mailbox with 300 ms latency take two waves (4 at a time), no 429."""
    world.sim.control.knobs(latency_ms=300)
    requests = [
        {"id": str(i), "method": "GET", "url": f"/{calendar_path(world)}"} for i in range(8)
    ]
    response = batch(world, requests)
    assert [r["status"] for r in response.json()["responses"]] == [200] * 8
    assert response.elapsed.total_seconds() >= 0.6


def test_batch_depends_on_and_failed_dependency(world: World) -> None:
    """dependsOn orders requests; a failed dependency makes its dependents 424."""
    requests = [
        {"id": "1", "method": "GET", "url": f"/users/{world.user_id}/nonsense"},
        {"id": "2", "method": "GET", "url": f"/{calendar_path(world)}", "dependsOn": ["1"]},
        {
            "id": "3",
            "method": "POST",
            "url": f"/users/{world.user_id}/events",
            "headers": {"Content-Type": "application/json"},
            "body": {
                "subject": "b",
                "start": {"dateTime": "2027-01-01T09:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2027-01-01T10:00:00", "timeZone": "UTC"},
            },
        },
    ]
    by_id = {r["id"]: r for r in batch(world, requests).json()["responses"]}
    assert by_id["1"]["status"] == 400
    assert by_id["2"]["status"] == 424
    assert by_id["3"]["status"] == 201


def test_batch_write_without_content_type_is_400(world: World) -> None:
    """An inner request with a body but no Content-Type header fails the whole batch."""
    requests = [{"id": "1", "method": "POST", "url": f"/users/{world.user_id}/events", "body": {}}]
    assert batch(world, requests).status_code == 400
