"""The iCalUId lookup against the simulator and Azurite: one meeting in two enrolled mailboxes
is found in both by its iCalUId, the index follows deletions, and bad input names its parameter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graphsim.testing import SimHandle, run_simulator
from shared.compose import Services, build_services
from shared.core import icaluid as ix
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.errors import InputError, NotFoundError
from shared.secrets import EnvSecrets
from shared.services import icaluid_index, mailboxes
from shared.services.sync import run_sync_request
from tests.services.simworld import app_settings, seed_tenant

pytestmark = pytest.mark.integration
SECRET = "the-right-secret-value-0123456789"
MEETING = {
    "subject": "Quarterly planning",
    "start": {"dateTime": "2026-12-04T13:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2026-12-04T14:00:00", "timeZone": "UTC"},
}
World = tuple[Services, dict[str, MailboxKey], dict[str, str]]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=23) as handle:
        yield handle


@pytest.fixture
def world(sim: SimHandle, azurite: str) -> Iterator[World]:
    """Adele organizes a meeting, Ben holds the attendee's copy, Cleo has neither; all three
    enrolled (poll mode) and synced once."""
    tenant, client, users = seed_tenant(sim, secret=SECRET, names=["adele", "ben", "cleo"])
    svc = build_services(
        app_settings(sim, azurite, tenant, client),
        secrets=EnvSecrets({"SECRET_GRAPH_CLIENT_SECRET": SECRET}),
    )
    upn = {u.split("@")[0]: u for u in users}
    organizer = sim.control.create_event(upn["adele"], MEETING)
    copy = sim.control.invite(upn["ben"], upn["adele"], organizer["id"])
    sim.control.create_event(upn["cleo"], {**MEETING, "subject": "Something else"})
    keys = {name: MailboxKey(tenant, users[u]) for name, u in upn.items()}
    for key in keys.values():
        mailboxes.enrol(svc, tenant, key.user_id, {"mode": "poll", "pollSeconds": 60})
        _sync(svc, key)
    ids = {"adele": str(organizer["id"]), "ben": str(copy["id"]), "uid": organizer["iCalUId"]}
    yield svc, keys, ids
    svc.graph.close()


def _sync(svc: Services, key: MailboxKey) -> None:
    request = SyncRequest(
        key.tenant_id, key.user_id, Trigger.POLL, requested_at=stamp_request(svc.now())
    )
    assert run_sync_request(svc, request).result.startswith("ok")


def test_one_meeting_is_found_in_every_mailbox_that_holds_it(world: World) -> None:
    """The organizer's event and the attendee's copy, each with its own event id, both come
    back for the meeting's iCalUId; the mailbox without it does not."""
    svc, keys, ids = world
    found = icaluid_index.find(svc, keys["adele"].tenant_id, ids["uid"])
    got = {(v["userId"], v["id"], v["iCalUId"], v["subject"]) for v in found["value"]}
    assert got == {
        (keys["adele"].user_id, ids["adele"], ids["uid"], "Quarterly planning"),
        (keys["ben"].user_id, ids["ben"], ids["uid"], "Quarterly planning"),
    }
    assert found["count"] == 2
    assert ids["adele"] != ids["ben"]


def test_a_deleted_copy_leaves_the_index(sim: SimHandle, world: World) -> None:
    """Once the attendee's copy is deleted and the round has run, only the organizer's remains."""
    svc, keys, ids = world
    sim.control.delete_event(keys["ben"].user_id, ids["ben"])
    _sync(svc, keys["ben"])
    found = icaluid_index.find(svc, keys["ben"].tenant_id, ids["uid"])
    assert [v["userId"] for v in found["value"]] == [keys["adele"].user_id]
    assert svc.icaluids is not None
    rows = svc.icaluids.lookup(keys["ben"].tenant_id, ids["uid"])
    assert rows == [(keys["adele"].user_id, ids["adele"])]  # its row went, not just filtered


def test_an_unknown_ical_uid_is_an_empty_answer_and_bad_input_names_the_parameter(
    world: World,
) -> None:
    """No match: an empty list; no iCalUId or tenant: InputError naming it; a tenant that is
    not configured: NotFoundError."""
    svc, keys, _ = world
    tenant = keys["adele"].tenant_id
    assert icaluid_index.find(svc, tenant, "no-such-uid")["value"] == []
    with pytest.raises(InputError, match="iCalUId"):
        icaluid_index.find(svc, tenant, None)
    with pytest.raises(InputError, match="tenant"):
        icaluid_index.find(svc, "", "x")
    with pytest.raises(NotFoundError, match="tenant"):
        icaluid_index.find(svc, "00000000-0000-0000-0000-000000000000", "x")


def test_a_resync_indexes_what_the_mirror_already_holds(world: World) -> None:
    """A mirror filled before the index (its rows dropped here) is found again once the
    operator's resync has run, though no event changed."""
    svc, keys, ids = world
    index = svc.icaluids
    assert index is not None
    for name in ("adele", "ben"):
        key = keys[name]
        plan = ix.plan_changes(key.user_id, (), [ids[name]], {ids[name]: ids["uid"]})
        index.write(key.tenant_id, plan)
    tenant = keys["adele"].tenant_id
    assert icaluid_index.find(svc, tenant, ids["uid"])["value"] == []
    for key in keys.values():
        mailboxes.resync(svc, key.tenant_id, key.user_id)
    found = icaluid_index.find(svc, tenant, ids["uid"])
    assert {v["id"] for v in found["value"]} == {ids["adele"], ids["ben"]}
