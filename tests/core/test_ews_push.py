"""EWS SendNotification bodies read (shared/core/ews_push.py): changes, keep-alives, bad
watermarks, refusals of what is not a notification; and the SOAP answer."""

from __future__ import annotations

import pytest

from shared.core.ews_push import parse_send_notification, send_notification_result
from shared.errors import InputError

HEAD = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><soap:Body>'
    "<m:SendNotification><m:ResponseMessages><m:SendNotificationResponseMessage>"
)
TAIL = (
    "</m:SendNotificationResponseMessage></m:ResponseMessages></m:SendNotification>"
    "</soap:Body></soap:Envelope>"
)


def note(events: str, sub: str = "U1VC", previous: str = "AAAA") -> bytes:
    return (
        f"{HEAD}<m:Notification><t:SubscriptionId>{sub}</t:SubscriptionId>"
        f"<t:PreviousWatermark>{previous}</t:PreviousWatermark>{events}</m:Notification>{TAIL}"
    ).encode()


def ev(kind: str, mark: str = "BBBB") -> str:
    return f"<t:{kind}><t:Watermark>{mark}</t:Watermark></t:{kind}>"


@pytest.mark.parametrize(
    ("events", "changed", "ok", "last"),
    [
        (ev("CreatedEvent"), True, True, "BBBB"),
        (ev("ModifiedEvent") + ev("DeletedEvent", "CCCC"), True, True, "CCCC"),
        (ev("StatusEvent"), False, True, "BBBB"),
        (ev("MovedEvent", "not base64!"), True, False, "not base64!"),
        ("", False, True, "AAAA"),
    ],
)
def test_notifications_say_whether_something_changed(
    events: str, changed: bool, ok: bool, last: str
) -> None:
    """Item events are a change, a StatusEvent is a keep-alive; every watermark is checked."""
    (found,) = parse_send_notification(note(events))
    assert (found.subscription_id, found.changed, found.watermark_ok, found.watermark) == (
        "U1VC",
        changed,
        ok,
        last,
    )


def test_an_empty_previous_watermark_is_bad() -> None:
    """A notification without its previous watermark is marked bad (ignored by the service)."""
    (found,) = parse_send_notification(note(ev("CreatedEvent"), previous=""))
    assert found.watermark_ok is False


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not xml", "not XML"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "DOCTYPE"),
        (b"<x/>", "not a SOAP envelope"),
        (f"{HEAD}{TAIL}".encode(), "no Notification"),
        (note(ev("CreatedEvent"), sub=""), "without a SubscriptionId"),
        (b"x" * (1024 * 1024 + 1), "larger than 1 MiB"),
    ],
)
def test_what_is_not_a_notification_is_refused(body: bytes, words: str) -> None:
    """Bodies that are not a SendNotification are InputErrors naming what is wrong."""
    with pytest.raises(InputError, match=words):
        parse_send_notification(body)


@pytest.mark.parametrize("status", ["OK", "Unsubscribe"])
def test_the_answer_carries_the_status(status: str) -> None:
    """The SendNotificationResult names the subscription's fate."""
    answer = send_notification_result(status)  # type: ignore[arg-type]
    assert f"<SubscriptionStatus>{status}</SubscriptionStatus>".encode() in answer
