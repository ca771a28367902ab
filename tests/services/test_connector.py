"""Connector operations against the simulator: calendars and events live from Graph, one event,
and the raw request passed through for the mailbox and refused outside it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.compose import Services, build_services
from shared.core.model import MailboxKey
from shared.errors import ForbiddenError, InputError, NotFoundError
from shared.secrets import EnvSecrets
from shared.services import connector, mailboxes
from shared.services import oplog as oplog_service
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=31) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, MailboxKey, str, str]]:
    """Two users of a fresh tenant, the first enrolled (poll mode)."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["noor", "olek"])
    (upn, user_id), (other_upn, _) = users.items()
    svc = build_services(
        app_settings(sim, azurite, tenant, client),
        secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}),
    )
    mailboxes.enrol(svc, tenant, user_id, {"mode": "poll"})
    yield svc, MailboxKey(tenant, user_id), upn, other_upn
    svc.graph.close()


def _slot(days: int) -> dict[str, dict[str, str]]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime(fmt), "timeZone": "UTC"},
    }


def test_calendars_events_and_one_event_live(
    sim: SimHandle, world: tuple[Services, MailboxKey, str, str]
) -> None:
    """The default calendar is listed with its owner; an event made a moment ago is in the live
    range before any sync round, and can be read by id."""
    svc, key, upn, _ = world
    made = sim.control.create_event(upn, {"subject": "Walk-in", **_slot(1)})
    listed = connector.calendars(svc, key.tenant_id, upn)
    assert any(c["isDefaultCalendar"] for c in listed["value"])
    start = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    live = connector.live_events(svc, key.tenant_id, upn, start, None)
    assert made["id"] in {e["id"] for e in live["value"]}
    assert connector.live_event(svc, key.tenant_id, upn, made["id"])["subject"] == "Walk-in"
    with pytest.raises(InputError, match="ErrorInvalidIdMalformed"):
        connector.live_event(svc, key.tenant_id, upn, "AAMkAGnope=")


def test_raw_request_passes_graph_through_within_the_mailbox(
    world: tuple[Services, MailboxKey, str, str],
) -> None:
    """A raw GET of the mailbox's calendars answers Graph's status and body; Graph's own
    refusal (a bad $top) comes back as its status, not as ours."""
    svc, key, upn, _ = world
    answer = connector.raw(
        svc,
        key.tenant_id,
        upn,
        {"method": "GET", "path": f"/users/{upn}/calendars", "caller": "flow-7"},
    )
    assert answer["status"] == 200
    assert answer["body"]["value"]
    refused = connector.raw(
        svc,
        key.tenant_id,
        upn,
        {"method": "GET", "path": f"/users/{upn}/events", "query": {"$top": "-3"}},
    )
    assert refused["status"] == 400
    assert refused["body"]["error"]["code"]


def test_raw_request_refused_outside_the_mailbox(
    world: tuple[Services, MailboxKey, str, str],
) -> None:
    """Another user's path or a method not allowed is 403 naming the rule; an unenrolled
    mailbox is 404; an unknown field is 400."""
    svc, key, upn, other = world
    with pytest.raises(ForbiddenError, match="only address the enrolled mailbox"):
        connector.raw(svc, key.tenant_id, upn, {"method": "GET", "path": f"/users/{other}/events"})
    with pytest.raises(ForbiddenError, match="PUT is not allowed"):
        connector.raw(svc, key.tenant_id, upn, {"method": "PUT", "path": f"/users/{upn}/events"})
    with pytest.raises(NotFoundError):
        connector.raw(
            svc, key.tenant_id, other, {"method": "GET", "path": f"/users/{other}/events"}
        )
    with pytest.raises(InputError, match="url is not a field"):
        connector.raw(svc, key.tenant_id, upn, {"method": "GET", "url": "x", "path": "/users"})


def test_raw_calls_and_refusals_are_in_the_operations_log_with_the_caller(
    world: tuple[Services, MailboxKey, str, str],
) -> None:
    """A raw call Graph answered and one refused (403) are both outbound records of the
    mailbox with method, path, status, duration and the caller; no token, no query value."""
    svc, key, upn, other = world
    secret = {"$filter": "subject eq 'token-like-query-value-0123456789'"}
    answer = connector.raw(
        svc,
        key.tenant_id,
        upn,
        {"method": "GET", "path": f"/users/{upn}/events", "query": secret, "caller": "flow-7"},
    )
    with pytest.raises(ForbiddenError):
        connector.raw(
            svc,
            key.tenant_id,
            upn,
            {"method": "GET", "path": f"/users/{other}/events", "caller": "flow-8"},
        )
    with pytest.raises(InputError, match="caller must be"):
        connector.raw(svc, key.tenant_id, upn, {"method": "GET", "path": "/x", "caller": 7})
    params = {"tenant": key.tenant_id, "user": key.user_id, "direction": "out"}
    rows = [r for r in oplog_service.run_log_query(svc, params)["value"] if r["kind"] == "raw"]
    by_caller = {r.get("caller"): r for r in rows}
    made, refused = by_caller["flow-7"], by_caller["flow-8"]
    assert (made["method"], made["status"]) == ("GET", answer["status"])
    assert made["path"].startswith(f"users/{key.user_id}/events?")
    assert made["requestId"]
    assert made["durationMs"] > 0
    assert (refused["method"], refused["status"], refused["error"]) == ("GET", 403, "forbidden")
    assert refused["path"] == f"/users/{other}/events"
    text = str(rows)
    assert "token-like-query-value" not in text
    assert "Bearer" not in text
    assert SECRET not in text
