"""Lifecycle events acted on once: no reauthorize within 10 minutes of a renewal PATCH (Graph
forbids both on one subscription within 10 minutes), and copies of one lifecycle notification,
handled one after the other or at once, make one reauthorize call. The requests are handed to
the worker step directly (as the queue trigger would), against the running stack's simulator and
Azurite, so what happened is known when the call returns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from devhost.local.stack import Stack
from shared.compose import OffsetClock, Services, build_services
from shared.core.model import SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.secrets import EnvSecrets
from shared.services.sync import run_sync_request
from shared.settings import Settings
from tests.e2e.harness import Mailbox, enrol

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def svc(stack: Stack) -> Iterator[Services]:
    """The app's services as a host of the stack builds them (same settings, clock, secrets)."""
    env = {k: v for k, v in stack.env.items() if not k.startswith("_")}
    services = build_services(
        Settings.from_env(env),
        secrets=EnvSecrets(env),
        clock=OffsetClock(env["DEV_CLOCK_OFFSET_FILE"]),
        ensure=False,
    )
    yield services
    services.graph.close()


def _reauthorized(stack: Stack) -> int:
    by_endpoint = stack.sim.control.counters()["requests_by_endpoint"]
    return sum(v for k, v in by_endpoint.items() if "reauthorize" in k)


def _lifecycle(svc: Services, mb: Mailbox, sub_id: str, event: str) -> SyncRequest:
    return SyncRequest(
        mb.stack.tenant_id,
        mb.user_id,
        Trigger.LIFECYCLE,
        requested_at=stamp_request(svc.now()),
        lifecycle_event=event,
        subscription_id=sub_id,
    )


def test_no_reauthorize_within_ten_minutes_of_a_renewal(stack: Stack, svc: Services) -> None:
    """reauthorizationRequired for a subscription renewed a minute ago: no POST /reauthorize
    (the renewal PATCH reauthorized it), and the mailbox still gets its round."""
    mb = enrol(stack)
    sub_id = mb.status()["status"]["subscriptionId"]
    sub = svc.state.get_subscription(stack.tenant_id, sub_id)
    assert sub is not None
    svc.state.put_subscription(replace(sub, last_renewed=svc.now()))  # as renew_due writes it
    before = _reauthorized(stack)
    outcome = run_sync_request(svc, _lifecycle(svc, mb, sub_id, "reauthorizationRequired"))
    assert outcome.result in ("ok", "deferred"), outcome
    assert _reauthorized(stack) == before


def test_copies_of_a_lifecycle_notification_reauthorize_once(stack: Stack, svc: Services) -> None:
    """Three copies of one reauthorizationRequired (two handled at the same moment on two
    threads, one a little later): exactly one POST /reauthorize."""
    mb = enrol(stack)
    sub_id = mb.status()["status"]["subscriptionId"]
    before = _reauthorized(stack)
    copy = _lifecycle(svc, mb, sub_id, "reauthorizationRequired")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def handle() -> None:
        start.wait()
        try:
            run_sync_request(svc, copy)
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=handle) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    run_sync_request(svc, copy)
    assert _reauthorized(stack) == before + 1
    record = svc.state.get_subscription(stack.tenant_id, sub_id)
    assert record is not None
    assert record.last_lifecycle_event == "reauthorizationRequired"
    assert record.last_reauthorized is not None
