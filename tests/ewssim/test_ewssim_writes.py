"""The EWS simulator's write operations and clock as exchangelib (and raw SOAP) meet them:
ChangeKey conflicts, the schema's structure enforced on requests, sync states that expire on
the virtual clock, keep-alives it sends."""

from __future__ import annotations

import base64
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone
from exchangelib import errors as x
from exchangelib.items import NEVER_OVERWRITE, SEND_TO_NONE

from ewssim.model import SYNC_STATE_DAYS
from ewssim.testing import EwsSim, run_ewssim
from shared.adapters.ews_exchangelib import EwsSource
from shared.ews_settings import EwsSettings
from shared.secrets import EnvSecrets

pytestmark = [pytest.mark.integration]
USER, PASSWORD = "CONTOSO\\svc-sim", "pa55-word"


@pytest.fixture(scope="module")
def sim() -> Iterator[EwsSim]:
    with run_ewssim() as handle:
        handle.add_account(USER, PASSWORD, ["*"])
        yield handle


def _mailbox(sim: EwsSim) -> str:
    smtp = f"w{uuid.uuid4().hex[:8]}@contoso.example"
    sim.add_mailbox(smtp)
    return smtp


def _account(sim: EwsSim, smtp: str) -> Any:
    ews = EwsSettings("t", sim.ews_url, "Exchange2016", "NTLM", USER)
    source = EwsSource(EnvSecrets({"SECRET_EWS_PASSWORD": PASSWORD}), ca_bundle=sim.ca_pem_path)
    return source.account(ews, smtp)


def _raw(sim: EwsSim, smtp: str, body: str) -> httpx.Response:
    envelope = (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
        '<s:Header><t:RequestServerVersion Version="Exchange2016"/>'
        "<t:ExchangeImpersonation><t:ConnectingSID>"
        f"<t:PrimarySmtpAddress>{smtp}</t:PrimarySmtpAddress>"
        "</t:ConnectingSID></t:ExchangeImpersonation></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return httpx.post(
        sim.ews_url,
        content=envelope.encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "text/xml"},
        verify=ssl.create_default_context(cafile=sim.ca_pem_path),
    )


def _item(account: Any, subject: str) -> Any:
    zone = EWSTimeZone("Europe/Paris")
    item = CalendarItem(
        account=account,
        folder=account.calendar,
        subject=subject,
        start=EWSDateTime(2026, 12, 2, 9, tzinfo=zone),
        end=EWSDateTime(2026, 12, 2, 10, tzinfo=zone),
    )
    item.save(send_meeting_invitations=SEND_TO_NONE)
    return item


def test_a_stale_change_key_is_an_irresolvable_conflict(sim: EwsSim) -> None:
    """UpdateItem with NeverOverwrite and a ChangeKey older than the item's is refused, and the
    item keeps what the other writer put there; with the current ChangeKey it goes through."""
    smtp = _mailbox(sim)
    account = _account(sim, smtp)
    item = _item(account, "Original")
    stale = item.changekey
    sim.update(smtp, item.id, subject="Changed elsewhere")
    item.subject = "Mine"
    with pytest.raises(x.ErrorIrresolvableConflict):
        item.save(update_fields=["subject"], conflict_resolution=NEVER_OVERWRITE)
    assert sim.item(smtp, item.id)["subject"] == "Changed elsewhere"
    item.changekey = sim.item(smtp, item.id)["changeKey"]
    item.save(update_fields=["subject"], conflict_resolution=NEVER_OVERWRITE)
    assert sim.item(smtp, item.id)["subject"] == "Mine"
    assert item.changekey != stale


