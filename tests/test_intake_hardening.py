"""Intake hardening (issue 9), against real Azurite: storage work per POST bounded and
de-duplicated, one summary log line, escaped untrusted text, no 5xx from anonymous input, a
storage outage answered with a 503 inside Graph's budget, and callbacks off the worker pool."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

import function_app
from devhost.discovery import _spec
from devhost.invoke import Invoker
from shared import web
from shared.compose import Services, build_services, services
from shared.core.model import SubscriptionRecord
from shared.core.notifications import client_state_digest
from shared.errors import InputError, StorageError
from shared.secrets import EnvSecrets
from shared.services import intake
from shared.settings import Settings

pytestmark = pytest.mark.integration
TENANT = "21111111-2222-3333-4444-555555555555"
SUBS = [f"9a000000-0000-4000-8000-00000000000{n}" for n in range(5)]


class Counting:
    """The intake's storage, counting every call that reaches Azurite."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return target(*args, **kwargs)

        return counted


def _settings(storage: str) -> Settings:
    return Settings.from_env(
        {"TENANT_IDS": TENANT, "CLIENT_ID": TENANT, "AzureWebJobsStorage": storage}
    )


@pytest.fixture
def svc(azurite: str) -> Iterator[Services]:
    built = build_services(_settings(azurite), secrets=EnvSecrets({}))
    for n, sub in enumerate(SUBS):
        built.state.put_subscription(
            SubscriptionRecord(
                sub,
                TENANT,
                f"user-{n}",
                f"users/user-{n}/events",
                datetime.now(UTC) + timedelta(days=1),
                client_state_digest(f"state-{n}"),
            )
        )
    counted = replace(
        built,
        intake_state=Counting(built.intake_state),
        intake_queue=Counting(built.intake_queue),
    )
    yield counted
    built.graph.close()


def _item(n: int, **overrides: Any) -> dict[str, Any]:
    item = {
        "subscriptionId": SUBS[n % 5],
        "clientState": f"state-{n % 5}",
        "tenantId": TENANT,
        "changeType": "updated",
        "resource": f"Users/user-{n % 5}/Events/e{n}",
        "resourceData": {"id": f"e{n}"},
    }
    return item | overrides


def _body(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"value": items}).encode()


def test_one_read_per_distinct_subscription_then_none_and_one_message_per_mailbox(
    svc: Services,
) -> None:
    """50 items over 5 mailboxes cost at most 5 reads and 5 queue messages; the next POST for
    the same subscriptions is answered from memory (no read at all)."""
    result = intake.run_notifications(svc, _body([_item(n) for n in range(50)]))
    assert (result.status, result.queued, result.ignored) == (202, 5, 0)
    assert len(svc.intake_state.calls) <= 5  # type: ignore[attr-defined]
    assert svc.intake_queue.calls.count("put") == 5  # type: ignore[attr-defined]
    svc.intake_state.calls.clear()  # type: ignore[attr-defined]
    assert intake.run_notifications(svc, _body([_item(n) for n in range(10)])).queued == 5
    assert svc.intake_state.calls == []  # type: ignore[attr-defined]


def _visible(svc: Services) -> int:
    """How many sync requests a worker could take now (peeked: invisible ones are not shown)."""
    queue = svc.intake_queue.inner._queue  # type: ignore[attr-defined]
    return len(queue.peek_messages(max_messages=32))


def test_a_quiet_mailboxs_first_notification_is_visible_at_once(svc: Services) -> None:
    """LEADING_ROUND (the default): the first notification of a quiet mailbox queues a request
    a worker can take at once; the next, a second later, waits out the debounce (3 s)."""
    svc.intake_queue.inner._queue.clear_messages()  # type: ignore[attr-defined]
    assert intake.run_notifications(svc, _body([_item(0)])).queued == 1
    assert _visible(svc) == 1
    assert intake.run_notifications(svc, _body([_item(5)])).queued == 1  # the same mailbox
    assert intake.run_notifications(svc, _body([_item(1)])).queued == 1  # another, quiet one
    assert _visible(svc) == 2
    deadline = time.monotonic() + 10
    while _visible(svc) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _visible(svc) == 3


