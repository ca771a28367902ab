"""A failed round, as the services meet it against the simulator and Azurite: Graph's
Retry-After holds every request for the mailbox, and a round that fails (two 410s in a row) is
re-queued with its attempt counted, shown on the status, until a round succeeds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from graphsim.client import wait_for
from graphsim.testing import SimHandle, run_simulator
from shared.adapters.queues import decode_request
from shared.compose import Services, build_services
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.secrets import EnvSecrets
from shared.services import mailboxes
from shared.services.sync import run_sync_request
from tests.services.simworld import app_settings, poll_request, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=9) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, MailboxKey, str]]:
    """A fresh tenant with one poll-mode mailbox enrolled and its first round done."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["adele"])
    ((upn, user_id),) = users.items()
    settings = app_settings(sim, azurite, tenant, client)
    svc = build_services(settings, secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}))
    user = user_id
    key = MailboxKey(tenant, user)
    mailboxes.enrol(svc, tenant, user, {"mode": "poll", "pollSeconds": 60})
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    yield svc, key, upn
    sim.control.clear_faults()
    svc.graph.close()


def _queued(svc: Services, key: MailboxKey) -> list[SyncRequest]:
    """The visible requests for this mailbox on the sync queue (taken off it)."""
    found = []
    queue = svc.queue._queue
    for _ in range(200):
        batch = list(queue.receive_messages(max_messages=32, visibility_timeout=1))
        if not batch:
            break
        for message in batch:
            queue.delete_message(message)
            request = decode_request(message.content)
            if request.mailbox == key:
                found.append(request)
    return found


def _delta_calls(sim: SimHandle, key: MailboxKey) -> int:
    return int(sim.control.counters()["requests_by_mailbox"].get(key.user_id, 0))


def test_retry_after_holds_every_request_for_the_mailbox(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """After a 429 with Retry-After 4, the mailbox's next request waits out the rest of the 4 s
    (Defer, no Graph call) instead of running at once."""
    svc, key, _ = world
    path = f"users/{key.user_id}/calendarView/delta"
    sim.control.fault(429, count=1, path_contains=path, retry_after_s=4)
    before = svc.now()
    assert run_sync_request(svc, poll_request(svc, key)).result == "throttled"
    held = svc.state.get_cursor(key).throttled_until
    assert held is not None
    assert before + timedelta(seconds=4) <= held <= svc.now() + timedelta(seconds=4)
    calls = _delta_calls(sim, key)
    assert run_sync_request(svc, poll_request(svc, key)).result == "deferred"
    assert _delta_calls(sim, key) == calls  # Graph was not asked again inside its wait


def test_two_410s_in_a_row_are_retried_until_a_round_succeeds(
    sim: SimHandle, world: tuple[Services, MailboxKey, str]
) -> None:
    """410 on the stored link, then 410 in the fallback full resync: the request goes back on
    the queue (attempt 1, full), the status says when and why, and its retry heals the mirror."""
    svc, key, upn = world
    gone = sim.control.create_event(upn, {"subject": "Deleted in the gap", **_slot()})["id"]
    assert run_sync_request(svc, poll_request(svc, key)).result.startswith("ok")
    _queued(svc, key)
    sim.control.delete_event(upn, gone)
    sim.control.fault(410, count=2, path_contains=f"users/{key.user_id}/calendarView/delta")
    assert run_sync_request(svc, poll_request(svc, key)).result == "retrying"
    status = svc.state.get_mailbox(key).status
    assert status.retry_at is not None
    assert status.retry_at > svc.now()
    assert status.retry_reason.startswith("SyncStateNotFound")
    assert gone in svc.state.stored_versions(key)
    [retry] = wait_for(lambda: _queued(svc, key), timeout=10, what="the retry to be visible")
    assert (retry.attempt, retry.full) == (1, True)
    healed_round = run_sync_request(svc, retry)
    assert (healed_round.result, healed_round.full, healed_round.deletes) == ("ok", True, 1)
    assert gone not in svc.state.stored_versions(key)
    healed = svc.state.get_mailbox(key).status
    assert (healed.retry_at, healed.retry_reason, healed.last_error) == (None, "", "")


def _slot() -> dict[str, dict[str, str]]:
    """Half an hour two days from now: inside the mailbox's window."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
    }


def test_folded_notifications_of_a_burst_write_no_status_each(
    world: tuple[Services, MailboxKey, str],
) -> None:
    """Notifications stamped before the last round fold: the first records its time, the next
    ones within a minute of it leave the mailbox row untouched (same ETag); one a minute newer
    records again."""
    svc, key, _ = world
    started = svc.state.get_cursor(key).round_started
    assert started is not None

    def fold(seconds_before: float) -> str:
        stamp = stamp_request(started - timedelta(seconds=seconds_before))
        request = SyncRequest(key.tenant_id, key.user_id, Trigger.NOTIFICATION, requested_at=stamp)
        return run_sync_request(svc, request).result

    def etag() -> str:
        return str(svc.state.mailboxes.get_entity(key.tenant_id, key.user_id).metadata["etag"])

    assert fold(120) == "folded"
    first = etag()
    assert svc.state.get_mailbox(key).status.last_notification is not None
    assert [fold(100), fold(90), fold(70)] == ["folded"] * 3
    assert etag() == first
    assert fold(50) == "folded"
    assert etag() != first
