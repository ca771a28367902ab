"""Structural checks of SOAP payloads, in and out, as the EWS schema (`types.xsd`,
`messages.xsd`) has them for the elements the simulator reads and writes.

Rule: the schema files are not vendored (see ewssim/README.md: public copies exist, none under
a licence that lets us ship it), so the parts of them that the simulated operations touch are
written down here (the two sequences as the published types.xsd has them, checked against a
public copy): a CalendarItem's children in the schema's
xs:sequence order (ItemType's, then CalendarItemType's), nothing unknown, each element at most
once unless the schema repeats it; the attributes an operation requires; the values of the
enumerations it reads. A request that breaks them is ErrorSchemaValidation (what Exchange
answers, as a SOAP fault); an answer of ours that breaks them is a bug of the simulator, raised
as AssertionError so that the test that provoked it fails.
"""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from ewssim.soap import SoapError, T

# types.xsd, ItemType then CalendarItemType (Exchange 2013+), the elements of their sequences.
ITEM_SEQUENCE = (
    "MimeContent",
    "ItemId",
    "ParentFolderId",
    "ItemClass",
    "Subject",
    "Sensitivity",
    "Body",
    "Attachments",
    "DateTimeReceived",
    "Size",
    "Categories",
    "Importance",
    "InReplyTo",
    "IsSubmitted",
    "IsDraft",
    "IsFromMe",
    "IsResend",
    "IsUnmodified",
    "InternetMessageHeaders",
    "DateTimeSent",
    "DateTimeCreated",
    "ResponseObjects",
    "ReminderDueBy",
    "ReminderIsSet",
    "ReminderNextTime",
    "ReminderMinutesBeforeStart",
    "DisplayCc",
    "DisplayTo",
    "HasAttachments",
    "ExtendedProperty",
    "Culture",
    "EffectiveRights",
    "LastModifiedName",
    "LastModifiedTime",
    "IsAssociated",
    "WebClientReadFormQueryString",
    "WebClientEditFormQueryString",
    "ConversationId",
    "UniqueBody",
    # Exchange 2013 and later
    "Flag",
    "StoreEntryId",
    "InstanceKey",
    "NormalizedBody",
    "EntityExtractionResult",
    "PolicyTag",
    "ArchiveTag",
    "RetentionDate",
    "Preview",
)
CALENDAR_SEQUENCE = (
    "UID",
    "RecurrenceId",
    "DateTimeStamp",
    "Start",
    "End",
    "OriginalStart",
    "IsAllDayEvent",
    "LegacyFreeBusyStatus",
    "Location",
    "When",
    "IsMeeting",
    "IsCancelled",
    "IsRecurring",
    "MeetingRequestWasSent",
    "IsResponseRequested",
    "CalendarItemType",
    "MyResponseType",
    "Organizer",
    "RequiredAttendees",
    "OptionalAttendees",
    "Resources",
    "ConflictingMeetingCount",
    "AdjacentMeetingCount",
    "ConflictingMeetings",
    "AdjacentMeetings",
    "Duration",
    "TimeZone",
    "AppointmentReplyTime",
    "AppointmentSequenceNumber",
    "AppointmentState",
    "Recurrence",
    "FirstOccurrence",
    "LastOccurrence",
    "ModifiedOccurrences",
    "DeletedOccurrences",
    "MeetingTimeZone",
    "StartTimeZone",
    "EndTimeZone",
    "ConferenceType",
    "AllowNewTimeProposal",
    "IsOnlineMeeting",
    "MeetingWorkspaceUrl",
    "NetShowUrl",
)
CALENDAR_ITEM = ITEM_SEQUENCE + CALENDAR_SEQUENCE
REPEATED = frozenset({"ExtendedProperty"})  # maxOccurs="unbounded" in ItemType
# CancelCalendarItemType (a response object): its sequence.
CANCEL_ITEM = ("ItemClass", "Sensitivity", "Body", "Attachments", "InternetMessageHeaders")
CANCEL_ITEM += ("Sender", "ToRecipients", "CcRecipients", "BccRecipients")
CANCEL_ITEM += ("IsReadReceiptRequested", "IsDeliveryReceiptRequested", "From")
CANCEL_ITEM += ("ReferenceItemId", "NewBodyContent")

# messages.xsd / types.xsd enumerations the write operations read.
MESSAGE_DISPOSITION = ("SaveOnly", "SendOnly", "SendAndSaveCopy")
SEND_INVITATIONS = ("SendToNone", "SendOnlyToAll", "SendToAllAndSaveCopy")
SEND_INVITATIONS_OR_CANCELLATIONS = (
    *SEND_INVITATIONS,
    "SendOnlyToChanged",
    "SendToChangedAndSaveCopy",
)
CONFLICT_RESOLUTION = ("NeverOverwrite", "AutoResolve", "AlwaysOverwrite")
DELETE_TYPE = ("HardDelete", "SoftDelete", "MoveToDeletedItems")
SEND_CANCELLATIONS = ("SendToNone", "SendOnlyToAll", "SendToAllAndSaveCopy")
SENSITIVITY = ("Normal", "Personal", "Private", "Confidential")
IMPORTANCE = ("Low", "Normal", "High")
FREE_BUSY = ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData")
BODY_TYPE = ("HTML", "Text")
BOOLEAN = ("true", "false", "1", "0")


def invalid(what: str) -> SoapError:
    return SoapError("ErrorSchemaValidation", f"The request failed schema validation: {what}")


def check_sequence(
    element: etree._Element, order: Sequence[str], what: str, *, outgoing: bool = False
) -> None:
    """The children of `element` are elements of `order`, in its order, each once (but the
    repeated ones)."""
    position = -1
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments
        qname = etree.QName(child)
        name = qname.localname
        problem = ""
        if qname.namespace != T or name not in order:
            problem = f"{what} has no child element {child.tag!r}"
        else:
            index = order.index(name)
            if index < position or (index == position and name not in REPEATED):
                problem = f"{what}: element {name} is out of the schema's order or repeated"
            position = index
        if problem:
            if outgoing:
                raise AssertionError(f"ewssim answered outside the EWS schema: {problem}")
            raise invalid(problem)


def check_choice(value: str | None, allowed: Sequence[str], what: str) -> str:
    """An enumeration's value, or ErrorSchemaValidation naming the attribute or element."""
    if value is None or value not in allowed:
        raise invalid(f"{what} must be one of {', '.join(allowed)} (got {value!r})")
    return value


def check_answer_items(root: etree._Element) -> None:
    """Every CalendarItem of an answer follows the schema's sequence (a simulator bug if not)."""
    for item in root.iter(f"{{{T}}}CalendarItem"):
        check_sequence(item, CALENDAR_ITEM, "CalendarItem", outgoing=True)