def test_a_create_sends_nothing_with_send_to_none(sim: EwsSim) -> None:
    """SendToNone with attendees: the item is made, nobody gets anything."""
    smtp = _mailbox(sim)
    before = len(sim.sent())
    body = (
        '<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem>'
        "<t:Subject>Quiet</t:Subject><t:Start>2026-12-02T09:00:00Z</t:Start>"
        "<t:End>2026-12-02T10:00:00Z</t:End><t:RequiredAttendees><t:Attendee><t:Mailbox>"
        "<t:EmailAddress>bob@contoso.example</t:EmailAddress></t:Mailbox></t:Attendee>"
        "</t:RequiredAttendees></t:CalendarItem></m:Items></m:CreateItem>"
    )
    answer = _raw(sim, smtp, body)
    assert answer.status_code == 200
    assert 'ResponseClass="Success"' in answer.text
    assert sim.sent()[before:] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (  # End before Start: out of the schema's sequence
            '<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem>'
            "<t:End>2026-12-02T10:00:00Z</t:End><t:Start>2026-12-02T09:00:00Z</t:Start>"
            "</t:CalendarItem></m:Items></m:CreateItem>",
            "ErrorSchemaValidation",
        ),
        (  # an element the schema does not have
            '<m:CreateItem SendMeetingInvitations="SendToNone"><m:Items><t:CalendarItem>'
            "<t:Colour>red</t:Colour></t:CalendarItem></m:Items></m:CreateItem>",
            "ErrorSchemaValidation",
        ),
        (  # calendar items need SendMeetingInvitations
            "<m:CreateItem><m:Items><t:CalendarItem><t:Subject>x</t:Subject>"
            "<t:Start>2026-12-02T09:00:00Z</t:Start><t:End>2026-12-02T10:00:00Z</t:End>"
            "</t:CalendarItem></m:Items></m:CreateItem>",
            "ErrorSendMeetingInvitationsRequired",
        ),
        (  # a value outside the enumeration
            '<m:UpdateItem ConflictResolution="Sometimes" '
            'SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges/></m:UpdateItem>',
            "ErrorSchemaValidation",
        ),
        (
            '<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="x"/></m:ItemIds>'
            "</m:DeleteItem>",
            "ErrorSendMeetingCancellationsRequired",
        ),
    ],
)
def test_requests_outside_the_schema_are_refused(sim: EwsSim, body: str, code: str) -> None:
    """Children out of order, unknown elements, bad enumerations and missing required
    attributes are refused with Exchange's code, and nothing is made."""
    smtp = _mailbox(sim)
    answer = _raw(sim, smtp, body)
    assert code in answer.text
    assert 'ResponseClass="Success"' not in answer.text
    assert sim.view(smtp, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z") == []


def test_cancel_calendar_item_is_for_meetings(sim: EwsSim) -> None:
    """CancelCalendarItem on an appointment without attendees is ErrorInvalidOperation; on a
    meeting it tells the attendees and removes it."""
    smtp = _mailbox(sim)
    lone = sim.create(
        smtp, subject="Alone", start="2026-12-02T09:00:00Z", end="2026-12-02T10:00:00Z"
    )
    meeting = sim.create(
        smtp,
        subject="Meet",
        start="2026-12-03T09:00:00Z",
        end="2026-12-03T10:00:00Z",
        organizer={"name": "", "address": smtp},
        required=[{"name": "Bob", "address": "bob@contoso.example"}],
    )

    def cancel(item_id: str) -> str:
        return _raw(
            sim,
            smtp,
            '<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:CancelCalendarItem>'
            f'<t:ReferenceItemId Id="{item_id}"/></t:CancelCalendarItem></m:Items>'
            "</m:CreateItem>",
        ).text

    assert "ErrorInvalidOperation" in cancel(lone)
    assert 'ResponseClass="Success"' in cancel(meeting)
    left = sim.view(smtp, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert [i["id"] for i in left] == [lone]
    assert [(s["kind"], s["to"]) for s in sim.sent() if s["smtp"] == smtp] == [
        ("cancellation", ["bob@contoso.example"])
    ]


def test_a_sync_state_expires_on_the_virtual_clock(sim: EwsSim) -> None:
    """A sync state older than SYNC_STATE_DAYS (moved there by the clock) is
    ErrorInvalidSyncStateData; a fresh one works."""
    from exchangelib.folders.collections import FolderCollection, SyncCompleted

    smtp = _mailbox(sim)
    folder = _account(sim, smtp).calendar

    def sync(state: str | None) -> str:
        walk = FolderCollection(account=folder.account, folders=[folder]).sync_items(
            sync_state=state, only_fields=["uid"]
        )
        try:
            for _ in walk:
                pass
        except SyncCompleted as done:
            return str(done.sync_state)
        raise AssertionError("no sync state")

    state = sync(None)
    assert sync(state)
    sim.advance(SYNC_STATE_DAYS * 86400 + 60)
    with pytest.raises(x.ErrorInvalidSyncStateData):
        sync(state)
    assert sync(sync(None))


def test_an_item_operations_error_message_still_has_items(sim: EwsSim) -> None:
    """messages.xsd requires Items in an UpdateItem (CreateItem, GetItem) response message,
    an error one too: ErrorItemNotFound comes with an empty Items."""
    from lxml import etree

    from ewssim.soap import M

    smtp = _mailbox(sim)
    answer = _raw(
        sim,
        smtp,
        '<m:UpdateItem ConflictResolution="NeverOverwrite" '
        'SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>'
        '<t:ItemId Id="bm93aGVyZQ=="/><t:Updates><t:SetItemField>'
        '<t:FieldURI FieldURI="item:Subject"/><t:CalendarItem><t:Subject>x</t:Subject>'
        "</t:CalendarItem></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges>"
        "</m:UpdateItem>",
    )
    msg = etree.fromstring(answer.content).find(f".//{{{M}}}UpdateItemResponseMessage")
    assert msg is not None
    assert msg.get("ResponseClass") == "Error"
    assert [etree.QName(c).localname for c in msg] == [
        "MessageText",
        "ResponseCode",
        "DescriptiveLinkKey",
        "Items",
    ]
    assert msg.findtext(f"{{{M}}}ResponseCode") == "ErrorItemNotFound"
