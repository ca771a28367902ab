"""exchangelib behind the write port (core.write_port): writes of a mailbox on Exchange Server.

Rule: the write's Graph body (core.writes: write options, origin marker) becomes CalendarItem
fields through core.ews_writes; CreateItem, UpdateItem (ConflictResolution NeverOverwrite with
the mirror's ChangeKey), DeleteItem (SendToNone) and CancelCalendarItem go out with
SendMeetingInvitations(OrCancellations) SendToNone unless the event has attendees; the answer
is the item read back with the round's fields and rendered by core.ews as a round renders it,
so the next SyncFolderItems round finds the mirror as is. The origin marker is the extended
property `calsync_origin` (core.writes' GUID namespace and name) registered on exchangelib's
CalendarItem. An occurrence's id (`<master>~<original start>`) is found in a CalendarView by
its master's UID and original start. EWS refusals of a write become the project's errors here
(a stale ChangeKey WriteConflict, a missing item NotFoundError, a body refused InputError);
the rest as a round's (`deciphered`: ErrorServerBusy is Throttled with BackOffMilliseconds).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.ews_exchangelib import VIEW_FIELDS
from shared.adapters.ews_exchangelib_answers import deciphered, read_item
from shared.adapters.ews_exchangelib_items import ORIGIN_FIELD, item_values
from shared.core import ews as ews_core
from shared.core import ews_writes as plan
from shared.core import writes as core
from shared.core.model import Window
from shared.core.state import MailboxRecord
from shared.core.writes import ORIGIN_NAMESPACE, WriteRecord
from shared.errors import InputError, NotFoundError, WriteConflict
from shared.ews_settings import EwsSettings

if TYPE_CHECKING:
    from shared.adapters.ews_exchangelib import EwsSource

READ_FIELDS = (*VIEW_FIELDS, ORIGIN_FIELD)
# EWS codes that mean the body or the operation is refused as asked (HTTP 400, EWS's code).
REFUSED = (
    "ErrorCalendarEndDateIsEarlierThanStartDate",
    "ErrorCalendarInvalidRecurrence",
    "ErrorCalendarInvalidPropertyValue",
    "ErrorCalendarIsNotOrganizer",
    "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
    "ErrorInvalidOperation",
    "ErrorInvalidPropertySet",
    "ErrorInvalidPropertyDelete",
    "ErrorSchemaValidation",
    "ErrorSendMeetingInvitationsRequired",
    "ErrorSendMeetingCancellationsRequired",
    "ErrorSendMeetingInvitationsOrCancellationsRequired",
)


@functools.cache
def _register_origin() -> None:
    """The origin marker as an exchangelib field of CalendarItem (once per process)."""
    from exchangelib import CalendarItem, ExtendedProperty

    class Origin(ExtendedProperty):  # type: ignore[misc]
        property_set_id = ORIGIN_NAMESPACE.strip("{}")
        property_name = "calsyncOrigin"
        property_type = "String"

    if ORIGIN_FIELD not in {f.name for f in CalendarItem.FIELDS}:
        CalendarItem.register(ORIGIN_FIELD, Origin)


class EwsWriter:
    """Writes of one EWS mailbox; `window()` is where its occurrences are looked for (read
    only when an occurrence's id must be found)."""

    mirrors_masters = False

    def __init__(self, source: EwsSource, ews: EwsSettings, window: Callable[[], Window]) -> None:
        self._source, self._ews, self._window = source, ews, window

    # ---- the port ----------------------------------------------------------------------------
    def create(self, mailbox: MailboxRecord, record: WriteRecord) -> dict[str, Any]:
        from exchangelib import CalendarItem

        write = plan.plan_ews_write(
            core.plan_graph_body(record.request, mailbox.options, record.write_id)
        )
        _register_origin()
        values = item_values(write)
        with self._calls(mailbox) as account:
            item = CalendarItem(account=account, folder=account.calendar, **values)
            item.save(send_meeting_invitations=plan.plan_invitations(write, is_meeting=False))
            return self._event(mailbox, account, item.id, None)

    def update(
        self, mailbox: MailboxRecord, record: WriteRecord, change_key: str
    ) -> dict[str, Any]:
        from exchangelib import CalendarItem
        from exchangelib.items import NEVER_OVERWRITE

        write = plan.plan_ews_write(
            core.plan_graph_body(record.request, mailbox.options, record.write_id)
        )
        _register_origin()
        values = item_values(write)
        with self._calls(mailbox) as account:
            target, master_id = self._target(account, record.request.event_id)
            item = CalendarItem(
                account=account,
                folder=account.calendar,
                id=target.id,
                changekey=change_key or target.changekey,
                **values,
            )
            item.save(
                update_fields=list(values),
                conflict_resolution=NEVER_OVERWRITE,
                send_meeting_invitations=plan.plan_invitations(write, _is_meeting(target)),
            )
            return self._event(mailbox, account, item.id, master_id)

    def delete(self, mailbox: MailboxRecord, event_id: str) -> None:
        from exchangelib.items import SEND_TO_NONE

        with self._calls(mailbox) as account:
            target, _ = self._target(account, event_id)
            target.delete(send_meeting_cancellations=SEND_TO_NONE)

    def cancel(self, mailbox: MailboxRecord, event_id: str, comment: str) -> None:
        from exchangelib.items import SEND_TO_NONE, CancelCalendarItem
        from exchangelib.properties import ReferenceItemId

        with self._calls(mailbox) as account:
            target, _ = self._target(account, event_id)
            if plan.plan_cancel(_is_meeting(target)) == "cancel":
                # SendOnly: the cancellation goes out and the meeting leaves the calendar (a
                # saved copy would need the Sent Items folder, which a round never reads).
                reference = ReferenceItemId(id=target.id, changekey=target.changekey)
                CancelCalendarItem(
                    account=account, reference_item_id=reference, new_body=comment
                ).send(save_copy=False)
            else:
                target.delete(send_meeting_cancellations=SEND_TO_NONE)

    def find_origin(self, mailbox: MailboxRecord, origin: str) -> dict[str, Any] | None:
        with self._calls(mailbox) as account:
            found = account.calendar.filter(**{ORIGIN_FIELD: origin}).only(*READ_FIELDS)
            for item in found:
                if isinstance(item, Exception):
                    raise item
                return self._render(mailbox, item, None)
        return None

    def read(self, mailbox: MailboxRecord, event_id: str) -> dict[str, Any]:
        with self._calls(mailbox) as account:
            target, master_id = self._target(account, event_id)
            return self._render(mailbox, target, master_id)

    def instances(
        self, mailbox: MailboxRecord, master_id: str, window: Window
    ) -> list[dict[str, Any]]:
        with self._calls(mailbox) as account:
            try:
                master = self._fetch(account, master_id)
            except NotFoundError:
                return []
            return [
                self._render(mailbox, item, master_id)
                for item in self._view(account, window.start, window.end)
                if str(item.uid) == str(master.uid) and item.type in ("Occurrence", "Exception")
            ]

    # ---- helpers -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _calls(self, mailbox: MailboxRecord) -> Iterator[Any]:
        """The impersonating account, every exchangelib error of the block as ours."""
        _register_origin()
        with deciphered(self._ews, mailbox.upn), _write_errors(mailbox.upn):
            yield self._source.account(self._ews, mailbox.upn)

    def _fetch(self, account: Any, item_id: str) -> Any:
        (item,) = account.fetch(
            ids=[(item_id, None)], folder=account.calendar, only_fields=list(READ_FIELDS)
        )
        if isinstance(item, Exception):
            raise item
        return item

    def _view(self, account: Any, start: datetime, end: datetime) -> list[Any]:
        from exchangelib import EWSDateTime

        out: list[Any] = []
        start = datetime.fromtimestamp(start.timestamp(), UTC)  # the store's datetimes too
        end = datetime.fromtimestamp(end.timestamp(), UTC)
        while start < end:
            stop = min(end, start + timedelta(days=92))  # EWS's two-year limit, sliced
            view = account.calendar.view(
                start=EWSDateTime.from_datetime(start.astimezone(UTC)),
                end=EWSDateTime.from_datetime(stop.astimezone(UTC)),
            ).only(*READ_FIELDS)
            for item in view:
                if isinstance(item, Exception):
                    raise item
                out.append(item)
            start = stop
        return out

    def _target(self, account: Any, event_id: str) -> tuple[Any, str | None]:
        """(the exchangelib item an event id names, its series master's id or None)."""
        if ews_core.SEP not in event_id:
            return self._fetch(account, event_id), None
        master_id, stamp = event_id.split(ews_core.SEP, 1)
        try:
            original = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise NotFoundError(f"{event_id!r} is not an event id of this mailbox") from None
        uid = str(self._fetch(account, master_id).uid)
        # Around its original start first (an occurrence, or an exception not moved far),
        # then the whole window (an exception moved anywhere in it).
        for wide in (False, True):
            if wide:
                window = self._window()
                start, end = window.start, window.end
            else:
                start, end = original - timedelta(days=1), original + timedelta(days=2)
            for item in self._view(account, start, end):
                same = item.original_start is not None and (
                    datetime.fromtimestamp(item.original_start.timestamp(), UTC) == original
                )
                if str(item.uid) == uid and same:
                    return item, master_id
        raise NotFoundError(
            f"no occurrence {event_id!r} in this mailbox's window (deleted, or moved out of it)"
        )

    def _event(
        self, mailbox: MailboxRecord, account: Any, item_id: str, master_id: str | None
    ) -> dict[str, Any]:
        return self._render(mailbox, self._fetch(account, item_id), master_id)

    def _render(self, mailbox: MailboxRecord, item: Any, master_id: str | None) -> dict[str, Any]:
        event = ews_core.to_graph_event(
            read_item(item), master_id=master_id, body_type=mailbox.options.body_type
        )
        origin = getattr(item, ORIGIN_FIELD, None)
        if origin:
            event["singleValueExtendedProperties"] = [
                {"id": core.ORIGIN_PROPERTY, "value": str(origin)}
            ]
        return event


def _is_meeting(item: Any) -> bool:
    return bool(item.required_attendees or item.optional_attendees or item.resources)


@contextlib.contextmanager
def _write_errors(smtp: str) -> Iterator[None]:
    """EWS's refusals of a write as the project's errors (the rest pass on to `deciphered`)."""
    from exchangelib import errors as x

    try:
        yield
    except x.ErrorIrresolvableConflict:
        raise WriteConflict(
            f"EWS for {smtp}: the item changed since the ChangeKey sent "
            "(ErrorIrresolvableConflict); read the current version and decide again",
            status=409,
            graph_code="ErrorIrresolvableConflict",
        ) from None
    except (x.ErrorItemNotFound, x.ErrorInvalidIdMalformed):
        raise NotFoundError(
            f"EWS for {smtp}: no such item in this mailbox (ErrorItemNotFound): deleted, or "
            "the id is of another mailbox"
        ) from None
    except x.EWSError as exc:
        code = type(exc).__name__
        if code not in REFUSED:
            raise
        raise InputError(f"EWS for {smtp} refused the write ({code}): {exc}") from None
