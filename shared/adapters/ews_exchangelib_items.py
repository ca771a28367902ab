"""exchangelib's CalendarItem fields for a planned write (core.ews_writes.EwsWrite): the keyword
arguments a CalendarItem is built with, which are also the fields an update sets (None
deletes).

Rule: exchangelib's own conventions are met here, once: an all-day end date is inclusive (one
day less than Graph's and EWS's exclusive end), a start or end is an EWSDateTime in its zone
with the zone's EWSTimeZone beside it (StartTimeZone / EndTimeZone), weekdays are 1 = Monday,
patterns and week indexes by their EWS names, the origin marker under ORIGIN_FIELD.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from shared.core import ews_writes as plan

ORIGIN_FIELD = "calsync_origin"


def _when(value: datetime | date, zone: str) -> Any:
    from exchangelib import EWSDate, EWSDateTime, EWSTimeZone

    if isinstance(value, datetime):
        return EWSDateTime.from_datetime(value).astimezone(EWSTimeZone(zone))
    return EWSDate(value.year, value.month, value.day)


def item_values(write: plan.EwsWrite) -> dict[str, Any]:
    """exchangelib's CalendarItem keyword arguments for the planned fields."""
    from exchangelib import Attendee, Body, EWSDate, EWSTimeZone, HTMLBody, Mailbox
    from exchangelib.recurrence import Recurrence

    out: dict[str, Any] = {}
    for name, value in write.values.items():
        if name == "body":
            text, is_html = value
            out["body"] = HTMLBody(text) if is_html else Body(text)
        elif name in ("start", "end"):
            zone = write.zone if name == "start" else write.end_zone
            if name == "end" and not isinstance(value, datetime):
                value -= timedelta(days=1)  # exchangelib's all-day end date is inclusive
            out[name] = _when(value, zone or "UTC")
            out[f"_{name}_timezone"] = EWSTimeZone(zone or "UTC")
        elif name == "attendees":
            groups: dict[str, list[Any]] = {"required": [], "optional": [], "resource": []}
            for person, address, kind in value:
                box = Mailbox(email_address=address, name=person or None)
                groups.get(kind, groups["required"]).append(
                    Attendee(mailbox=box, response_type="Unknown")
                )
            out["required_attendees"] = groups["required"] or None
            out["optional_attendees"] = groups["optional"] or None
            if groups["resource"]:
                out["resources"] = groups["resource"]
        elif name == "recurrence":
            if value is None:
                out["recurrence"] = None
                continue
            pattern = _pattern(value)
            start = EWSDate(value.start.year, value.start.month, value.start.day)
            end = value.end and EWSDate(value.end.year, value.end.month, value.end.day)
            out["recurrence"] = Recurrence(
                pattern=pattern, start=start, number=value.count, end=end
            )
        elif name == "categories":
            out["categories"] = list(value) or None
        elif name == "origin":
            out[ORIGIN_FIELD] = value
        else:
            out[name] = value
    return out


def _pattern(value: plan.EwsRecurrence) -> Any:
    """exchangelib's pattern of a planned recurrence."""
    from exchangelib import recurrence as r

    day = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    kind = value.pattern
    if kind == "daily":
        return r.DailyPattern(interval=value.interval)
    if kind == "weekly":
        return r.WeeklyPattern(interval=value.interval, weekdays=[d + 1 for d in value.weekdays])
    if kind == "absoluteMonthly":
        return r.AbsoluteMonthlyPattern(interval=value.interval, day_of_month=value.day_of_month)
    if kind == "relativeMonthly":
        return r.RelativeMonthlyPattern(
            interval=value.interval,
            weekday=day[value.weekdays[0]],
            week_number=value.week_index,
        )
    if kind == "absoluteYearly":
        return r.AbsoluteYearlyPattern(day_of_month=value.day_of_month, month=value.month)
    return r.RelativeYearlyPattern(
        weekday=day[value.weekdays[0]], week_number=value.week_index, month=value.month
    )
