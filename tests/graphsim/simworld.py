"""Helpers and fixtures for the simulator's own tests (imported by conftest.py so that test modules
import them by a name no other conftest shadows): one simulator subprocess per test session, a
fresh tenant/app/users per test, and a tiny HTTPS receiver for notifications served with the
simulator's host certificate."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from graphsim.knobs import Knobs
from graphsim.testing import SimHandle, run_simulator, token_for

ROLES_RW = ["Calendars.ReadWrite", "User.Read.All"]


@pytest.fixture(scope="session")
def sim() -> Iterator[SimHandle]:
    """One simulator process for the whole session (started as `python -m graphsim`)."""
    with run_simulator(seed=7) as handle:
        yield handle


@dataclass
class World:
    """A private tenant with one consented app and two users."""

    sim: SimHandle
    tenant_id: str
    domain: str
    client_id: str
    secret: str
    users: dict[str, str]  # upn -> id
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def upn(self) -> str:
        return next(iter(self.users))

    @property
    def user_id(self) -> str:
        return self.users[self.upn]

    def token(self, scope: str = "") -> str:
        return token_for(self.sim, self.tenant_id, self.client_id, self.secret, scope)

    def graph(self, token: str | None = None, **headers: str) -> httpx.Client:
        client = httpx.Client(
            base_url=self.sim.graph_base_url + "/",
            verify=self.sim.ssl_context(),
            headers={"Authorization": f"Bearer {token or self.token()}", **headers},
            timeout=30,
        )
        self.clients.append(client)
        return client

    def new_app(self, roles: list[str] | None) -> tuple[str, str]:
        """Register another app in this tenant (consented with `roles` unless None)."""
        client_id, secret = str(uuid.uuid4()), f"s-{uuid.uuid4()}"
        self.sim.control.seed(
            apps=[
                {"client_id": client_id, "tenant": self.tenant_id, "secrets": [{"value": secret}]}
            ],
            consents=[]
            if roles is None
            else [{"tenant": self.tenant_id, "client_id": client_id, "roles": roles}],
        )
        return client_id, secret


def make_world(sim: SimHandle, roles: list[str] | None = None) -> World:
    tenant_id = str(uuid.uuid4())
    domain = f"t{tenant_id[:8]}.example"
    client_id, secret = str(uuid.uuid4()), f"secret-{uuid.uuid4()}"
    seeded = sim.control.seed(
        tenants=[{"id": tenant_id, "domain": domain, "name": "Test tenant"}],
        apps=[{"client_id": client_id, "tenant": tenant_id, "secrets": [{"value": secret}]}],
        consents=[{"tenant": tenant_id, "client_id": client_id, "roles": roles or ROLES_RW}],
        users=[
            {"tenant": tenant_id, "upn": f"adele@{domain}", "name": "Adele Vance"},
            {"tenant": tenant_id, "upn": f"ben@{domain}", "name": "Ben Walters"},
        ],
    )
    return World(sim, tenant_id, domain, client_id, secret, seeded["users"])


@pytest.fixture
def world(sim: SimHandle) -> Iterator[World]:
    """A fresh tenant and zeroed counters; knobs, faults and throttling windows are reset
    afterwards."""
    w = make_world(sim)
    sim.control.reset_counters()
    try:
        yield w
    finally:
        for client in w.clients:
            client.close()
        sim.control.clear_faults()
        sim.control.knobs(**Knobs(seed=7).as_dict())
        sim.control.reset_throttle()


# --- a notification receiver ------------------------------------------------------------------
@dataclass
class Receiver:
    """An HTTPS endpoint on loopback recording validations and notifications."""

    url: str
    validation_mode: str = "echo"  # echo | encoded | status500 | slow | wrong-type
    slow_s: float = 0.0
    notify_status: int = 202
    notify_delay_s: float = 0.0
    fail_first: int = 0  # answer 503 to this many notification POSTs first
    validations: list[dict[str, Any]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)

    def items(self, kind: str = "") -> list[dict[str, Any]]:
        out = [i for p in self.posts for i in p["body"].get("value", [])]
        if kind == "lifecycle":
            return [i for i in out if "lifecycleEvent" in i]
        if kind == "change":
            return [i for i in out if "lifecycleEvent" not in i]
        return out

    def wait_items(
        self, n: int, kind: str = "change", timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.items(kind)) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(self.items(kind))} of {n} {kind} items arrived: {self.posts}"
                )
            time.sleep(0.01)
        return self.items(kind)


# Every answer closes its connection: an idle keep-alive TLS connection from the simulator
# would otherwise hold the receiver's shutdown until the close_notify exchange times out.
CLOSE = {"Connection": "close"}


def _receiver_app(rec: Receiver) -> Starlette:
    async def endpoint(request: Request) -> Response:
        raw_query = request.scope["query_string"].decode()
        if "validationToken=" in raw_query:
            token = parse_qs(raw_query)["validationToken"][0]
            rec.validations.append(
                {
                    "path": request.url.path,
                    "token": token,
                    "raw_query": raw_query,
                    "content_type": request.headers.get("content-type", ""),
                }
            )
            if rec.validation_mode == "slow":
                await asyncio.sleep(rec.slow_s)
            if rec.validation_mode == "status500":
                return PlainTextResponse("no", status_code=500, headers=CLOSE)
            if rec.validation_mode == "encoded":
                return PlainTextResponse(raw_query.split("validationToken=", 1)[1], headers=CLOSE)
            if rec.validation_mode == "wrong-type":
                return Response(token, media_type="text/html", headers=CLOSE)
            return PlainTextResponse(token, headers=CLOSE)
        body = await request.json()
        rec.posts.append({"path": request.url.path, "body": body, "at": time.monotonic()})
        if rec.notify_delay_s:
            await asyncio.sleep(rec.notify_delay_s)
        if rec.fail_first > 0:
            rec.fail_first -= 1
            return Response(status_code=503, headers=CLOSE)
        return Response(status_code=rec.notify_status, headers=CLOSE)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])


@pytest.fixture
def receiver(sim: SimHandle) -> Iterator[Receiver]:
    """A uvicorn HTTPS server (the simulator's host certificate) in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    rec = Receiver(url=f"https://127.0.0.1:{port}/notify")
    config = uvicorn.Config(
        _receiver_app(rec),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ssl_certfile=sim.host_cert_path,
        ssl_keyfile=sim.host_key_path,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.01)
    try:
        yield rec
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
