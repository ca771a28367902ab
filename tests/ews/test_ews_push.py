"""EWS push notifications as hints, end to end: the poll timer subscribes the mailbox through
exchangelib, the EWS simulator delivers SendNotification over TLS to a receiver that runs the
app's service, and a change queues a round; keep-alives, stale subscriptions and bad input
never sync."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ewssim.testing import EwsSim, run_ewssim
from graphsim.client import wait_for
from shared.adapters.queues import decode_request
from shared.compose import Services, build_services
from shared.core.ews import ews_user_id
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.secrets import EnvSecrets
from shared.services import ews_push, mailboxes
from shared.settings import Settings
from tests.ews.helpers import retire

pytestmark = [pytest.mark.integration, pytest.mark.slow]
USER, PASSWORD = "CONTOSO\\svc-push", "push-Passw0rd"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def sim() -> Iterator[EwsSim]:
    with run_ewssim() as handle:
        handle.add_account(USER, PASSWORD, ["*"])
        yield handle


@pytest.fixture(scope="module")
def receiver(sim: EwsSim) -> Iterator[tuple[str, dict[str, Services]]]:
    """An HTTPS receiver on loopback (a certificate of the simulator's CA) that hands each POST
    to `ews_push.run_notification` of the Services registered for its tenant."""
    by_tenant: dict[str, Services] = {}

    async def notify(request: Request) -> Response:
        tenant, user = request.path_params["tenant"], request.path_params["user"]
        status, body = ews_push.run_notification(
            by_tenant[tenant], tenant, user, await request.body()
        )
        # Connection: close, so no keep-alive connection outlives the receiver's event loop.
        return Response(body, status, media_type="text/xml", headers={"Connection": "close"})

    app = Starlette(
        routes=[Route("/api/ews/notifications/{tenant}/{user}", notify, methods=["POST"])]
    )
    with socket.socket() as probe:  # a free port; uvicorn binds (and closes) its own socket
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        # No logging setup: uvicorn's would set its loggers' levels for the whole test session.
        log_config=None,
        access_log=False,
        ssl_certfile=sim.host_cert_path,
        ssl_keyfile=sim.host_key_path,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="the receiver to start")
    yield f"https://127.0.0.1:{port}", by_tenant
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def world(
    sim: EwsSim, azurite: str, receiver: tuple[str, dict[str, Services]]
) -> Iterator[tuple[Services, MailboxKey, str, Clock]]:
    base, by_tenant = receiver
    tenant = str(uuid.uuid4())
    smtp = f"push.{uuid.uuid4().hex[:6]}@contoso.example"
    sim.add_mailbox(smtp)
    provider = {"provider": "ews", "ewsUrl": sim.ews_url, "username": USER}
    settings = Settings.from_env(
        {
            "TENANT_IDS": tenant,
            "CLIENT_ID": str(uuid.uuid4()),
            "CA_BUNDLE": sim.ca_pem_path,
            "PUBLIC_BASE_URL": base,
            "AzureWebJobsStorage": azurite,
            "MAILBOX_PROVIDERS": json.dumps({tenant: provider}),
        }
    )
    clock = Clock()
    svc = build_services(
        settings, secrets=EnvSecrets({"SECRET_EWS_PASSWORD": PASSWORD}), clock=clock
    )
    by_tenant[tenant] = svc
    mailboxes.enrol(svc, tenant, smtp, {})
    key = MailboxKey(tenant, ews_user_id(smtp))
    _drain(svc, key)  # the enrolment's own round request
    yield svc, key, smtp, clock
    retire(svc, tenant, smtp)


def _drain(svc: Services, key: MailboxKey) -> list[SyncRequest]:
    """The visible requests for this mailbox on the sync queue (taken off it)."""
    found = []
    queue = svc.queue._queue
    for _ in range(50):
        batch = list(queue.receive_messages(max_messages=32, visibility_timeout=1))
        if not batch:
            break
        for message in batch:
            queue.delete_message(message)
            request = decode_request(message.content)
            if request.mailbox == key:
                found.append(request)
    return found


def _subs(sim: EwsSim, smtp: str) -> list[str]:
    return [s["id"] for s in sim.subscriptions() if s["smtp"] == smtp]


def test_a_change_pushed_by_exchange_queues_a_round(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """The poll timer subscribes the mailbox once; a created item arrives as a notification
    that queues one `notification` round for that mailbox."""
    svc, key, smtp, _ = world
    assert ews_push.run_ensure(svc) >= 1
    assert ews_push.run_ensure(svc) == 0  # heard from just now: no second subscription
    (sub,) = _subs(sim, smtp)
    held = svc.ews_push.get(key) if svc.ews_push else None
    assert held is not None
    assert held.subscription_id == sub
    sim.create(smtp, subject="Pushed", start="2026-12-02T09:00:00Z", end="2026-12-02T10:00:00Z")
    got = wait_for(lambda: _drain(svc, key), what="a queued round")
    assert [r.trigger for r in got] == [Trigger.NOTIFICATION]


def test_keep_alives_record_exchange_and_stale_subscriptions_are_ended(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """A StatusEvent only records that Exchange was heard from; a notification of a
    subscription that is no longer the mailbox's is answered Unsubscribe (Exchange ends it)
    and queues nothing; once Exchange is quiet for STALE_AFTER, the timer subscribes again."""
    svc, key, smtp, clock = world
    ews_push.run_ensure(svc)
    assert svc.ews_push is not None
    before = svc.ews_push.get(key)
    assert before is not None
    clock.now += timedelta(minutes=1)
    sim.knob("keepalive", smtp=smtp)
    wait_for(lambda: svc.ews_push.get(key).last_seen > before.last_seen, what="a keep-alive")  # type: ignore[union-attr]
    assert _drain(svc, key) == []
    svc.ews_push.put(key, replace(before, subscription_id="c3RhbGU="))
    sim.create(smtp, subject="Unheard", start="2026-12-02T09:00:00Z", end="2026-12-02T10:00:00Z")
    wait_for(lambda: not _subs(sim, smtp), what="the simulator to end the subscription")
    assert _drain(svc, key) == []
    clock.now += ews_push.STALE_AFTER
    assert ews_push.run_ensure(svc) >= 1
    assert len(_subs(sim, smtp)) == 1


def test_a_refused_subscription_is_not_asked_again_at_once(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """A subscription the server refuses (its calendar denied) is tried again only after
    STALE_AFTER, not at every poll run."""
    svc, _, smtp, clock = world
    sim.knob("deny-calendar", smtp=smtp)
    assert ews_push.run_ensure(svc) == 0
    asked = sim.calls().get("GetFolder", 0)
    ews_push.run_ensure(svc)
    assert sim.calls().get("GetFolder", 0) == asked
    sim.knob("deny-calendar", smtp=smtp, denied=False)
    clock.now += ews_push.STALE_AFTER
    assert ews_push.run_ensure(svc) >= 1
    assert len(_subs(sim, smtp)) == 1


NOTE = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Body>'
    "<m:SendNotification><m:ResponseMessages><m:SendNotificationResponseMessage>"
    "<m:Notification><t:SubscriptionId>{sub}</t:SubscriptionId>"
    "<t:PreviousWatermark>{mark}</t:PreviousWatermark><t:CreatedEvent><t:Watermark>{mark}"
    "</t:Watermark></t:CreatedEvent></m:Notification>"
    "</m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification>"
    "</soap:Body></soap:Envelope>"
)


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        (b"not xml", 400, b""),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', 400, b""),
        ("SUB|***", 200, b"OK"),  # the mailbox's subscription, a malformed watermark
        ("c3RhbGU=|AAAA", 200, b"Unsubscribe"),  # another subscription
    ],
)
def test_bad_notifications_never_sync(
    sim: EwsSim,
    world: tuple[Services, MailboxKey, str, Clock],
    body: bytes | str,
    status: int,
    answer: bytes,
) -> None:
    """Malformed bodies are 400; a bad watermark or a foreign subscription queues nothing."""
    svc, key, _, _ = world
    ews_push.run_ensure(svc)
    assert svc.ews_push is not None
    held = svc.ews_push.get(key)
    assert held is not None
    if isinstance(body, str):
        sub, mark = body.split("|")
        body = NOTE.format(sub=held.subscription_id if sub == "SUB" else sub, mark=mark).encode()
    got_status, got = ews_push.run_notification(svc, key.tenant_id, key.user_id, body)
    assert got_status == status
    assert answer in got
    assert _drain(svc, key) == []


def test_a_write_through_calsync_is_pushed_like_any_change(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """A create through the write API reaches Exchange's push subscription as a notification
    that queues a round (which then finds the mirror already up to date)."""
    from shared.services import writes

    svc, key, _, _ = world
    ews_push.run_ensure(svc)
    event = {
        "subject": "Written",
        "start": {"dateTime": "2026-12-02T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-02T10:00:00", "timeZone": "UTC"},
    }
    view, _ = writes.run_write(
        svc, key.tenant_id, key.user_id, {"action": "create", "event": event}, "push-1"
    )
    assert view["status"] == "done"
    got = wait_for(lambda: _drain(svc, key), what="a queued round")
    assert [r.trigger for r in got] == [Trigger.NOTIFICATION]


def test_keep_alives_follow_the_simulators_clock(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """Moving the simulator's clock past the StatusFrequency makes Exchange send its
    keep-alive, which records that it was heard from, without a round."""
    svc, key, smtp, clock = world
    ews_push.run_ensure(svc)
    assert svc.ews_push is not None
    before = svc.ews_push.get(key)
    assert before is not None
    (sub,) = [s for s in sim.subscriptions() if s["smtp"] == smtp]
    clock.now += timedelta(minutes=1)
    sim.advance(sub["statusMinutes"] * 60)
    wait_for(lambda: svc.ews_push.get(key).last_seen > before.last_seen, what="a keep-alive")  # type: ignore[union-attr]
    assert _drain(svc, key) == []
