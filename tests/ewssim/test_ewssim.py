"""The EWS simulator as exchangelib meets it: NTLM bound to a connection, Basic, impersonation
and its refusals, sync states and their folding, CalendarView limits, and raw SOAP faults."""

from __future__ import annotations

import base64
import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from exchangelib import EWSDateTime
from exchangelib import errors as x
from lxml import etree

from ewssim.testing import EwsSim, run_ewssim
from shared.adapters.ews_exchangelib import EwsSource
from shared.ews_settings import EwsSettings
from shared.secrets import EnvSecrets

pytestmark = [pytest.mark.integration]
USER, PASSWORD = "CONTOSO\\svc-sim", "pa55-word"
START = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def sim() -> Iterator[EwsSim]:
    with run_ewssim() as handle:
        handle.add_account(USER, PASSWORD, ["*"])
        handle.add_account("CONTOSO\\nobody", PASSWORD, [])
        yield handle


def _mailbox(sim: EwsSim) -> str:
    smtp = f"m{uuid.uuid4().hex[:8]}@contoso.example"
    sim.add_mailbox(smtp)
    return smtp


def _account(
    sim: EwsSim, smtp: str, *, user: str = USER, password: str = PASSWORD, auth: str = "NTLM"
) -> Any:
    ews = EwsSettings("t", sim.ews_url, "Exchange2016", auth, user)  # type: ignore[arg-type]
    source = EwsSource(EnvSecrets({"SECRET_EWS_PASSWORD": password}), ca_bundle=sim.ca_pem_path)
    return source.account(ews, smtp)


def _raw(
    sim: EwsSim, body: str, *, version: str = "Exchange2016", header: str = ""
) -> httpx.Response:
    envelope = (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
        f'<s:Header><t:RequestServerVersion Version="{version}"/>{header}</s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return httpx.post(
        sim.ews_url,
        content=envelope.encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "text/xml"},
        verify=ssl.create_default_context(cafile=sim.ca_pem_path),
    )


GET_CALENDAR = (
    "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
    '<m:FolderIds><t:DistinguishedFolderId Id="calendar"/></m:FolderIds></m:GetFolder>'
)


def test_ntlm_authenticates_a_connection_once(sim: EwsSim) -> None:
    """NTLM's handshake binds to the connection: several operations cost one handshake."""
    smtp = _mailbox(sim)
    before = sim.calls()["ntlm_handshakes"]
    account = _account(sim, smtp)
    folder = account.calendar
    list(folder.sync_items(only_fields=["uid"]))
    list(
        folder.view(
            start=EWSDateTime.from_datetime(START),
            end=EWSDateTime.from_datetime(START + timedelta(days=7)),
        ).only("subject")
    )
    assert sim.calls()["ntlm_handshakes"] == before + 1


@pytest.mark.parametrize("auth", ["NTLM", "Basic"])
def test_a_wrong_password_is_401(sim: EwsSim, auth: str) -> None:
    """With NTLM or Basic, a wrong password is a 401 that exchangelib reports as such."""
    account = _account(sim, _mailbox(sim), password="wrong", auth=auth)
    with pytest.raises(x.UnauthorizedError):
        account.calendar  # noqa: B018 - the property does the GetFolder


@pytest.mark.parametrize(
    ("user", "target", "error"),
    [
        ("CONTOSO\\nobody", "existing", x.ErrorImpersonateUserDenied),
        (USER, "nobody@contoso.example", x.ErrorNonExistentMailbox),
    ],
)
def test_impersonation_refusals(sim: EwsSim, user: str, target: str, error: type) -> None:
    """An account without the grant is ErrorImpersonateUserDenied; an unknown address is
    ErrorNonExistentMailbox (both SOAP faults)."""
    smtp = _mailbox(sim) if target == "existing" else target
    with pytest.raises(error):
        _account(sim, smtp, user=user).calendar  # noqa: B018


def test_denied_calendar_is_access_denied(sim: EwsSim) -> None:
    """A calendar closed to the account answers ErrorAccessDenied."""
    smtp = _mailbox(sim)
    sim.knob("deny-calendar", smtp=smtp)
    with pytest.raises(x.ErrorAccessDenied):
        list(_account(sim, smtp).calendar.sync_items())


