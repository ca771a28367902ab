"""Writes to EWS mailboxes through the write service: exchangelib against the EWS simulator
(NTLM over TLS), Azurite as the mirror and the write records; nothing of ours is mocked.
Each write is in the simulated Exchange and in the mirror when the call returns, on the feed
once with its origin, and the next SyncFolderItems round changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ewssim.testing import EwsSim, run_ewssim
from shared.compose import Services, build_services
from shared.core.ews import ews_user_id
from shared.core.model import MailboxKey
from shared.core.writes import ORIGIN_NAMESPACE, origin_of
from shared.errors import InputError, WriteConflict
from shared.secrets import EnvSecrets
from shared.services import mailboxes, writes
from shared.services.sync import run_sync_request
from shared.settings import Settings
from tests.ews.helpers import retire
from tests.services.simworld import (
    empty_write_queue,
    event_body,
    feed_of,
    mirror_rows,
    poll_request,
    when,
    write,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "Sv(-passw0rd"
ORIGIN_KEY = f"{ORIGIN_NAMESPACE.strip('{}').lower()}|calsyncOrigin|String"


@pytest.fixture(scope="module")
def sim() -> Iterator[EwsSim]:
    with run_ewssim() as handle:
        handle.add_account("CONTOSO\\svc-calsync", PASSWORD, ["*"])
        yield handle


@pytest.fixture
def world(sim: EwsSim, azurite: str) -> Iterator[tuple[Services, MailboxKey, str]]:
    """A fresh EWS mailbox enrolled in a fresh tenant, its first round done."""
    tenant = str(uuid.uuid4())
    smtp = f"wes.{uuid.uuid4().hex[:6]}@contoso.example"
    sim.add_mailbox(smtp)
    provider = {
        "provider": "ews",
        "ewsUrl": sim.ews_url,
        "exchangeVersion": "Exchange2016",
        "username": "CONTOSO\\svc-calsync",
    }
    settings = Settings.from_env(
        {
            "TENANT_IDS": tenant,
            "CLIENT_ID": str(uuid.uuid4()),
            "CA_BUNDLE": sim.ca_pem_path,
            "AzureWebJobsStorage": azurite,
            "MAILBOX_PROVIDERS": json.dumps({tenant: provider}),
        }
    )
    svc = build_services(settings, secrets=EnvSecrets({"SECRET_EWS_PASSWORD": PASSWORD}))
    empty_write_queue(svc)
    mailboxes.enrol(svc, tenant, smtp, {"weeksBack": 1, "weeksAhead": 4})
    key = MailboxKey(tenant, ews_user_id(smtp))
    assert _round(svc, key) == (0, 0)
    yield svc, key, smtp
    retire(svc, tenant, smtp)


def _round(svc: Services, key: MailboxKey) -> tuple[int, int]:
    """One poll round: (upserts, deletes)."""
    out = run_sync_request(svc, poll_request(svc, key))
    assert out.result == "ok", out
    return out.upserts, out.deletes


def _view(sim: EwsSim, smtp: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return sim.view(
        smtp, (now - timedelta(days=7)).isoformat(), (now + timedelta(days=28)).isoformat()
    )


def test_create_update_delete_of_a_single_event(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """A create is in Exchange (write options, origin marker, no invitation) and in the mirror
    at once; an update and a delete likewise; each is one change on the feed marked as ours,
    and the rounds after them change nothing."""
    svc, key, smtp = world
    mailboxes.enrol(
        svc,
        key.tenant_id,
        smtp,
        {"reminderMinutes": 30, "writePrivate": True, "writeTimeZone": "Europe/Paris"},
    )
    body = {"subject": "Boiler", "start": {"dateTime": when(1, 9)["dateTime"]}}
    body["end"] = {"dateTime": when(1, 10)["dateTime"]}
    view, status = write(svc, key, {"action": "create", "event": body, "writer": "helpdesk"}, "k-1")
    assert (status, view["status"]) == (201, "done")
    event_id = view["eventId"]
    item = sim.item(smtp, event_id)
    assert (item["subject"], item["sensitivity"], item["timeZone"]) == (
        "Boiler",
        "Private",
        "Romance Standard Time",
    )
    assert (item["reminderSet"], item["reminderMinutes"]) == (True, 30)
    assert item["extended"][ORIGIN_KEY] == f"calsync;writer=helpdesk;write={view['id']}"
    assert origin_of(view["event"]) == item["extended"][ORIGIN_KEY]
    row = mirror_rows(svc, key)[event_id]
    assert (row["subject"], row["change_key"]) == ("Boiler", item["changeKey"])
    assert _round(svc, key) == (0, 0)

    update = {"action": "update", "eventId": event_id, "event": {"subject": "Boiler, 2nd"}}
    view, status = write(svc, key, {**update, "writer": "helpdesk"}, "k-2")
    assert (status, view["event"]["subject"]) == (200, "Boiler, 2nd")
    assert sim.item(smtp, event_id)["subject"] == "Boiler, 2nd"
    assert mirror_rows(svc, key)[event_id]["subject"] == "Boiler, 2nd"
    assert _round(svc, key) == (0, 0)

    view, status = write(
        svc, key, {"action": "delete", "eventId": event_id, "writer": "helpdesk"}, "k-3"
    )
    assert (status, view["status"]) == (200, "done")
    assert [i["id"] for i in _view(sim, smtp)] == []
    assert event_id not in mirror_rows(svc, key)
    assert _round(svc, key) == (0, 0)
    mine = [(c.type, c.write_key, c.writer) for c in feed_of(svc, key) if c.event_id == event_id]
    assert mine == [
        ("created", "k-1", "helpdesk"),
        ("updated", "k-2", "helpdesk"),
        ("deleted", "k-3", "helpdesk"),
    ]
    assert sim.sent() == []  # no attendees: nobody was told anything


def test_a_retried_idempotency_key_makes_one_item(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """The same Idempotency-Key twice answers the same write and makes one item, with no
    second CreateItem."""
    svc, key, smtp = world
    first, _ = write(svc, key, {"action": "create", "event": event_body("Once")}, "same")
    before = sim.calls().get("CreateItem", 0)
    again, status = write(svc, key, {"action": "create", "event": event_body("Once")}, "same")
    assert (status, again["id"], again["eventId"]) == (201, first["id"], first["eventId"])
    assert sim.calls().get("CreateItem", 0) == before
    assert [i["id"] for i in _view(sim, smtp)] == [first["eventId"]]


def test_a_create_tried_again_finds_the_item_its_first_try_made(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """A create whose first try got through but was recorded as pending is found again by its
    origin marker (FindItem on the extended property): one item, no second CreateItem."""
    svc, key, smtp = world
    from dataclasses import replace

    from shared.services.write_mirror import writer_for

    view, _ = write(svc, key, {"action": "create", "event": event_body("Lost answer")}, "lost")
    assert svc.writes is not None
    record = svc.writes.get(view["id"])
    assert record is not None
    mailbox = svc.state.find_mailbox(key)
    assert mailbox is not None
    found = writer_for(svc, mailbox).find_origin(mailbox, record.origin)
    assert found is not None
    assert found["id"] == view["eventId"]
    pending = replace(record, status="pending", attempts=1, retry_at=svc.now())
    svc.writes.save(pending)
    before = sim.calls().get("CreateItem", 0)
    assert writes.run_write_message(svc, f'{{"writeId":"{view["id"]}"}}').endswith("done")
    assert sim.calls().get("CreateItem", 0) == before
    assert [i["id"] for i in _view(sim, smtp)] == [view["eventId"]]


def test_a_stale_change_key_is_409_with_the_current_version(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """Changed in Outlook since the mirror's ChangeKey: UpdateItem with NeverOverwrite is
    ErrorIrresolvableConflict, nothing is overwritten, the current version comes back (and is
    mirrored); with it, the update goes through."""
    svc, key, smtp = world
    made, _ = write(svc, key, {"action": "create", "event": event_body("Original")})
    sim.update(smtp, made["eventId"], subject="Changed in Outlook")
    update = {"action": "update", "eventId": made["eventId"], "event": {"subject": "Mine"}}
    with pytest.raises(WriteConflict) as info:
        write(svc, key, update)
    assert info.value.http_status == 409
    assert info.value.current is not None
    assert info.value.current["subject"] == "Changed in Outlook"
    assert sim.item(smtp, made["eventId"])["subject"] == "Changed in Outlook"
    assert mirror_rows(svc, key)[made["eventId"]]["subject"] == "Changed in Outlook"
    view, status = write(svc, key, update)
    assert (status, view["event"]["subject"]) == (200, "Mine")


def test_a_busy_server_queues_the_write_for_its_back_off(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """ErrorServerBusy: the write is pending, queued to be visible after BackOffMilliseconds,
    and done by the queue worker then."""
    svc, key, smtp = world
    sim.knob("throttle", smtp=smtp, count=1, back_off_ms=2000)
    view, status = write(svc, key, {"action": "create", "event": event_body("Busy")}, "busy-1")
    assert (status, view["status"], view["attempts"]) == (202, "pending", 1)
    assert view["error"]["code"] == "ErrorServerBusy"
    assert view["retryAt"] - view["updatedAt"] == timedelta(seconds=2)
    assert _view(sim, smtp) == []
    assert svc.write_queue is not None
    queue = svc.write_queue._queue
    assert list(queue.peek_messages()) == []  # invisible until the back-off has passed
    deadline = datetime.now(UTC) + timedelta(seconds=8)
    message = None
    while message is None and datetime.now(UTC) < deadline:
        message = next(iter(queue.receive_messages(visibility_timeout=30, max_messages=1)), None)
    assert message is not None
    assert writes.run_write_message(svc, message.content).endswith("done")
    queue.delete_message(message)  # handled, as the queue trigger would: no other test sees it
    done = writes.get_write(svc, view["id"])
    assert done["eventId"] in mirror_rows(svc, key)
    assert [i["id"] for i in _view(sim, smtp)] == [done["eventId"]]


def test_a_series_its_occurrence_edit_pattern_change_and_cancel(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """A weekly series is mirrored as its 4 occurrences at once; editing one makes it an
    exception in Exchange and the mirror; shortening the pattern to 2 removes the others;
    cancelling one (no attendees: deleted) leaves one; each round after changes nothing."""
    svc, key, smtp = world
    start = when(1, 9)
    day = datetime.fromisoformat(start["dateTime"])
    recurrence = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day.strftime("%A").lower()]},
        "range": {
            "type": "numbered",
            "startDate": day.date().isoformat(),
            "numberOfOccurrences": 4,
        },
    }
    made, _ = write(
        svc,
        key,
        {"action": "create", "event": event_body("Stand-up", recurrence=recurrence)},
        "s-1",
    )
    master_id = made["eventId"]
    assert made["event"]["type"] == "seriesMaster"
    rows = mirror_rows(svc, key)
    assert sorted(r["type"] for r in rows.values()) == ["occurrence"] * 4
    assert {r["series_master_id"] for r in rows.values()} == {master_id}
    assert _round(svc, key) == (0, 0)

    last = max(rows.values(), key=lambda r: r["start"])
    edit = {"action": "update", "eventId": last["event_id"], "event": {"subject": "Retro"}}
    write(svc, key, edit, "s-2")
    edited = mirror_rows(svc, key)[last["event_id"]]
    assert (edited["type"], edited["subject"]) == ("exception", "Retro")
    kinds = sorted(i["kind"] for i in _view(sim, smtp))
    assert kinds == ["Exception", "Occurrence", "Occurrence", "Occurrence"]
    assert _round(svc, key) == (0, 0)  # the siblings' new ChangeKeys came with the write

    shorter = {**recurrence, "range": {**recurrence["range"], "numberOfOccurrences": 2}}
    write(svc, key, {"action": "update", "eventId": master_id, "event": {"recurrence": shorter}})
    rows = mirror_rows(svc, key)
    assert len(rows) == 2
    assert last["event_id"] not in rows
    assert [i["kind"] for i in _view(sim, smtp)] == ["Occurrence", "Occurrence"]
    assert _round(svc, key) == (0, 0)

    first = min(rows.values(), key=lambda r: r["start"])
    view, _ = write(
        svc, key, {"action": "cancel", "eventId": first["event_id"], "comment": "Holiday"}, "s-4"
    )
    assert view["status"] == "done"
    assert list(mirror_rows(svc, key)) == [max(rows.values(), key=lambda r: r["start"])["event_id"]]
    assert len(_view(sim, smtp)) == 1
    assert _round(svc, key) == (0, 0)
    created = [c for c in feed_of(svc, key) if c.type == "created"]
    assert len(created) == 4
    assert {c.write_key for c in created} == {"s-1"}
    assert sim.sent() == []


def test_a_meeting_invites_and_its_cancel_tells_the_attendees(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """With attendees, CreateItem sends them a request, an update of the meeting an update;
    cancel is CancelCalendarItem (they are told) and the meeting leaves calendar and mirror."""
    svc, key, smtp = world
    before = len(sim.sent())
    attendees = [{"emailAddress": {"address": "bob@contoso.example", "name": "Bob"}}]
    made, _ = write(
        svc, key, {"action": "create", "event": event_body("Planning", attendees=attendees)}
    )
    mine = [s for s in sim.sent()[before:] if s["smtp"] == smtp]
    assert [(s["kind"], s["to"]) for s in mine] == [("request", ["bob@contoso.example"])]
    moved = {"action": "update", "eventId": made["eventId"], "event": {"location": "Hall"}}
    write(svc, key, moved)  # no attendees in the update: the meeting's are told anyway
    swap = [{"emailAddress": {"address": "cy@contoso.example"}}]
    write(svc, key, {"action": "update", "eventId": made["eventId"], "event": {"attendees": swap}})
    view, _ = write(svc, key, {"action": "cancel", "eventId": made["eventId"], "comment": "Off"})
    assert view["status"] == "done", view["error"]
    mine = [(s["kind"], s["to"]) for s in sim.sent()[before:] if s["smtp"] == smtp]
    assert mine == [
        ("request", ["bob@contoso.example"]),
        ("update", ["bob@contoso.example"]),
        ("update", ["cy@contoso.example"]),
        ("cancellation", ["bob@contoso.example"]),  # taken off by the update
        ("cancellation", ["cy@contoso.example"]),
    ]
    assert _view(sim, smtp) == []
    assert mirror_rows(svc, key) == {}


def test_a_pattern_exchange_cannot_take_is_a_400_before_any_call(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """A relative monthly pattern on two days is refused naming the field, with no
    CreateItem (EWS's relative patterns take one day)."""
    svc, key, _ = world
    monthly = {
        "pattern": {"type": "relativeMonthly", "daysOfWeek": ["monday", "friday"]},
        "range": {"type": "noEnd", "startDate": when(1, 9)["dateTime"][:10]},
    }
    before = sim.calls().get("CreateItem", 0)
    with pytest.raises(InputError) as info:
        write(svc, key, {"action": "create", "event": event_body("Monthly", recurrence=monthly)})
    assert info.value.message.startswith("event.recurrence.pattern.daysOfWeek")
    assert sim.calls().get("CreateItem", 0) == before


@pytest.mark.parametrize(
    ("pattern", "days"),
    [
        ({"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}, [31, 28, 31]),
        (
            {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["friday"], "index": "last"},
            [29, 26, 26],
        ),
    ],
)
def test_monthly_series_fall_on_their_days(
    sim: EwsSim,
    world: tuple[Services, MailboxKey, str],
    pattern: dict[str, object],
    days: list[int],
) -> None:
    """A monthly series from 2027-01-01 falls on the 31st (the last day in February) or the
    last Friday, in Exchange; the mirror holds what its window shows and a round adds nothing."""
    svc, key, smtp = world
    recurrence = {
        "pattern": pattern,
        "range": {"type": "numbered", "startDate": "2027-01-01", "numberOfOccurrences": 3},
    }
    event = {
        "subject": "Payroll",
        "start": {"dateTime": "2027-01-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2027-01-01T10:00:00", "timeZone": "UTC"},
        "recurrence": recurrence,
    }
    made, status = write(svc, key, {"action": "create", "event": event})
    assert (status, made["event"]["type"]) == (201, "seriesMaster")
    found = sim.view(smtp, "2027-01-01T00:00:00Z", "2027-04-01T00:00:00Z")
    assert [datetime.fromisoformat(i["start"]).day for i in found] == days
    assert _round(svc, key) == (0, 0)


def test_an_all_day_event_with_a_text_body_round_trips(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """An all-day event in its zone and a plain-text body (writeBodyType text) are stored as
    Exchange keeps them and mirrored as a round renders them: the next round changes nothing."""
    svc, key, smtp = world
    mailboxes.enrol(svc, key.tenant_id, smtp, {"writeBodyType": "text", "timeZone": "Europe/Paris"})
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    event = {
        "subject": "Offsite",
        "isAllDay": True,
        "body": "Bring\nboots",
        "start": {"dateTime": f"{day.isoformat()}T00:00:00"},
        "end": {"dateTime": f"{(day + timedelta(days=1)).isoformat()}T00:00:00"},
    }
    view, status = write(svc, key, {"action": "create", "event": event})
    assert status == 201
    item = sim.item(smtp, view["eventId"])
    assert (item["bodyType"], item["body"], item["timeZone"]) == (
        "Text",
        "Bring\nboots",
        "Romance Standard Time",
    )
    row = mirror_rows(svc, key)[view["eventId"]]
    assert (row["all_day_start_date"], row["all_day_end_date"]) == (
        day.isoformat(),
        (day + timedelta(days=1)).isoformat(),
    )
    assert _round(svc, key) == (0, 0)


def test_an_exception_moved_far_away_is_still_found_by_its_id(
    sim: EwsSim, world: tuple[Services, MailboxKey, str]
) -> None:
    """An occurrence moved ten days away in Outlook keeps its id (master ~ original start);
    an update through the write API finds it in the window's CalendarView and edits it."""
    svc, key, smtp = world
    start = when(1, 9)
    daily = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {
            "type": "numbered",
            "startDate": start["dateTime"][:10],
            "numberOfOccurrences": 2,
        },
    }
    made, _ = write(svc, key, {"action": "create", "event": event_body("Daily", recurrence=daily)})
    moved = datetime.fromisoformat(start["dateTime"]).replace(tzinfo=UTC) + timedelta(days=10)
    sim.edit_occurrence(
        smtp,
        made["eventId"],
        1,
        start=moved.isoformat(),
        end=(moved + timedelta(hours=1)).isoformat(),
    )
    assert _round(svc, key) == (2, 0)  # the exception and its sibling's new ChangeKey
    first = min(mirror_rows(svc, key).values(), key=lambda r: r["original_start"])
    assert first["type"] == "exception"
    edit = {"action": "update", "eventId": first["event_id"], "event": {"subject": "Far"}}
    view, status = write(svc, key, edit)
    assert (status, view["event"]["subject"], view["eventId"]) == (200, "Far", first["event_id"])
    assert _round(svc, key) == (0, 0)
