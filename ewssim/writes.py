"""The EWS write operations the simulator answers: CreateItem (a CalendarItem, or a
CancelCalendarItem), UpdateItem and DeleteItem on the impersonated mailbox's calendar.

Rules (harsher than the docs where they are vague):
- Payloads are checked against the schema's structure (ewssim.schema) first: a child out of
  order or unknown, a bad enumeration, a missing required attribute is ErrorSchemaValidation.
- SendMeetingInvitations (CreateItem) and SendMeetingInvitationsOrCancellations (UpdateItem)
  are required for calendar items (Exchange refuses without); SendToNone sends nothing, any
  other value sends the attendees a request (or an update, and the attendees an update takes
  off a cancellation); what is sent is recorded.
- UpdateItem's ItemId ChangeKey is checked under ConflictResolution NeverOverwrite: a stale one
  is ErrorIrresolvableConflict and nothing changes. AutoResolve and AlwaysOverwrite apply.
- DeleteItem of an occurrence deletes that occurrence, of a master the series; with
  SendMeetingCancellations other than SendToNone the attendees are told.
- Cancel (what Exchange does): CancelCalendarItem, a response object sent with CreateItem
  (MessageDisposition SendAndSaveCopy or SendOnly, never SaveOnly), is only for a meeting the
  mailbox organizes: the attendees get a cancellation and the item leaves the organizer's
  calendar (an occurrence: that occurrence). On an appointment without attendees it is
  ErrorInvalidOperation (there is nobody to cancel for): DeleteItem removes an appointment.
- Extended properties are stored as sent (property set id, name, type) and returned only when
  the shape asks for them, as Exchange does.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from ewssim import schema
from ewssim.fields import FIELDS_BY_URI, extended_key, read_fields
from ewssim.model import EwsFault, Mailbox, World
from ewssim.soap import SoapError, SoapRequest, error_message, m, message, response, t


def _invitations(op: etree._Element, attribute: str, allowed: tuple[str, ...]) -> str:
    value = op.get(attribute)
    if value is None:
        raise EwsFault(
            "ErrorSendMeetingInvitationsRequired"
            if attribute == "SendMeetingInvitations"
            else "ErrorSendMeetingInvitationsOrCancellationsRequired",
            f"{attribute} is required for calendar items.",
        )
    return schema.check_choice(value, allowed, f"@{attribute}")


def _item_ref(el: etree._Element | None) -> tuple[str, str | None]:
    if el is None or etree.QName(el).localname not in ("ItemId", "ReferenceItemId"):
        raise schema.invalid("an ItemId is required")
    item_id = el.get("Id") or ""
    if not item_id:
        raise schema.invalid("ItemId/@Id is required")
    return item_id, el.get("ChangeKey")


def _saved_folder(world: World, box: Mailbox, op: etree._Element) -> None:
    from ewssim.operations import require_calendar

    folder = op.find(m("SavedItemFolderId"))
    if folder is not None:
        require_calendar(world, box, folder[0] if len(folder) else None)


def create_item(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:
    from ewssim.operations import render_item

    op = req.body
    root, messages = response("CreateItem")
    disposition = op.get("MessageDisposition")
    items = op.find(m("Items"))
    if items is None or len(items) == 0:
        raise SoapError("ErrorSchemaValidation", "CreateItem needs Items.")
    for item in items:
        kind = etree.QName(item).localname
        try:
            if kind == "CancelCalendarItem":
                _cancel(world, box, item, disposition)
                # Exchange writes an empty Items for what it sent without saving.
                etree.SubElement(message(messages, "CreateItem"), m("Items"))
                continue
            if kind != "CalendarItem":
                raise EwsFault("ErrorInvalidOperation", f"{kind} is not simulated.")
            if disposition is not None:
                schema.check_choice(disposition, ("SaveOnly",), "@MessageDisposition")
            send = _invitations(op, "SendMeetingInvitations", schema.SEND_INVITATIONS)
            _saved_folder(world, box, op)
            fields = read_fields(item)
            for need in ("start", "end"):
                if need not in fields:
                    raise EwsFault(
                        "ErrorCalendarInvalidPropertyValue", f"A {need} time is required."
                    )
            if fields["end"] < fields["start"]:
                raise EwsFault(
                    "ErrorCalendarEndDateIsEarlierThanStartDate",
                    "EndDate is earlier than StartDate",
                )
            fields.setdefault("organizer", ("", box.smtp))
            appt = world.create(box.smtp, **fields)
            if send != "SendToNone":
                world.record_sent(box.smtp, "request", appt)
        except EwsFault as exc:
            error_message(messages, "CreateItem", exc.code, exc.message)
            continue
        msg = message(messages, "CreateItem")
        out = etree.SubElement(msg, m("Items"))
        render_item(out, world.get(box, appt.item_id), id_only=True)
    return root


def _cancel(world: World, box: Mailbox, item: etree._Element, disposition: str | None) -> None:
    schema.check_sequence(item, schema.CANCEL_ITEM, "CancelCalendarItem")
    schema.check_choice(disposition, ("SendOnly", "SendAndSaveCopy"), "@MessageDisposition")
    item_id, change_key = _item_ref(item.find(t("ReferenceItemId")))
    appt, _ = world.resolve(box, item_id)
    if not (appt.required or appt.optional):
        raise EwsFault(
            "ErrorInvalidOperation",
            "CancelCalendarItem is for meetings only: this appointment has no attendees.",
        )
    if appt.organizer[1] and appt.organizer[1].lower() != box.smtp:
        raise EwsFault(
            "ErrorCalendarIsNotOrganizer", "Only the organizer of a meeting can cancel it."
        )
    world.check_change_key(box, item_id, change_key)
    gone = world.remove_item(box.smtp, item_id)
    world.record_sent(box.smtp, "cancellation", gone)


def update_item(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:
    from ewssim.operations import render_item

    op = req.body
    root, messages = response("UpdateItem")
    resolution = schema.check_choice(
        op.get("ConflictResolution"), schema.CONFLICT_RESOLUTION, "@ConflictResolution"
    )
    changes = op.find(m("ItemChanges"))
    if changes is None or len(changes) == 0:
        raise SoapError("ErrorSchemaValidation", "UpdateItem needs ItemChanges.")
    for change in changes:
        try:
            send = _invitations(
                op,
                "SendMeetingInvitationsOrCancellations",
                schema.SEND_INVITATIONS_OR_CANCELLATIONS,
            )
            item_id, change_key = _item_ref(change.find(t("ItemId")))
            updates = change.find(t("Updates"))
            if updates is None or len(updates) == 0:
                raise schema.invalid("ItemChange needs Updates")
            fields: dict[str, Any] = {}
            for update in updates:
                fields.update(_one_update(update))
            world.check_change_key(
                box, item_id, change_key if resolution == "NeverOverwrite" else None
            )
            current = world.get(box, item_id).appointment
            start, end = fields.get("start", current.start), fields.get("end", current.end)
            if end < start:
                raise EwsFault(
                    "ErrorCalendarEndDateIsEarlierThanStartDate",
                    "EndDate is earlier than StartDate",
                )
            before = {p[1] for p in (*current.required, *current.optional)}
            updated_id = world.write_item(box.smtp, item_id, fields)
            inst = world.get(box, updated_id)
            if send != "SendToNone":
                world.record_sent(box.smtp, "update", inst.appointment)
                after = {p[1] for p in (*inst.appointment.required, *inst.appointment.optional)}
                if before - after:  # the attendees taken off are told it is cancelled
                    world.sent.append(
                        {
                            "smtp": box.smtp,
                            "kind": "cancellation",
                            "to": sorted(before - after),
                            "item": updated_id,
                            "subject": inst.appointment.subject,
                        }
                    )
        except EwsFault as exc:
            error_message(messages, "UpdateItem", exc.code, exc.message)
            continue
        msg = message(messages, "UpdateItem")
        render_item(etree.SubElement(msg, m("Items")), inst, id_only=True)
        etree.SubElement(msg, m("ConflictResults")).append(_count(0))
    return root


def _count(n: int) -> etree._Element:
    el = etree.Element(t("Count"))
    el.text = str(n)
    return el


def _one_update(update: etree._Element) -> dict[str, Any]:
    kind = etree.QName(update).localname
    if kind not in ("SetItemField", "AppendToItemField", "DeleteItemField"):
        raise schema.invalid(f"{kind} is not an item change")
    if len(update) == 0:
        raise schema.invalid(f"{kind} needs a FieldURI")
    uri = update[0]
    uri_kind = etree.QName(uri).localname
    if uri_kind == "ExtendedFieldURI":
        key = extended_key(uri)
        if kind == "DeleteItemField":
            return {"extended": {key: ""}}
    elif uri_kind == "FieldURI":
        name = FIELDS_BY_URI.get(uri.get("FieldURI") or "")
        if name is None:
            raise EwsFault(
                "ErrorInvalidPropertySet", f"{uri.get('FieldURI')!r} cannot be set here."
            )
        if kind == "DeleteItemField":
            defaults = {"Location": {"location": ""}, "Body": {"body": ""}}
            defaults |= {"Categories": {"categories": ()}, "Recurrence": {"recurrence": None}}
            defaults |= {"RequiredAttendees": {"required": ()}}
            defaults |= {"OptionalAttendees": {"optional": ()}}
            if name not in defaults:
                raise EwsFault("ErrorInvalidPropertyDelete", f"{name} cannot be deleted.")
            return defaults[name]
    else:
        raise schema.invalid(f"{uri_kind} is not a property path")
    if len(update) != 2 or etree.QName(update[1]).localname != "CalendarItem":
        raise schema.invalid(f"{kind} needs the CalendarItem holding the new value")
    values = update[1]
    if len(values) != 1:
        raise schema.invalid(f"{kind}'s CalendarItem holds exactly the one property it sets")
    fields = read_fields(values)
    if uri_kind == "ExtendedFieldURI" and set(fields.get("extended", {})) != {key}:
        raise schema.invalid("the ExtendedProperty set is not the one its ExtendedFieldURI names")
    return fields


def delete_item(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:

    op = req.body
    root, messages = response("DeleteItem")
    schema.check_choice(op.get("DeleteType"), schema.DELETE_TYPE, "@DeleteType")
    send = op.get("SendMeetingCancellations")
    if send is None:
        raise EwsFault(
            "ErrorSendMeetingCancellationsRequired",
            "SendMeetingCancellations is required for calendar items.",
        )
    schema.check_choice(send, schema.SEND_CANCELLATIONS, "@SendMeetingCancellations")
    ids = op.find(m("ItemIds"))
    if ids is None or len(ids) == 0:
        raise SoapError("ErrorSchemaValidation", "DeleteItem needs ItemIds.")
    for ref in ids:
        try:
            item_id, _ = _item_ref(ref)
            gone = world.remove_item(box.smtp, item_id)
            if send != "SendToNone":
                world.record_sent(box.smtp, "cancellation", gone)
        except EwsFault as exc:
            error_message(messages, "DeleteItem", exc.code, exc.message)
            continue
        message(messages, "DeleteItem")
    return root
