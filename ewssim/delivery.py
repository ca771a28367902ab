"""Push delivery: the SendNotification POSTs Exchange makes to a push subscription's URL.

Rule (harsher than the docs where they are vague): one notification per event, in order, each
with the subscription's previous watermark and the next; the receiver must answer 200 with a
SendNotificationResult: `OK` keeps the subscription, `Unsubscribe` ends it; three failed
deliveries in a row (no answer, not 200, no result) end it too, as Exchange gives up.
A subscription that nothing was sent to for its StatusFrequency (on the virtual clock) gets a
StatusEvent, the keep-alive Exchange sends. The receiver's certificate is checked against the
simulator's own CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from datetime import datetime

import httpx
from lxml import etree

from ewssim.model import PushSubscription, World
from ewssim.operations import watermark
from ewssim.soap import SOAP, M, T, ews_datetime, m, t

log = logging.getLogger("ewssim.delivery")
MAX_FAILURES = 3


def notification_body(
    sub: PushSubscription, event: str, item_id: str, previous: str, now: datetime
) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "m": M, "t": T})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    etree.SubElement(header, t("RequestServerVersion"), Version="Exchange2016")
    body = etree.SubElement(env, f"{{{SOAP}}}Body")
    send = etree.SubElement(body, m("SendNotification"))
    msgs = etree.SubElement(send, m("ResponseMessages"))
    msg = etree.SubElement(msgs, m("SendNotificationResponseMessage"), ResponseClass="Success")
    etree.SubElement(msg, m("ResponseCode")).text = "NoError"
    note = etree.SubElement(msg, m("Notification"))
    etree.SubElement(note, t("SubscriptionId")).text = sub.subscription_id
    etree.SubElement(note, t("PreviousWatermark")).text = previous
    etree.SubElement(note, t("MoreEvents")).text = "false"
    ev = etree.SubElement(note, t(event))
    etree.SubElement(ev, t("Watermark")).text = watermark(sub)
    if event != "StatusEvent":
        etree.SubElement(ev, t("TimeStamp")).text = ews_datetime(now)
        etree.SubElement(ev, t("ItemId"), Id=item_id, ChangeKey="AAAA")
        etree.SubElement(ev, t("ParentFolderId"), Id="calendar-folder", ChangeKey="AAAA")
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def _status(answer: httpx.Response) -> str:
    if answer.status_code != 200:
        return ""
    with contextlib.suppress(etree.XMLSyntaxError):
        root = etree.fromstring(answer.content)
        return (root.findtext(f".//{m('SubscriptionStatus')}") or "").strip()
    return ""


async def deliver_forever(world: World, trusted: list[str]) -> None:
    context = ssl.create_default_context(cafile=trusted[0])
    for more in trusted[1:]:
        context.load_verify_locations(cafile=more)
    async with httpx.AsyncClient(verify=context, timeout=5, trust_env=False) as client:
        while True:
            with world.lock:
                now = world.clock.timestamp()
                for sub in world.subscriptions.values():
                    quiet = not any(s == sub.subscription_id for s, _, _ in world.outbox)
                    if quiet and now - sub.last_sent >= sub.status_minutes * 60:
                        world.outbox.append((sub.subscription_id, "StatusEvent", ""))
                        sub.last_sent = now
                batch, world.outbox = world.outbox, []
            for sub_id, event, item_id in batch:
                with world.lock:
                    sub = world.subscriptions.get(sub_id)
                    if sub is None:
                        continue
                    previous = watermark(sub)
                    sub.watermark += 1
                    sub.last_sent = world.clock.timestamp()
                    body = notification_body(sub, event, item_id, previous, world.clock.now())
                try:
                    answer = await client.post(
                        sub.url, content=body, headers={"Content-Type": "text/xml; charset=utf-8"}
                    )
                    status = _status(answer)
                except httpx.HTTPError as exc:
                    log.info("delivery to %s failed: %s", sub.url, exc)
                    status = ""
                with world.lock:
                    world.calls["deliveries"] = world.calls.get("deliveries", 0) + 1
                    if status == "OK":
                        sub.failures = 0
                    elif status == "Unsubscribe":
                        world.subscriptions.pop(sub_id, None)
                    else:
                        sub.failures += 1
                        if sub.failures >= MAX_FAILURES:
                            world.subscriptions.pop(sub_id, None)
            await asyncio.sleep(0.05)
