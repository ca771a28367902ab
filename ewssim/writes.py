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

from datetime import date
from typing import Any

from lxml import etree

from ewssim import schema
from ewssim.model import WEEKDAYS, EwsFault, Mailbox, Recurrence, World
from ewssim.soap import SoapError, SoapRequest, error_message, m, message, parse_datetime, t

_FIELDS_BY_URI = {
    "item:Subject": "Subject",
    "item:Body": "Body",
    "item:Sensitivity": "Sensitivity",
    "item:Categories": "Categories",
    "item:Importance": "Importance",
    "item:ReminderIsSet": "ReminderIsSet",
    "item:ReminderMinutesBeforeStart": "ReminderMinutesBeforeStart",
    "calendar:Start": "Start",
    "calendar:End": "End",
    "calendar:IsAllDayEvent": "IsAllDayEvent",
    "calendar:LegacyFreeBusyStatus": "LegacyFreeBusyStatus",
    "calendar:Location": "Location",
    "calendar:RequiredAttendees": "RequiredAttendees",
    "calendar:OptionalAttendees": "OptionalAttendees",
    "calendar:Resources": "Resources",
    "calendar:Recurrence": "Recurrence",
    "calendar:StartTimeZone": "StartTimeZone",
    "calendar:EndTimeZone": "EndTimeZone",
    "calendar:MeetingTimeZone": "MeetingTimeZone",
    "calendar:UID": "UID",
}
_SKIPPED = {"StartTimeZone", "EndTimeZone", "MeetingTimeZone"}  # read apart (time_zone)
# types.xsd: each recurrence pattern's sequence, and the model's name for it.
_PATTERNS = {
    "DailyRecurrence": ("Interval",),
    "WeeklyRecurrence": ("Interval", "DaysOfWeek", "FirstDayOfWeek"),
    "AbsoluteMonthlyRecurrence": ("Interval", "DayOfMonth"),
    "RelativeMonthlyRecurrence": ("Interval", "DaysOfWeek", "DayOfWeekIndex"),
    "AbsoluteYearlyRecurrence": ("DayOfMonth", "Month"),
    "RelativeYearlyRecurrence": ("DaysOfWeek", "DayOfWeekIndex", "Month"),
}
_KINDS = {
    "DailyRecurrence": "daily",
    "WeeklyRecurrence": "weekly",
    "AbsoluteMonthlyRecurrence": "absoluteMonthly",
    "RelativeMonthlyRecurrence": "relativeMonthly",
    "AbsoluteYearlyRecurrence": "absoluteYearly",
    "RelativeYearlyRecurrence": "relativeYearly",
}
_INDEXES = ("First", "Second", "Third", "Fourth", "Last")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def extended_key(uri: etree._Element) -> tuple[str, str, str]:
    """(property set id lower-cased, name, type) of an ExtendedFieldURI."""
    set_id = (uri.get("PropertySetId") or uri.get("DistinguishedPropertySetId") or "").lower()
    name = uri.get("PropertyName") or uri.get("PropertyTag") or uri.get("PropertyId") or ""
    kind = uri.get("PropertyType") or ""
    if not name or not kind:
        raise schema.invalid("ExtendedFieldURI needs a property name (or tag) and PropertyType")
    return set_id, name, kind


def _bool(el: etree._Element, what: str) -> bool:
    value = (el.text or "").strip()
    schema.check_choice(value, schema.BOOLEAN, what)
    return value in ("true", "1")


def _people(el: etree._Element) -> tuple[tuple[str, str, str], ...]:
    out = []
    for att in el:
        if etree.QName(att).localname != "Attendee":
            raise schema.invalid(f"{etree.QName(el).localname} holds Attendee elements only")
        box = att.find(t("Mailbox"))
        address = (box.findtext(t("EmailAddress")) or "").strip() if box is not None else ""
        if box is None or not address:
            raise schema.invalid("an Attendee needs Mailbox/EmailAddress")
        out.append((box.findtext(t("Name")) or "", address.lower(), "Unknown"))
    return tuple(out)


