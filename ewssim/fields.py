"""Calendar item fields as EWS requests carry them: a CalendarItem element (CreateItem's, or
one SetItemField's) read into the model's Appointment fields, with its recurrence and
extended properties.

Rules (harsher than the docs where they are vague): the children follow the schema's sequence
(ewssim.schema), enumerations are checked, a recurrence is one of the six patterns with the
elements its type requires (a relative pattern on one day) and a numbered, end-date or no-end
range; a property the simulator does not model cannot be set (ErrorInvalidPropertySet).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from lxml import etree

from ewssim import schema
from ewssim.model import WEEKDAYS, EwsFault, Recurrence
from ewssim.soap import parse_datetime, t

FIELDS_BY_URI = {
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