def test_without_leading_rounds_every_request_waits_the_debounce(svc: Services) -> None:
    """LEADING_ROUND=false: even a quiet mailbox's first notification stays invisible 3 s."""
    quiet = replace(svc, settings=replace(svc.settings, leading_round=False))
    svc.intake_queue.inner._queue.clear_messages()  # type: ignore[attr-defined]
    started = time.monotonic()
    assert intake.run_notifications(quiet, _body([_item(2)])).queued == 1
    assert _visible(svc) == 0
    deadline = time.monotonic() + 10
    while _visible(svc) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _visible(svc) == 1
    assert time.monotonic() - started >= 2.5


def test_fifty_uncached_subscriptions_cost_four_queries_not_a_listing(svc: Services) -> None:
    """A lifecycle-storm-sized POST: 50 items of 50 subscriptions the intake has not seen are
    read 14 to a query (4 queries), never by listing the tenant's subscriptions; all queued."""
    many = [f"9b000000-0000-4000-8000-{n:012d}" for n in range(60)]
    state = svc.intake_state.inner  # type: ignore[attr-defined]
    for n, sub in enumerate(many):
        state.put_subscription(
            SubscriptionRecord(
                sub,
                TENANT,
                f"storm-{n}",
                f"users/storm-{n}/events",
                datetime.now(UTC) + timedelta(days=1),
                client_state_digest(f"storm-{n}"),
            )
        )
    items = [
        _item(
            0,
            subscriptionId=many[n],
            clientState=f"storm-{n}",
            resource=f"Users/storm-{n}/Events/x",
        )
        for n in range(50)
    ]
    result = intake.run_notifications(svc, _body(items))
    assert (result.status, result.queued, result.ignored) == (202, 50, 0)
    calls = svc.intake_state.calls  # type: ignore[attr-defined]
    assert calls.count("get_subscriptions") == 4
    assert "list_tenant_subscriptions" not in calls
    assert "get_subscription" not in calls