def _recurrence(el: etree._Element) -> Recurrence:
    """A Recurrence element (a pattern, then a range)."""
    if len(el) != 2:
        raise schema.invalid("Recurrence holds a pattern and a range")
    pattern, rng = el[0], el[1]
    kind = etree.QName(pattern).localname
    if kind not in _PATTERNS:
        raise schema.invalid(f"{kind} is not a recurrence pattern")
    schema.check_sequence(pattern, _PATTERNS[kind], kind)
    missing = [n for n in _PATTERNS[kind] if n != "FirstDayOfWeek" and pattern.find(t(n)) is None]
    if missing:
        raise schema.invalid(f"{kind} needs {', '.join(missing)}")
    interval = (pattern.findtext(t("Interval")) or "1").strip()
    if not interval.isdigit() or int(interval) < 1:
        raise schema.invalid(f"{kind}/Interval must be a positive integer")
    days: tuple[str, ...] = ()
    if pattern.find(t("DaysOfWeek")) is not None:
        names = (pattern.findtext(t("DaysOfWeek")) or "").split()
        if not names or any(d not in WEEKDAYS for d in names):
            raise schema.invalid(f"{kind}/DaysOfWeek must list days (Monday ...)")
        if kind != "WeeklyRecurrence" and len(names) != 1:
            raise schema.invalid(f"{kind}/DaysOfWeek is one day")
        days = tuple(names)
    day_of_month = week_index = month = 0
    if pattern.find(t("DayOfMonth")) is not None:
        text = (pattern.findtext(t("DayOfMonth")) or "").strip()
        if not text.isdigit() or not 1 <= int(text) <= 31:
            raise schema.invalid(f"{kind}/DayOfMonth must be 1 to 31")
        day_of_month = int(text)
    if pattern.find(t("DayOfWeekIndex")) is not None:
        index = schema.check_choice(
            (pattern.findtext(t("DayOfWeekIndex")) or "").strip(),
            _INDEXES,
            f"{kind}/DayOfWeekIndex",
        )
        week_index = _INDEXES.index(index) + 1
    if pattern.find(t("Month")) is not None:
        name = schema.check_choice(
            (pattern.findtext(t("Month")) or "").strip(), _MONTHS, f"{kind}/Month"
        )
        month = _MONTHS.index(name) + 1
    start_text = (rng.findtext(t("StartDate")) or "").strip()
    try:
        start = date.fromisoformat(start_text[:10])
    except ValueError:
        raise schema.invalid(f"{etree.QName(rng).localname}/StartDate is not a date") from None
    rng_kind = etree.QName(rng).localname
    count: int | None = None
    end: date | None = None
    if rng_kind == "NumberedRecurrence":
        number = (rng.findtext(t("NumberOfOccurrences")) or "").strip()
        if not number.isdigit() or not 1 <= int(number) <= 999:
            raise EwsFault(
                "ErrorCalendarInvalidRecurrence", "NumberOfOccurrences must be between 1 and 999."
            )
        count = int(number)
    elif rng_kind == "EndDateRecurrence":
        try:
            end = date.fromisoformat((rng.findtext(t("EndDate")) or "").strip()[:10])
        except ValueError:
            raise schema.invalid("EndDateRecurrence/EndDate is not a date") from None
        if end < start:
            raise EwsFault("ErrorCalendarInvalidRecurrence", "EndDate is before StartDate.")
    elif rng_kind != "NoEndRecurrence":
        raise schema.invalid(f"{rng_kind} is not a recurrence range")
    return Recurrence(
        _KINDS[kind], int(interval), days, start, count, end, day_of_month, week_index, month
    )


def read_fields(item: etree._Element) -> dict[str, Any]:
    """A CalendarItem element (CreateItem's, or one SetItemField's) as Appointment fields."""
    schema.check_sequence(item, schema.CALENDAR_ITEM, "CalendarItem")
    out: dict[str, Any] = {}
    extended: dict[tuple[str, str, str], str] = {}
    for child in item:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        text = (child.text or "").strip()
        if name == "Subject":
            out["subject"] = child.text or ""
        elif name == "Body":
            out["body"] = child.text or ""
            out["body_type"] = schema.check_choice(
                child.get("BodyType"), schema.BODY_TYPE, "Body/@BodyType"
            )
        elif name == "Sensitivity":
            out["sensitivity"] = schema.check_choice(text, schema.SENSITIVITY, "Sensitivity")
        elif name == "Importance":
            out["importance"] = schema.check_choice(text, schema.IMPORTANCE, "Importance")
        elif name == "Categories":
            out["categories"] = tuple(c.text or "" for c in child)
        elif name == "ReminderIsSet":
            out["reminder_set"] = _bool(child, "ReminderIsSet")
        elif name == "ReminderMinutesBeforeStart":
            if not text.lstrip("-").isdigit():
                raise schema.invalid("ReminderMinutesBeforeStart must be an integer")
            out["reminder_minutes"] = int(text)
        elif name == "ExtendedProperty":
            uri, value = child.find(t("ExtendedFieldURI")), child.find(t("Value"))
            if uri is None or value is None:
                raise schema.invalid("ExtendedProperty needs ExtendedFieldURI and Value")
            extended[extended_key(uri)] = value.text or ""
        elif name in ("Start", "End"):
            out[name.lower()] = parse_datetime(child.text, name)
        elif name == "IsAllDayEvent":
            out["is_all_day"] = _bool(child, "IsAllDayEvent")
        elif name == "LegacyFreeBusyStatus":
            out["free_busy"] = schema.check_choice(text, schema.FREE_BUSY, name)
        elif name == "Location":
            out["location"] = child.text or ""
        elif name == "RequiredAttendees":
            out["required"] = _people(child)
        elif name in ("OptionalAttendees", "Resources"):
            out["optional"] = out.get("optional", ()) + _people(child)
        elif name == "Recurrence":
            out["recurrence"] = _recurrence(child)
        elif name in _SKIPPED:
            if not child.get("Id"):
                raise schema.invalid(f"{name} needs an Id (a Windows time zone id)")
            if name != "EndTimeZone" or "time_zone" not in out:
                out["time_zone"] = child.get("Id")
        elif name == "UID":
            out["uid"] = text
        else:
            raise EwsFault("ErrorInvalidPropertySet", f"{name} cannot be set by this simulator.")
    if extended:
        out["extended"] = extended
    return out


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
    from ewssim.soap import response

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
    from ewssim.soap import response

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
        name = _FIELDS_BY_URI.get(uri.get("FieldURI") or "")
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
    from ewssim.soap import response

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
