"""Pure: EWS push notifications (SendNotification) read, and the answers Exchange expects.

Rule: a notification is a SOAP envelope holding one or more `Notification`s, each with its
SubscriptionId, PreviousWatermark and events (CreatedEvent, ModifiedEvent, DeletedEvent,
MovedEvent, CopiedEvent, FreeBusyChangedEvent, or a StatusEvent: the keep-alive). It is a
hint, never state: only "something changed in this mailbox" is taken from it. A body that is
not such an envelope (or declares a DOCTYPE: no entity expansion of untrusted input) is an
InputError; a notification whose watermarks are missing or not base64 is marked bad and
ignored. The answer is a SendNotificationResult with OK (keep sending) or Unsubscribe.
https://learn.microsoft.com/exchange/client-developer/exchange-web-services/notification-subscriptions-mailbox-events-and-ews-in-exchange
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

from shared.errors import InputError

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
ITEM_EVENTS = frozenset(
    {
        "CreatedEvent",
        "ModifiedEvent",
        "DeletedEvent",
        "MovedEvent",
        "CopiedEvent",
        "FreeBusyChangedEvent",
    }
)
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class PushNotification:
    """One Notification of a SendNotification: whether it names a change, and whether its
    watermarks are well formed."""

    subscription_id: str
    watermark: str  # the last event's
    changed: bool  # any item event (a StatusEvent alone is a keep-alive)
    watermark_ok: bool


def _b64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(text)


def parse_send_notification(body: bytes) -> tuple[PushNotification, ...]:
    """The notifications of a SendNotification POST; InputError when it is not one."""
    if len(body) > MAX_BODY:
        raise InputError("the EWS notification is larger than 1 MiB")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise InputError("an EWS notification must not declare a DOCTYPE")
    try:
        root = ET.fromstring(body)  # noqa: S314 - no DOCTYPE, so no entities to expand
    except ET.ParseError as exc:
        raise InputError(f"the EWS notification is not XML: {exc}") from None
    send = root.find(f"{{{SOAP}}}Body/{{{M}}}SendNotification")
    if root.tag != f"{{{SOAP}}}Envelope" or send is None:
        raise InputError("the body is not a SOAP envelope with an EWS SendNotification")
    out: list[PushNotification] = []
    for note in send.iter(f"{{{M}}}Notification"):
        sub = (note.findtext(f"{{{T}}}SubscriptionId") or "").strip()
        previous = (note.findtext(f"{{{T}}}PreviousWatermark") or "").strip()
        changed, last, marks_ok = False, previous, _b64(previous)
        for event in note:
            name = event.tag.rsplit("}", 1)[-1]
            if name in ITEM_EVENTS or name == "StatusEvent":
                mark = (event.findtext(f"{{{T}}}Watermark") or "").strip()
                marks_ok = marks_ok and _b64(mark)
                last = mark
                changed = changed or name in ITEM_EVENTS
        if not sub:
            raise InputError("an EWS notification without a SubscriptionId")
        out.append(PushNotification(sub, last, changed, marks_ok))
    if not out:
        raise InputError("the EWS SendNotification holds no Notification")
    return tuple(out)


def send_notification_result(status: Literal["OK", "Unsubscribe"]) -> bytes:
    """The SOAP answer to a SendNotification."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body>'
        f'<SendNotificationResult xmlns="{M}"><SubscriptionStatus>{status}</SubscriptionStatus>'
        "</SendNotificationResult></soap:Body></soap:Envelope>"
    ).encode()