def test_a_flood_of_unknown_items_costs_bounded_reads_and_one_log_line(
    svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 items of 1,000 forged subscription ids: a bounded number of storage calls, one
    summary line; over the item cap nothing is read at all."""
    forged = [_item(0, subscriptionId=f"forged-{n}") for n in range(1_000)]
    with caplog.at_level(logging.DEBUG, logger="calsync"):
        result = intake.run_notifications(svc, _body(forged))
    assert (result.status, result.queued, result.ignored) == (202, 0, 1_000)
    assert len(svc.intake_state.calls) <= intake.MAX_LOOKUPS_PER_POST + 1  # type: ignore[attr-defined]
    lines = [r for r in caplog.records if r.name.startswith("calsync.intake")]
    assert len(lines) == 1
    assert "1000 ignored" in lines[0].getMessage()
    svc.intake_state.calls.clear()  # type: ignore[attr-defined]
    with pytest.raises(InputError):  # a 400
        intake.run_notifications(svc, _body(forged * 7))
    assert svc.intake_state.calls == []  # type: ignore[attr-defined]


def test_untrusted_text_is_logged_escaped(svc: Services, caplog: pytest.LogCaptureFixture) -> None:
    """CR, LF and ANSI escapes in a subscriptionId or lifecycleEvent never reach a log line raw."""
    evil = "sub\r\n[2026-01-01] CRITICAL forged line\x1b[31m"
    bodies = [
        (intake.run_notifications, _body([_item(0, subscriptionId=evil)])),
        (intake.run_notifications, _body([_item(0, changeType=None, subscriptionId=evil)])),
        (intake.run_lifecycle, _body([_item(0, lifecycleEvent=evil)])),
        (intake.run_lifecycle, _body([_item(0, lifecycleEvent="missed", subscriptionId=evil)])),
    ]
    with caplog.at_level(logging.DEBUG, logger="calsync"):
        for run, body in bodies:
            assert run(svc, body).status == 202
    messages = [r.getMessage() for r in caplog.records]
    assert messages
    for message in messages:
        assert "\r" not in message
        assert "\n" not in message
        assert "\x1b" not in message


def _call(fn: Any, req: func.HttpRequest) -> func.HttpResponse:
    result = fn(req)
    return asyncio.run(result) if inspect.isawaitable(result) else result  # type: ignore[no-any-return]


@pytest.fixture
def app_env(azurite: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {"TENANT_IDS": TENANT, "CLIENT_ID": TENANT}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AzureWebJobsStorage", azurite)
    services.cache_clear()
    yield
    services.cache_clear()


def _post(route: str, body: bytes, **params: str) -> func.HttpRequest:
    return func.HttpRequest("POST", f"http://localhost/api/{route}", body=body, params=params)


@pytest.mark.usefixtures("app_env")
def test_hostile_bodies_never_get_a_5xx() -> None:
    """Deep nesting, a lone-surrogate or '/' tenantId, and over-long fields: 4xx or 202."""
    deep = b'{"value":[' + b"[" * 2_000 + b"]" * 2_000 + b"]}"
    surrogate = (
        b'{"value":[{"subscriptionId":"s","clientState":"c","tenantId":"\\ud800",'
        b'"changeType":"updated","resource":"r","lifecycleEvent":"missed"}]}'
    )
    slash = _body([_item(0, tenantId=f"{TENANT}/x", lifecycleEvent="missed")])
    for route, fn in (
        ("notifications", function_app.notifications),
        ("lifecycle", function_app.lifecycle),
    ):
        for body in (deep, b"[" * 100_000, surrogate, slash):
            status = _call(fn, _post(route, body)).status_code
            assert status < 500, (route, body[:40], status)
    put = func.HttpRequest(
        "PUT",
        f"http://localhost/api/mailboxes/{TENANT}/u",
        body=b"[" * 2_000 + b"]" * 2_000,
        route_params={"tenant": TENANT, "user": "u"},
    )
    assert _call(function_app.mailbox, put).status_code == 400


@pytest.mark.usefixtures("app_env")
def test_validation_echo_says_nosniff() -> None:
    """The handshake echo is text/plain with X-Content-Type-Options: nosniff."""
    response = _call(function_app.notifications, _post("notifications", b"", validationToken="t"))
    assert response.get_body() == b"t"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"


@pytest.mark.usefixtures("app_env")
def test_graph_callbacks_answer_while_the_worker_pool_is_full() -> None:
    """The callbacks are coroutines, awaited on the host's loop (as the Python worker does) with
    their storage work on the intake's own executor: with every thread of the host's pool busy
    (sync rounds), Graph still gets its answer."""
    # Specs built from the decorators' own Function objects: app.get_functions() may be called
    # only once per process, and tests/test_bindings.py calls it.
    specs = {
        name: _spec(getattr(function_app, name)._function)
        for name in ("notifications", "lifecycle")
    }
    assert specs["notifications"].is_async
    assert specs["lifecycle"].is_async
    invoker = Invoker(threads=1)
    release = threading.Event()
    invoker.pool.submit(release.wait, 30)  # the one pool thread, busy

    async def both() -> list[Any]:
        body = _body([_item(0, subscriptionId="unknown")])
        return [
            await invoker.invoke(specs["notifications"], _post("notifications", body), "test"),
            await invoker.invoke(specs["lifecycle"], _post("lifecycle", body), "test"),
        ]

    try:
        answers = asyncio.run(asyncio.wait_for(both(), 10))
    finally:
        release.set()
        invoker.close()
    assert [a.status_code for a in answers] == [202, 202]


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (storage paused)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.parametrize("cached", [False, True])
def test_paused_storage_is_a_503_within_graphs_budget(
    svc: Services, black_hole: int, cached: bool
) -> None:
    """With storage accepting connections but never answering, the callback answers 503 within
    the intake's budget (Graph allows 3 s) instead of hanging in retries; with the subscription
    cached only the queue write is stuck, and that is a 503 too."""
    if cached:
        assert intake.run_notifications(svc, _body([_item(0)])).status == 202
    dead = f"http://127.0.0.1:{black_hole}/devstoreaccount1"
    parts = dict(p.split("=", 1) for p in svc.settings.storage.connection_string.split(";") if p)
    parts["QueueEndpoint"] = parts["TableEndpoint"] = dead
    paused = build_services(
        _settings(";".join(f"{k}={v}" for k, v in parts.items())),
        secrets=EnvSecrets({}),
        ensure=False,
    )
    paused.intake_cache = svc.intake_cache
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        asyncio.run(intake.run_callback(lambda: paused, "change", _body([_item(0)])))
    assert time.monotonic() - started < intake.BUDGET_SECONDS + 1.0
    assert intake.BUDGET_SECONDS <= 3.0
    assert web.intake_error(info.value).status_code == 503
    paused.graph.close()


def test_a_5xx_project_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A StorageError answered as 503 leaves one application log line naming it."""
    with caplog.at_level(logging.INFO, logger="calsync"):
        assert web.error_response(StorageError("tables down")).status_code == 503
    assert any("tables down" in r.getMessage() for r in caplog.records if r.levelno >= 30)
