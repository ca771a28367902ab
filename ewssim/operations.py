"""The EWS operations the simulator answers: GetFolder, SyncFolderItems, FindItem (with a
CalendarView) and GetItem on the calendar folder of the impersonated mailbox.

Rules (harsher than the docs where they are vague): a CalendarView needs StartDate < EndDate
and a range of at most two years (ErrorCalendarViewRangeTooBig); past its MaxEntriesReturned
only the first instances come, with IncludesLastItemInRange false; a folder id of another
mailbox, or a calendar whose owner denied the account, is ErrorAccessDenied; an IdOnly shape
with no additional properties gives ids and change keys only.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from lxml import etree

from ewssim.model import EwsFault, Instance, Mailbox, World
from ewssim.soap import (
    SoapError,
    SoapRequest,
    error_message,
    ews_datetime,
    m,
    message,
    parse_datetime,
    response,
    t,
)

MAX_VIEW = timedelta(days=731)
Handler = Callable[[World, Mailbox, SoapRequest], etree._Element]


def _sub(
    parent: etree._Element, name: str, text: object | None = None, **attrs: str
) -> etree._Element:
    el = etree.SubElement(parent, t(name), **attrs)
    if text is not None:
        el.text = str(text).lower() if isinstance(text, bool) else str(text)
    return el


def _mailbox_el(parent: etree._Element, tag: str, name: str, address: str) -> etree._Element:
    box = _sub(parent, tag)
    _sub(box, "Name", name)
    _sub(box, "EmailAddress", address)
    _sub(box, "RoutingType", "SMTP")
    _sub(box, "MailboxType", "Mailbox")
    return box


def require_calendar(
    world: World, box: Mailbox, folder: etree._Element | None, *, root_ok: bool = False
) -> str:
    """The folder named must be this mailbox's calendar (by distinguished name or id), or for
    GetFolder its root; returns which."""
    if folder is None:
        raise SoapError("ErrorSchemaValidation", "A folder id is required.")
    tag = etree.QName(folder).localname
    if tag == "DistinguishedFolderId":
        if folder.get("Id") not in (("calendar", "root") if root_ok else ("calendar",)):
            raise EwsFault(
                "ErrorFolderNotFound", "The specified folder could not be found in the store."
            )
        owner = folder.find(f"{t('Mailbox')}/{t('EmailAddress')}")
        if owner is not None and (owner.text or "").lower() != box.smtp:
            raise EwsFault(
                "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
    elif tag == "FolderId":
        if folder.get("Id") not in (
            (box.calendar_id, _root_id(box)) if root_ok else (box.calendar_id,)
        ):
            raise EwsFault(
                "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
    else:
        raise SoapError("ErrorSchemaValidation", f"{tag} is not a folder id.")
    if box.calendar_denied:
        raise EwsFault("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    return "root" if folder.get("Id") in ("root", _root_id(box)) else "calendar"


def _root_id(box: Mailbox) -> str:
    return "root-" + box.calendar_id


def render_item(
    parent: etree._Element,
    inst: Instance,
    *,
    id_only: bool = False,
    extended: Sequence[etree._Element] = (),
) -> None:
    """One CalendarItem; `extended`: the ExtendedFieldURIs the shape asked for (those the item
    has are written)."""
    a = inst.appointment
    item = _sub(parent, "CalendarItem")
    _sub(item, "ItemId", Id=inst.item_id, ChangeKey=inst.change_key)
    if id_only:
        _extended(item, a, extended)
        return
    _sub(item, "ParentFolderId", Id="calendar-folder")
    _sub(item, "ItemClass", "IPM.Appointment")
    _sub(item, "Subject", a.subject)
    _sub(item, "Sensitivity", a.sensitivity)
    _sub(item, "Body", a.body, BodyType=a.body_type)
    _sub(item, "DateTimeReceived", ews_datetime(a.created))
    if a.categories:
        cats = _sub(item, "Categories")
        for c in a.categories:
            _sub(cats, "String", c)
    _sub(item, "Importance", a.importance)
    _sub(item, "DateTimeCreated", ews_datetime(a.created))
    _sub(item, "ReminderIsSet", a.reminder_set)
    _sub(item, "ReminderMinutesBeforeStart", a.reminder_minutes)
    _extended(item, a, extended)
    _sub(item, "LastModifiedTime", ews_datetime(a.modified))
    _sub(item, "UID", a.uid)
    if inst.original_start is not None:
        _sub(item, "RecurrenceId", ews_datetime(inst.original_start))
    _sub(item, "Start", ews_datetime(a.start))
    _sub(item, "End", ews_datetime(a.end))
    if inst.original_start is not None:
        _sub(item, "OriginalStart", ews_datetime(inst.original_start))
    _sub(item, "IsAllDayEvent", a.is_all_day)
    _sub(item, "LegacyFreeBusyStatus", a.free_busy)
    _sub(item, "Location", a.location)
    _sub(item, "IsMeeting", bool(a.required or a.optional))
    _sub(item, "IsCancelled", a.is_cancelled)
    _sub(item, "IsRecurring", inst.kind != "Single")
    _sub(item, "CalendarItemType", inst.kind)
    _sub(item, "MyResponseType", "Organizer")
    if a.organizer[1]:
        org = _sub(item, "Organizer")
        _mailbox_el(org, "Mailbox", *a.organizer)
    for tag, people in (("RequiredAttendees", a.required), ("OptionalAttendees", a.optional)):
        if people:
            group = _sub(item, tag)
            for name, address, reply in people:
                att = _sub(group, "Attendee")
                _mailbox_el(att, "Mailbox", name, address)
                _sub(att, "ResponseType", reply)
    _sub(item, "StartTimeZone", Id=a.time_zone, Name=a.time_zone)
    _sub(item, "EndTimeZone", Id=a.time_zone, Name=a.time_zone)


def _extended(item: etree._Element, a: Any, asked: Sequence[etree._Element]) -> None:
    """The extended properties asked for that the item has (where the schema puts them: after
    ReminderMinutesBeforeStart, or after ItemId in an IdOnly answer, in the request's order)."""
    from ewssim.fields import extended_key

    for uri in asked:
        value = a.extended.get(extended_key(uri))
        if value:
            prop = _sub(item, "ExtendedProperty")
            prop.append(etree.fromstring(etree.tostring(uri)))
            _sub(prop, "Value", value)


def _asked_extended(op: etree._Element) -> list[etree._Element]:
    shape = op.find(m("ItemShape"))
    extra = shape.find(t("AdditionalProperties")) if shape is not None else None
    return [] if extra is None else list(extra.iter(t("ExtendedFieldURI")))


def _id_only(op: etree._Element) -> bool:
    shape = op.find(m("ItemShape"))
    base = shape.find(t("BaseShape")) if shape is not None else None
    extra = shape.find(t("AdditionalProperties")) if shape is not None else None
    extra_fields = [] if extra is None else [e for e in extra if e.tag != t("ExtendedFieldURI")]
    return base is not None and base.text == "IdOnly" and not extra_fields


def get_folder(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:
    root, messages = response("GetFolder")
    ids = req.body.find(m("FolderIds"))
    for folder in [] if ids is None else list(ids):
        try:
            which = require_calendar(world, box, folder, root_ok=True)
        except EwsFault as exc:
            error_message(messages, "GetFolder", exc.code, exc.message)
            continue
        msg = message(messages, "GetFolder")
        if which == "root":
            top = _sub(etree.SubElement(msg, m("Folders")), "Folder")
            _sub(top, "FolderId", Id=_root_id(box), ChangeKey="AQAAAA==")
            _sub(top, "DisplayName", "Root")
            _sub(top, "TotalCount", 0)
            _sub(top, "ChildFolderCount", 1)
            continue
        cal = _sub(etree.SubElement(msg, m("Folders")), "CalendarFolder")
        _sub(cal, "FolderId", Id=box.calendar_id, ChangeKey="AgAAAA==")
        _sub(cal, "ParentFolderId", Id=_root_id(box), ChangeKey="AQAAAA==")
        _sub(cal, "FolderClass", "IPF.Appointment")
        _sub(cal, "DisplayName", "Calendar")
        _sub(cal, "TotalCount", len(box.items))
        _sub(cal, "ChildFolderCount", 0)
    return root


def sync_folder_items(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:
    root, messages = response("SyncFolderItems")
    folder = req.body.find(m("SyncFolderId"))
    state_el = req.body.find(m("SyncState"))
    max_el = req.body.find(m("MaxChangesReturned"))
    if max_el is None or not (max_el.text or "").strip().isdigit():
        raise SoapError("ErrorSchemaValidation", "MaxChangesReturned is required.")
    try:
        require_calendar(world, box, folder[0] if folder is not None and len(folder) else None)
        state = (state_el.text or "").strip() if state_el is not None else None
        changes, new_state, done = world.sync(box, state or None, int(max_el.text or "0"))
    except EwsFault as exc:
        error_message(messages, "SyncFolderItems", exc.code, exc.message)
        # Exchange writes both elements into an error message too (exchangelib reads them).
        msg = messages[-1]
        etree.SubElement(msg, m("SyncState"))
        etree.SubElement(msg, m("IncludesLastItemInRange")).text = "true"
        return root
    msg = message(messages, "SyncFolderItems")
    etree.SubElement(msg, m("SyncState")).text = new_state
    etree.SubElement(msg, m("IncludesLastItemInRange")).text = "true" if done else "false"
    out = etree.SubElement(msg, m("Changes"))
    id_only = _id_only(req.body)
    for kind, item_id in changes:
        if kind == "delete":
            _sub(_sub(out, "Delete"), "ItemId", Id=item_id)
            continue
        inst = world.get(box, item_id)
        render_item(
            _sub(out, "Create" if kind == "create" else "Update"),
            inst,
            id_only=id_only,
            extended=_asked_extended(req.body),
        )
    return root


def find_item(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:
    root, messages = response("FindItem")
    view = req.body.find(m("CalendarView"))
    parents = req.body.find(m("ParentFolderIds"))
    if view is None:
        return _find_restricted(world, box, req, root, messages)
    try:
        require_calendar(world, box, parents[0] if parents is not None and len(parents) else None)
        start = parse_datetime(view.get("StartDate"), "CalendarView StartDate")
        end = parse_datetime(view.get("EndDate"), "CalendarView EndDate")
        if end <= start:
            raise EwsFault("ErrorInvalidArgument", "CalendarView EndDate must be after StartDate.")
        if end - start > MAX_VIEW:
            raise EwsFault(
                "ErrorCalendarViewRangeTooBig",
                "The CalendarView range is larger than two years.",
            )
    except EwsFault as exc:
        error_message(messages, "FindItem", exc.code, exc.message)
        return root
    found = world.instances(box, start, end)
    limit = int(view.get("MaxEntriesReturned") or "0") or len(found)
    shown = found[:limit]
    msg = message(messages, "FindItem")
    folder = etree.SubElement(
        msg,
        m("RootFolder"),
        TotalItemsInView=str(len(shown)),
        IncludesLastItemInRange="true" if len(shown) == len(found) else "false",
    )
    items = _sub(folder, "Items")
    id_only = _id_only(req.body)
    for inst in shown:
        render_item(items, inst, id_only=id_only, extended=_asked_extended(req.body))
    return root


def _find_restricted(
    world: World,
    box: Mailbox,
    req: SoapRequest,
    root: etree._Element,
    messages: etree._Element,
) -> etree._Element:
    """FindItem without a CalendarView: the calendar's items (singles and masters, never
    occurrences, as Exchange lists a calendar folder), filtered by an IsEqualTo restriction on
    an extended property, the one restriction simulated."""
    from ewssim.fields import extended_key

    parents = req.body.find(m("ParentFolderIds"))
    restriction = req.body.find(m("Restriction"))
    try:
        require_calendar(world, box, parents[0] if parents is not None and len(parents) else None)
        test = restriction[0] if restriction is not None and len(restriction) == 1 else None
        if test is None or test.tag != t("IsEqualTo"):
            raise EwsFault(
                "ErrorInvalidOperation",
                "Only CalendarView and an IsEqualTo restriction on an extended property are "
                "simulated.",
            )
        uri, constant = (
            test.find(t("ExtendedFieldURI")),
            test.find(f"{t('FieldURIOrConstant')}/{t('Constant')}"),
        )
        if uri is None or constant is None:
            raise SoapError(
                "ErrorSchemaValidation",
                "IsEqualTo needs an ExtendedFieldURI and FieldURIOrConstant/Constant.",
            )
        key, value = extended_key(uri), constant.get("Value", "")
    except EwsFault as exc:
        error_message(messages, "FindItem", exc.code, exc.message)
        return root
    found = [world.get(box, a.item_id) for a in box.items.values() if a.extended.get(key) == value]
    msg = message(messages, "FindItem")
    folder = etree.SubElement(
        msg, m("RootFolder"), TotalItemsInView=str(len(found)), IncludesLastItemInRange="true"
    )
    items = _sub(folder, "Items")
    for inst in found:
        render_item(items, inst, id_only=_id_only(req.body), extended=_asked_extended(req.body))
    return root


def get_item(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:
    root, messages = response("GetItem")
    ids = req.body.find(m("ItemIds"))
    for ref in [] if ids is None else list(ids):
        try:
            if etree.QName(ref).localname != "ItemId":
                raise EwsFault("ErrorInvalidIdMalformed", "Id is malformed.")
            inst = world.get(box, ref.get("Id", ""))
        except EwsFault as exc:
            error_message(messages, "GetItem", exc.code, exc.message)
            continue
        msg = message(messages, "GetItem")
        render_item(
            etree.SubElement(msg, m("Items")),
            inst,
            id_only=_id_only(req.body),
            extended=_asked_extended(req.body),
        )
    return root


def subscribe(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:
    root, messages = response("Subscribe")
    push = req.body.find(m("PushSubscriptionRequest"))
    try:
        if push is None:
            raise EwsFault(
                "ErrorInvalidSubscriptionRequest", "Only push subscriptions are simulated."
            )
        folders = push.find(t("FolderIds"))
        require_calendar(world, box, folders[0] if folders is not None and len(folders) else None)
        frequency = (push.findtext(t("StatusFrequency")) or "").strip()
        url = (push.findtext(t("URL")) or "").strip()
        if not frequency.isdigit():
            raise SoapError("ErrorSchemaValidation", "StatusFrequency is required.")
        sub = world.subscribe(box, url, int(frequency))
    except EwsFault as exc:
        error_message(messages, "Subscribe", exc.code, exc.message)
        return root
    msg = message(messages, "Subscribe")
    etree.SubElement(msg, m("SubscriptionId")).text = sub.subscription_id
    etree.SubElement(msg, m("Watermark")).text = watermark(sub)
    return root


def unsubscribe(world: World, box: Mailbox, req: SoapRequest) -> etree._Element:
    root, messages = response("Unsubscribe")
    try:
        world.unsubscribe((req.body.findtext(m("SubscriptionId")) or "").strip())
    except EwsFault as exc:
        error_message(messages, "Unsubscribe", exc.code, exc.message)
        return root
    message(messages, "Unsubscribe")
    return root


def watermark(sub: Any) -> str:
    return base64.b64encode(f"wm|{sub.subscription_id}|{sub.watermark}".encode()).decode()


def _write_operations() -> dict[str, Handler]:
    from ewssim.writes import create_item, delete_item, update_item

    return {"CreateItem": create_item, "UpdateItem": update_item, "DeleteItem": delete_item}


OPERATIONS: dict[str, Handler] = {
    "Subscribe": subscribe,
    "Unsubscribe": unsubscribe,
    "GetFolder": get_folder,
    "SyncFolderItems": sync_folder_items,
    "FindItem": find_item,
    "GetItem": get_item,
}
OPERATIONS.update(_write_operations())
