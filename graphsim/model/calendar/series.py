"""Series edits: an occurrence becomes an exception; a pattern change prunes. Pure.

Rule: changing an occurrence stores an exception under the occurrence's id and original
start, starting from the master's properties and iCalUId date (so the id and iCalUId of
that instance never change); after a master's recurrence or start changes, exceptions
and cancellations that no longer fall on the pattern are dropped, as Outlook does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from graphsim.model.calendar import ids
from graphsim.model.calendar.model import EXCEPTION, MASTER, Instance, Item, occurrence_at
from graphsim.model.calendar.rules import apply_props
from graphsim.model.calendar.timezones import to_zone


def make_exception(
    master: Item, occurrence: Instance, props: dict[str, Any], now: datetime, change_key: str
) -> Item:
    """A new exception for `occurrence` with `props` applied (400 if the result is invalid)."""
    original = occurrence.original_start
    assert original is not None
    exception = Item(
        id=occurrence.id,
        raw=master.raw,
        kind=EXCEPTION,
        props=dict(master.props),
        start=occurrence.start,
        end=occurrence.end,
        start_zone=master.start_zone,
        end_zone=master.end_zone,
        is_all_day=master.is_all_day,
        created=now,
        modified=now,
        change_key=change_key,
        ical_uid=ids.occurrence_ical_uid(
            master.ical_uid, original.astimezone(to_zone(master.start_zone))
        ),
        master=master,
        original_start=original,
    )
    apply_props(exception, props)
    return exception


def reconcile(master: Item) -> list[str]:
    """After a pattern change, drop exceptions and cancellations off the new pattern."""
    gone = []
    for original, exception in list(master.exceptions.items()):
        if master.kind != MASTER or occurrence_at(master, original) is None:
            del master.exceptions[original]
            gone.append(exception.id)
    master.cancelled = {
        c
        for c in master.cancelled
        if master.kind == MASTER and occurrence_at(master, c) is not None
    }
    return gone