def test_sync_folds_changes_and_pages(sim: EwsSim) -> None:
    """Since a state: created-then-deleted is not reported, updated items come once, deletions
    as deletes; small MaxChangesReturned pages to the same end."""
    smtp = _mailbox(sim)
    keep = sim.create(
        smtp, subject="keep", start="2026-12-02T09:00:00Z", end="2026-12-02T10:00:00Z"
    )
    folder = _account(sim, smtp).calendar
    assert [(k, i.id) for k, i in folder.sync_items(only_fields=["uid"])] == [("create", keep)]
    state = folder.item_sync_state
    brief = sim.create(
        smtp, subject="brief", start="2026-12-03T09:00:00Z", end="2026-12-03T10:00:00Z"
    )
    sim.delete(smtp, brief)
    sim.update(smtp, keep, subject="kept")
    sim.update(smtp, keep, subject="kept again")
    new = [
        sim.create(smtp, subject=f"n{n}", start="2026-12-04T09:00:00Z", end="2026-12-04T10:00:00Z")
        for n in range(5)
    ]
    sim.delete(smtp, new[0])
    got = [
        (k, i.id)
        for k, i in folder.sync_items(sync_state=state, only_fields=["uid"], max_changes_returned=2)
    ]
    assert got == [("update", keep)] + [("create", n) for n in new[1:]]


def test_stale_and_foreign_sync_states_are_invalid(sim: EwsSim) -> None:
    """A state of an older generation or of another mailbox is ErrorInvalidSyncStateData."""
    smtp, other = _mailbox(sim), _mailbox(sim)
    folder = _account(sim, smtp).calendar
    list(folder.sync_items())
    state = folder.item_sync_state
    with pytest.raises(x.ErrorInvalidSyncStateData):
        list(_account(sim, other).calendar.sync_items(sync_state=state))
    sim.knob("invalidate-sync", smtp=smtp)
    with pytest.raises(x.ErrorInvalidSyncStateData):
        list(folder.sync_items(sync_state=state))


def test_calendar_view_of_more_than_two_years_is_refused(sim: EwsSim) -> None:
    """A CalendarView spanning more than two years is ErrorCalendarViewRangeTooBig."""
    folder = _account(sim, _mailbox(sim)).calendar
    view = folder.view(
        start=EWSDateTime.from_datetime(START),
        end=EWSDateTime.from_datetime(START + timedelta(days=800)),
    )
    with pytest.raises(x.ErrorCalendarViewRangeTooBig):
        list(view.only("subject"))


@pytest.mark.parametrize(
    ("body", "version", "header", "code"),
    [
        (GET_CALENDAR, "Exchange2099", "", "ErrorInvalidServerVersion"),
        ("<m:Nope/>", "Exchange2016", "", "ErrorInvalidRequest"),
        ("<t:GetFolder/>", "Exchange2016", "", "ErrorSchemaValidation"),
        (
            GET_CALENDAR,
            "Exchange2016",
            "<t:ExchangeImpersonation><t:ConnectingSID></t:ConnectingSID></t:ExchangeImpersonation>",
            "ErrorImpersonationFailed",
        ),
    ],
)
def test_raw_requests_get_soap_faults(
    sim: EwsSim, body: str, version: str, header: str, code: str
) -> None:
    """Requests outside the protocol get HTTP 500 SOAP faults carrying EWS's code."""
    answer = _raw(sim, body, version=version, header=header)
    assert answer.status_code == 500
    fault = etree.fromstring(answer.content)
    assert (
        fault.findtext(
            ".//{http://schemas.microsoft.com/exchange/services/2006/errors}ResponseCode"
        )
        == code
    )


def test_server_busy_carries_back_off(sim: EwsSim) -> None:
    """A throttled mailbox's next request is ErrorServerBusy with BackOffMilliseconds."""
    smtp = _mailbox(sim)
    sim.knob("throttle", smtp=smtp, count=1, back_off_ms=2500)
    with pytest.raises(x.ErrorServerBusy) as caught:
        _account(sim, smtp).calendar  # noqa: B018
    assert caught.value.back_off == 2.5
