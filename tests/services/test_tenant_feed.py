"""The tenant feed against Azurite: one cursor over every mailbox of a tenant, read while
four writers change three mailboxes at once, gives every change exactly once, each mailbox in
its order; each calendar is a mailbox of it; bad input is refused by name. (A hole in a
mailbox's sequence holds it back: `tests/core/test_tenant_feed.py`; change rows are written
with their sequence row, so the log itself has none.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.compose import Services, build_services
from shared.core.feed import ChangeEvent
from shared.core.model import DeltaItem, MailboxKey
from shared.errors import InputError, NotFoundError
from shared.secrets import EnvSecrets
from shared.services import mailboxes, mirror, tenant_feed
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=41) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[tuple[Services, str, dict[str, str]]]:
    """A fresh tenant with three enrolled poll-mode mailboxes (no round run)."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["ana", "ben", "cyd"])
    svc = build_services(
        app_settings(sim, azurite, tenant, client),
        secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}),
    )
    for user_id in users.values():
        mailboxes.enrol(svc, tenant, user_id, {"mode": "poll"})
    yield svc, tenant, users
    svc.graph.close()


def _event(n: int, version: int = 1) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=2)
    start += timedelta(minutes=n)
    fmt = "%Y-%m-%dT%H:%M:%S.0000000"
    return {
        "id": f"AAMk-event-{n}",
        "changeKey": f"ck-{n}-{version}",
        "subject": f"Event {n} v{version}",
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
        "type": "singleInstance",
        "showAs": "busy",
    }


def _write(svc: Services, tenant: str, user_id: str, n: int, version: int) -> None:
    record = svc.state.get_mailbox(MailboxKey(tenant, user_id))
    assert record is not None
    mirror.apply_items(svc, record, [DeltaItem(f"AAMk-event-{n}", _event(n, version))])


def test_one_cursor_reads_every_change_once_while_mailboxes_are_written(
    world: tuple[Services, str, dict[str, str]],
) -> None:
    """Four writers (two on one mailbox) make 96 changes while a reader pages with limit 7:
    the reader gets each change exactly once, each mailbox's in sequence order, and a read
    after the last page is empty with the same cursor."""
    svc, tenant, users = world
    ids = list(users.values())
    plan = [(ids[0], range(24)), (ids[0], range(24, 48)), (ids[1], range(48, 72))]
    plan.append((ids[2], range(72, 96)))
    done = threading.Event()

    def writer(user_id: str, numbers: range) -> None:
        for n in numbers:
            _write(svc, tenant, user_id, n, 1 if n % 2 else 2)  # some created, then updated
            if n % 2 == 0:
                _write(svc, tenant, user_id, n, 3)

    threads = [threading.Thread(target=writer, args=p) for p in plan]
    for thread in threads:
        thread.start()
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        finished = done.is_set()
        page = tenant_feed.read(svc, tenant, cursor, "7")
        seen += page["value"]
        cursor = page["next"]
        if finished and not page["more"] and not page["value"]:
            break
        if not any(t.is_alive() for t in threads):
            done.set()
    for thread in threads:
        thread.join()
    assert svc.changes is not None
    stored: list[ChangeEvent] = []
    for user_id in ids:
        stored += svc.changes.read_after(MailboxKey(tenant, user_id), limit=1000)
    assert len(stored) == 48 + 48 * 2  # odd numbers: created; even: created and updated
    assert sorted(c["id"] for c in seen) == sorted(c.change_id for c in stored)
    assert len({c["id"] for c in seen}) == len(seen)
    for user_id in ids:
        mine = [int(c["sequence"]) for c in seen if c["mailboxId"] == user_id]
        assert mine == sorted(mine)
    again = tenant_feed.read(svc, tenant, cursor, None)
    assert (again["count"], again["next"]) == (0, cursor)


def test_bad_input_names_the_parameter(world: tuple[Services, str, dict[str, str]]) -> None:
    """A cursor that is not one, another tenant's cursor, a limit past 1000: 400 naming the
    parameter; a tenant not in TENANT_IDS: 404."""
    svc, tenant, _ = world
    with pytest.raises(InputError, match=r"^after:"):
        tenant_feed.read(svc, tenant, "00000000000000000041", None)
    with pytest.raises(InputError, match=r"^limit="):
        tenant_feed.read(svc, tenant, None, "1001")
    with pytest.raises(NotFoundError, match="TENANT_IDS"):
        tenant_feed.read(svc, "00000000-0000-0000-0000-000000000000", None, None)
    assert tenant_feed.read(svc, tenant.upper(), None, None)["tenantId"] == tenant


def test_each_calendar_of_a_mailbox_is_a_mailbox_of_the_tenant_feed(
    sim: SimHandle, world: tuple[Services, str, dict[str, str]]
) -> None:
    """A secondary calendar enrolled beside its user's default one: the tenant feed gives the
    changes of both, each once and named by its calendar, and its cursor keeps them apart."""
    svc, tenant, users = world
    ana = next(iter(users.values()))
    sim.control.add_calendar(ana, "Team Projects")
    mailboxes.enrol(
        svc, tenant, f"{ana}:projects", {"mode": "poll", "calendarName": "Team Projects"}
    )
    secondary = svc.state.get_mailbox(MailboxKey(tenant, ana, "projects"))
    assert secondary is not None
    _write(svc, tenant, ana, 1, 1)
    mirror.apply_items(svc, secondary, [DeltaItem("AAMk-event-2", _event(2))])
    page = tenant_feed.read(svc, tenant, None, None)
    named = sorted((c["mailboxId"], c["calendarId"], c["eventId"]) for c in page["value"])
    assert named == [(ana, "calendar", "AAMk-event-1"), (ana, "projects", "AAMk-event-2")]
    mirror.apply_items(svc, secondary, [DeltaItem("AAMk-event-2", _event(2, 2))])
    more = tenant_feed.read(svc, tenant, page["next"], None)
    assert [(c["calendarId"], c["type"]) for c in more["value"]] == [("projects", "updated")]
