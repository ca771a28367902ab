"""EWS mailboxes end to end through the sync engine: exchangelib against the EWS simulator
(NTLM or Basic over TLS with its own CA), Azurite as the mirror; nothing of ours is mocked."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ewssim.testing import EwsSim, run_ewssim
from shared.adapters.ews_exchangelib import EwsSource
from shared.compose import Services, build_services
from shared.core.entity import join_properties
from shared.core.ews import ews_user_id
from shared.core.model import MailboxKey, SyncRequest, Trigger
from shared.core.rounds import stamp_request
from shared.core.window import plan_window
from shared.errors import InputError
from shared.secrets import EnvSecrets
from shared.services import mailboxes, timers
from shared.services.sync import SyncOutcome, run_sync_request
from shared.settings import Settings
from tests.ews.helpers import retire

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "Sv(-passw0rd"
NOW = datetime.now(UTC).replace(microsecond=0)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def sim() -> Iterator[EwsSim]:
    with run_ewssim() as handle:
        yield handle


def _settings(
    sim: EwsSim, azurite: str, tenant: str, env: dict[str, str] | None = None, **ews: str
) -> Settings:
    provider = {
        "provider": "ews",
        "ewsUrl": sim.ews_url,
        "exchangeVersion": "Exchange2016",
        "username": "CONTOSO\\svc-calsync",
        **ews,
    }
    return Settings.from_env(
        {
            "TENANT_IDS": tenant,
            "CLIENT_ID": str(uuid.uuid4()),
            "CA_BUNDLE": sim.ca_pem_path,
            "AzureWebJobsStorage": azurite,
            "MAILBOX_PROVIDERS": json.dumps({tenant: provider}),
            **(env or {}),
        }
    )


@pytest.fixture
def world(
    sim: EwsSim, azurite: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Services, MailboxKey, str, Clock]]:
    """A fresh mailbox on the simulated Exchange, enrolled in a fresh EWS tenant (settings from
    a test's `settings_env` mark, if any)."""
    mark = request.node.get_closest_marker("settings_env")
    env = dict(mark.args[0]) if mark else None
    tenant = str(uuid.uuid4())
    smtp = f"ann.{uuid.uuid4().hex[:6]}@contoso.example"
    sim.add_account("CONTOSO\\svc-calsync", PASSWORD, ["*"])
    sim.add_mailbox(smtp)
    clock = Clock()
    svc = build_services(
        _settings(sim, azurite, tenant, env),
        secrets=EnvSecrets({"SECRET_EWS_PASSWORD": PASSWORD}),
        clock=clock,
    )
    view, created = mailboxes.enrol(svc, tenant, smtp, {"weeksBack": 1, "weeksAhead": 4})
    assert created
    assert view["options"]["mode"] == "poll"
    yield svc, MailboxKey(tenant, ews_user_id(smtp)), smtp, clock
    retire(svc, tenant, smtp)


def _run(svc: Services, key: MailboxKey) -> SyncOutcome:
    """One poll round of the mailbox, stamped now (no earlier round can fold it)."""
    request = SyncRequest(
        key.tenant_id, key.user_id, Trigger.POLL, requested_at=stamp_request(svc.now())
    )
    return run_sync_request(svc, request)


def _round(svc: Services, key: MailboxKey) -> str:
    """The round's result and, for one that ran, how: `ok full +1 -0`."""
    out = _run(svc, key)
    if out.result != "ok":
        return out.result
    return f"ok {'full' if out.full else 'delta'} +{out.upserts} -{out.deletes}"


def _next_poll(svc: Services, key: MailboxKey) -> datetime | None:
    record = svc.state.find_mailbox(key)
    assert record is not None
    return record.status.next_poll


def _at(days: int, hour: int) -> str:
    day = NOW.date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


def _mirror(svc: Services, key: MailboxKey) -> dict[str, dict[str, Any]]:
    """The mirror of the mailbox, by event id."""
    return {str(r["event_id"]): r for r in map(join_properties, svc.state.list_events(key))}


def _expected(sim: EwsSim, svc: Services, key: MailboxKey, smtp: str) -> dict[str, dict[str, Any]]:
    """The simulator's CalendarView of the mailbox's window, keyed as the mirror keys it."""
    record = svc.state.find_mailbox(key)
    assert record is not None
    window = plan_window(svc.now(), record.options)
    out = {}
    for inst in sim.view(smtp, window.start.isoformat(), window.end.isoformat()):
        if inst["kind"] == "Single":
            event_id = inst["id"]
        else:
            original = datetime.fromisoformat(inst["originalStart"]).astimezone(UTC)
            event_id = f"{inst['masterId']}~{original.strftime('%Y%m%dT%H%M%SZ')}"
        out[event_id] = inst
    return out


def _assert_equal(sim: EwsSim, svc: Services, key: MailboxKey, smtp: str) -> None:
    """The mirror equals the simulator's calendar in the window, field by field."""
    mirror, expected = _mirror(svc, key), _expected(sim, svc, key, smtp)
    assert set(mirror) == set(expected)
    kinds = {"Single": "singleInstance", "Occurrence": "occurrence", "Exception": "exception"}
    for event_id, inst in expected.items():
        row = mirror[event_id]
        assert row["subject"] == inst["subject"]
        assert row["type"] == kinds[inst["kind"]]
        assert row["is_all_day"] is inst["isAllDay"]
        assert row["location"] == inst["location"]
        assert row["sensitivity"] == inst["sensitivity"].lower()
        assert row["ical_uid"] == inst["uid"]
        assert row["series_master_id"] == ("" if inst["kind"] == "Single" else inst["masterId"])
        if not inst["isAllDay"]:
            assert row["start"] == datetime.fromisoformat(inst["start"])
            assert row["end"] == datetime.fromisoformat(inst["end"])


def test_first_round_mirrors_singles_all_day_and_a_series(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """A single in W. Europe time, an all-day event and a weekly series with an edited and a
    cancelled occurrence are mirrored as Graph-shaped instances equal to the calendar."""
    svc, key, smtp, _ = world
    sim.create(
        smtp,
        subject="Review",
        start=_at(1, 9),
        end=_at(1, 10),
        time_zone="W. Europe Standard Time",
        location="Room 1",
    )
    allday = sim.create(
        smtp, subject="Offsite", start=_at(2, 0), end=_at(4, 0), is_all_day=True, time_zone="UTC"
    )
    series = sim.create(
        smtp,
        subject="Standup",
        start=_at(0, 8),
        end=_at(0, 9),
        recurrence={"pattern": "daily", "count": 5},
    )
    sim.edit_occurrence(smtp, series, 2, subject="Standup (moved)", location="Hall")
    sim.cancel_occurrence(smtp, series, 3)
    assert _round(svc, key).startswith("ok")
    _assert_equal(sim, svc, key, smtp)
    mirror = _mirror(svc, key)
    assert mirror[allday]["all_day_start_date"] == (NOW.date() + timedelta(days=2)).isoformat()
    assert mirror[allday]["all_day_end_date"] == (NOW.date() + timedelta(days=4)).isoformat()
    assert sum(1 for r in mirror.values() if r["series_master_id"] == series) == 4


def test_incremental_rounds_follow_changes_and_skip_the_view_when_quiet(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """SyncFolderItems from the stored state brings updates, deletions and new items; a quiet
    round asks for no CalendarView."""
    svc, key, smtp, _ = world
    one = sim.create(smtp, subject="One", start=_at(1, 9), end=_at(1, 10))
    two = sim.create(smtp, subject="Two", start=_at(2, 9), end=_at(2, 10))
    assert _round(svc, key).startswith("ok")
    cursor = svc.state.get_cursor(key)
    assert cursor.delta_link.startswith("ews-sync:")
    sim.update(smtp, one, subject="One, renamed")
    sim.delete(smtp, two)
    sim.create(smtp, subject="Three", start=_at(3, 9), end=_at(3, 10))
    assert _round(svc, key) == "ok delta +2 -1"
    _assert_equal(sim, svc, key, smtp)
    before = sim.calls().get("FindItem", 0)
    assert _round(svc, key) == "ok delta +0 -0"
    assert sim.calls().get("FindItem", 0) == before
    _assert_equal(sim, svc, key, smtp)


def test_events_move_out_of_and_back_into_the_window(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """An item moved past the window leaves the mirror; moved back, it returns; a series
    shortened loses its later occurrences."""
    svc, key, smtp, _ = world
    item = sim.create(smtp, subject="Movable", start=_at(1, 9), end=_at(1, 10))
    series = sim.create(
        smtp,
        subject="Weekly",
        start=_at(0, 7),
        end=_at(0, 8),
        recurrence={"pattern": "weekly", "count": 3},
    )
    assert _round(svc, key).startswith("ok")
    sim.update(smtp, item, start=_at(90, 9), end=_at(90, 10))
    sim.update(smtp, series, recurrence={"pattern": "weekly", "count": 1})
    assert _round(svc, key) == "ok delta +1 -3"
    assert item not in _mirror(svc, key)
    _assert_equal(sim, svc, key, smtp)
    sim.update(smtp, item, start=_at(5, 9), end=_at(5, 10))
    assert _round(svc, key) == "ok delta +1 -0"
    assert item in _mirror(svc, key)
    _assert_equal(sim, svc, key, smtp)


def test_invalid_sync_state_resyncs_the_window_and_finds_a_deletion_in_the_gap(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """ErrorInvalidSyncStateData turns the round into a full listing whose diff removes the
    item deleted while the state was lost."""
    svc, key, smtp, _ = world
    gone = sim.create(smtp, subject="Doomed", start=_at(1, 9), end=_at(1, 10))
    sim.create(smtp, subject="Kept", start=_at(1, 11), end=_at(1, 12))
    assert _round(svc, key).startswith("ok")
    sim.knob("invalidate-sync", smtp=smtp)
    sim.delete(smtp, gone)
    sim.knob("invalidate-sync", smtp=smtp)  # the deletion is past any state we could hold
    assert _round(svc, key) == "ok full +0 -1"
    _assert_equal(sim, svc, key, smtp)


# Without the window's margin, every day's roll recreates the window (with it: tests/services/
# test_window_margin.py).
@pytest.mark.settings_env({"WINDOW_MARGIN_DAYS": "0"})
def test_window_roll_after_a_day_down_lists_the_new_window(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """A host back after a day rolls the window: the next round is full and the event that
    fell behind the window's start leaves the mirror."""
    svc, key, smtp, clock = world
    old = sim.create(smtp, subject="Last week", start=_at(-7, 9), end=_at(-7, 10))
    assert _round(svc, key).startswith("ok")
    assert old in _mirror(svc, key)
    clock.now += timedelta(days=1)
    assert _round(svc, key).startswith("ok full")
    assert old not in _mirror(svc, key)
    _assert_equal(sim, svc, key, smtp)


def test_server_busy_is_throttling_with_its_back_off(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """ErrorServerBusy with BackOffMilliseconds 7000 re-queues the round and holds the mailbox
    for those 7 s, like Graph's Retry-After."""
    svc, key, smtp, _ = world
    sim.knob("throttle", smtp=smtp, count=1, back_off_ms=7000)
    assert _round(svc, key) == "throttled"
    cursor = svc.state.get_cursor(key)
    assert cursor.throttled_until is not None
    assert 6 <= (cursor.throttled_until - svc.now()).total_seconds() <= 8
    record = svc.state.find_mailbox(key)
    assert record is not None
    assert record.status.last_error_code == "ErrorServerBusy"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("password", "Unauthorized"),
        ("impersonation", "ErrorImpersonateUserDenied"),
        ("mailbox", "ErrorNonExistentMailbox"),
    ],
)
def test_refusals_are_recorded_with_the_ews_code(
    sim: EwsSim, azurite: str, change: str, code: str
) -> None:
    """A wrong password (401), a service account without impersonation rights and an unknown
    mailbox each fail the round with EWS's code on the status and a message naming the fix."""
    tenant = str(uuid.uuid4())
    user = f"CONTOSO\\svc-{uuid.uuid4().hex[:6]}"
    smtp = f"bob.{uuid.uuid4().hex[:6]}@contoso.example"
    sim.add_account(user, PASSWORD, [] if change == "impersonation" else ["*"])
    if change != "mailbox":
        sim.add_mailbox(smtp)
    password = "wrong" if change == "password" else PASSWORD
    svc = build_services(
        _settings(sim, azurite, tenant, username=user, auth="Basic"),
        secrets=EnvSecrets({"SECRET_EWS_PASSWORD": password}),
    )
    mailboxes.enrol(svc, tenant, smtp, {})
    key = MailboxKey(tenant, ews_user_id(smtp))
    assert _round(svc, key) == "retrying"
    record = svc.state.find_mailbox(key)
    assert record is not None
    assert record.status.last_error_code == code
    assert "ApplicationImpersonation" in record.status.last_error or change != "impersonation"
    retire(svc, tenant, smtp)


def test_mailbox_options_apply_to_ews_events(sim: EwsSim, azurite: str) -> None:
    """Private events are masked, bodies come as text, and an all-day event in Tokyo keeps its
    date in a mailbox whose zone is Asia/Tokyo."""
    tenant = str(uuid.uuid4())
    smtp = f"opts.{uuid.uuid4().hex[:6]}@contoso.example"
    sim.add_account("CONTOSO\\svc-calsync", PASSWORD, ["*"])
    sim.add_mailbox(smtp)
    svc = build_services(
        _settings(sim, azurite, tenant), secrets=EnvSecrets({"SECRET_EWS_PASSWORD": PASSWORD})
    )
    options = {"private": "mask", "bodyType": "text", "timeZone": "Asia/Tokyo", "weeksAhead": 2}
    mailboxes.enrol(svc, tenant, smtp, options)
    key = MailboxKey(tenant, ews_user_id(smtp))
    day = NOW.date() + timedelta(days=3)
    tokyo_midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=9)
    holiday = sim.create(
        smtp,
        subject="Holiday",
        start=tokyo_midnight.isoformat(),
        end=(tokyo_midnight + timedelta(days=1)).isoformat(),
        is_all_day=True,
        time_zone="Tokyo Standard Time",
        body="<p>Closed &amp; <b>quiet</b></p>",
    )
    secret = sim.create(
        smtp, subject="Doctor", start=_at(1, 9), end=_at(1, 10), sensitivity="Private"
    )
    assert _round(svc, key).startswith("ok")
    mirror = _mirror(svc, key)
    assert mirror[holiday]["all_day_start_date"] == day.isoformat()
    assert mirror[holiday]["start"] == tokyo_midnight
    assert mirror[holiday]["start_time_zone"] == "Asia/Tokyo"
    assert (mirror[holiday]["body_content_type"], mirror[holiday]["body"]) == (
        "text",
        "Closed & quiet",
    )
    assert mirror[secret]["subject"] == "Private appointment"
    assert mirror[secret]["masked"] is True
    retire(svc, tenant, smtp)


def test_a_large_calendar_comes_in_pages(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """230 items take three SyncFolderItems requests and three pages of the round."""
    svc, key, smtp, _ = world
    for n in range(230):
        sim.create(smtp, subject=f"Item {n}", start=_at(n % 20, 9), end=_at(n % 20, 10))
    before = sim.calls().get("SyncFolderItems", 0)
    outcome = _run(svc, key)
    assert (outcome.result, outcome.pages, outcome.upserts) == ("ok", 3, 230)
    assert sim.calls()["SyncFolderItems"] - before == 3
    _assert_equal(sim, svc, key, smtp)


def test_a_malformed_answer_fails_the_round_and_the_next_one_heals(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """A SOAP answer cut short is recorded on the status and retried; the cursor did not
    move, so the next round brings the change it hid."""
    svc, key, smtp, _ = world
    assert _round(svc, key).startswith("ok")
    cursor = svc.state.get_cursor(key).delta_link
    sim.create(smtp, subject="Late", start=_at(1, 9), end=_at(1, 10))
    sim.knob("garble", count=1)
    assert _round(svc, key) == "retrying"
    record = svc.state.find_mailbox(key)
    assert record is not None
    assert record.status.last_error_code == "MalformedResponseError"
    assert "malformed EWS answer" in record.status.last_error
    assert svc.state.get_cursor(key).delta_link == cursor
    assert _round(svc, key) == "ok delta +1 -0"
    _assert_equal(sim, svc, key, smtp)


def test_the_poll_timer_runs_ews_mailboxes_and_the_admin_api_shows_them(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """An EWS mailbox is polled by the poll timer at its interval (not before), and its
    status and mirrored events read like a Graph mailbox's."""
    svc, key, smtp, clock = world
    sim.create(smtp, subject="Polled", start=_at(1, 9), end=_at(1, 10))
    timers.run_poll(svc)  # other tests' mailboxes share the tables: read this one's status
    first = _next_poll(svc, key)
    assert first == clock.now + timedelta(seconds=300)
    timers.run_poll(svc)
    assert _next_poll(svc, key) == first  # not again within pollSeconds
    clock.now += timedelta(seconds=301)
    timers.run_poll(svc)
    assert _next_poll(svc, key) == clock.now + timedelta(seconds=300)
    assert _round(svc, key).startswith("ok")
    status = mailboxes.status(svc, key.tenant_id, smtp)
    assert status["userId"] == key.user_id
    assert status["status"]["eventCount"] == 1
    listed = mailboxes.events(svc, key.tenant_id, smtp, None, None)
    assert [e["subject"] for e in listed["value"]] == ["Polled"]


def test_a_calendar_view_at_the_find_count_limit_changes_nothing(
    sim: EwsSim, world: tuple[Services, MailboxKey, str, Clock]
) -> None:
    """A CalendarView slice as full as the server's EWSFindCountLimit may be cut: the round
    fails with CalendarViewFull and the mirror keeps what it had."""
    svc, key, smtp, _ = world
    for n in range(3):
        sim.create(smtp, subject=f"Kept {n}", start=_at(n, 9), end=_at(n, 10))
    assert _round(svc, key).startswith("ok")
    svc.ews = EwsSource(svc.secrets, ca_bundle=sim.ca_pem_path, find_count_limit=4)
    sim.create(smtp, subject="Fourth", start=_at(4, 9), end=_at(4, 10))
    assert _round(svc, key) == "retrying"
    record = svc.state.find_mailbox(key)
    assert record is not None
    assert record.status.last_error_code == "CalendarViewFull"
    assert len(_mirror(svc, key)) == 3


class CachingSecrets:
    """A secret store that caches like Key Vault's adapter: `get` gives the cached value,
    `refresh` reads the vault (`self.vault`) again."""

    def __init__(self, vault: dict[str, str], cached: dict[str, str]) -> None:
        self.vault, self.cached = vault, cached

    def get(self, name: str) -> str:
        return self.cached.setdefault(name, self.vault[name])

    def refresh(self, name: str) -> str:
        self.cached[name] = self.vault[name]
        return self.cached[name]


def test_a_rotated_password_is_read_again_after_a_401(sim: EwsSim, azurite: str) -> None:
    """A 401 with the cached password makes the store read it again, so the next round
    authenticates with the rotated one instead of waiting out the cache."""
    tenant = str(uuid.uuid4())
    user = f"CONTOSO\\svc-rot{uuid.uuid4().hex[:4]}"
    smtp = f"rot.{uuid.uuid4().hex[:6]}@contoso.example"
    sim.add_account(user, "rotated-Passw0rd", ["*"])
    sim.add_mailbox(smtp)
    secrets = CachingSecrets({"ews-password": "rotated-Passw0rd"}, {"ews-password": "old"})
    svc = build_services(_settings(sim, azurite, tenant, username=user), secrets=secrets)
    mailboxes.enrol(svc, tenant, smtp, {})
    key = MailboxKey(tenant, ews_user_id(smtp))
    assert _round(svc, key) == "retrying"
    assert secrets.cached["ews-password"] == "rotated-Passw0rd"
    assert _round(svc, key).startswith("ok")
    retire(svc, tenant, smtp)


def test_another_calendar_of_an_ews_mailbox_is_refused(
    world: tuple[Services, MailboxKey, str, Clock],
) -> None:
    """On Exchange Server only the default calendar is mirrored: user:handle is a 400 saying
    so, and the default calendar's enrolment is untouched."""
    svc, key, smtp, _ = world
    with pytest.raises(InputError, match="default calendar only"):
        mailboxes.enrol(svc, key.tenant_id, f"{smtp}:side", {"calendarName": "Side"})
    assert svc.state.find_mailbox(MailboxKey(key.tenant_id, key.user_id, "side")) is None
    assert svc.state.find_mailbox(key) is not None
