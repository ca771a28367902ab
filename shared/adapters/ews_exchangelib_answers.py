"""exchangelib's answers as the project's: a CalendarItem as `core.ews.EwsItem` (plain values),
and exchangelib's exceptions as the project's errors, in `deciphered`, the one place.

Rule: an ErrorServerBusy is Throttled with its BackOffMilliseconds; ErrorInvalidSyncStateData is
DeltaExpired (the engine lists the window again); 401, ErrorImpersonateUserDenied,
ErrorNonExistentMailbox and ErrorAccessDenied are ExchangeError with EWS's code and the fix;
no answer, or one exchangelib cannot read, is ExchangeUnreachable (retried). An exception raised
in this project's own code is never dressed up as the server's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.core import ews as core
from shared.errors import (
    CalsyncError,
    DeltaExpired,
    ExchangeError,
    ExchangeUnreachable,
    Throttled,
)
from shared.ews_settings import EwsSettings

log = logging.getLogger("calsync.ews")


def text(value: Any) -> str:
    return "" if value is None else str(value)


def _zone_id(zone: Any) -> str:
    return text(getattr(zone, "ms_id", "") or getattr(zone, "key", ""))


def _attendees(item: Any) -> tuple[core.Attendee, ...]:
    out: list[core.Attendee] = []
    for kind, group in (
        ("required", item.required_attendees),
        ("optional", item.optional_attendees),
        ("resource", item.resources),
    ):
        for a in group or ():
            box = a.mailbox
            out.append(
                core.Attendee(
                    text(getattr(box, "name", "")),
                    text(getattr(box, "email_address", "")),
                    text(a.response_type) or "Unknown",
                    kind,
                )
            )
    return tuple(out)


def _plain(dt: Any) -> datetime | None:
    return None if dt is None else datetime.fromtimestamp(dt.timestamp(), UTC)


def _when(value: Any) -> datetime | date:
    """A start or end: an aware UTC datetime, or a date (exchangelib's all-day values)."""
    if isinstance(value, datetime):
        return datetime.fromtimestamp(value.timestamp(), UTC)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    raise ExchangeUnreachable(
        f"EWS returned a calendar item without a usable start or end ({value!r})",
        status=200,
        graph_code="MalformedItem",
    )


def read_item(item: Any) -> core.EwsItem:
    """exchangelib's CalendarItem in plain values."""
    from exchangelib import HTMLBody

    end = _when(item.end)
    if item.is_all_day and not isinstance(end, datetime):
        end += timedelta(days=1)  # exchangelib makes an all-day end inclusive; EWS's is not
    organizer = item.organizer
    return core.EwsItem(
        item_id=item.id,
        change_key=text(item.changekey),
        kind=text(item.type) or "Single",
        start=_when(item.start),
        end=end,
        uid=text(item.uid),
        subject=text(item.subject),
        body=text(item.body),
        body_is_html=isinstance(item.body, HTMLBody),
        is_all_day=bool(item.is_all_day),
        start_zone=_zone_id(item._start_timezone),
        end_zone=_zone_id(item._end_timezone),
        original_start=_plain(item.original_start),
        location=text(item.location),
        sensitivity=text(item.sensitivity) or "Normal",
        free_busy=text(item.legacy_free_busy_status) or "Busy",
        importance=text(item.importance) or "Normal",
        organizer_name=text(getattr(organizer, "name", "")),
        organizer_address=text(getattr(organizer, "email_address", "")),
        attendees=_attendees(item),
        categories=tuple(item.categories or ()),
        reminder_set=bool(item.reminder_is_set),
        reminder_minutes=item.reminder_minutes_before_start,
        is_cancelled=bool(item.is_cancelled),
        my_response=text(item.my_response_type) or "Unknown",
        created=_plain(item.datetime_created),
        modified=_plain(item.last_modified_time),
    )


def raised_below_us(exc: BaseException) -> bool:
    """Whether the innermost frame of `exc` is a library's (exchangelib, requests, lxml...)
    rather than this project's: only those read as the server's malformed answer."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", "")) if tb is not None else ""
    return not module.startswith(("shared.", "ewssim.", "tests."))


@contextlib.contextmanager
def deciphered(ews: EwsSettings, smtp: str) -> Iterator[None]:
    """exchangelib's exceptions as the project's, each message naming the fix."""
    from exchangelib import errors as x

    where = f"EWS at {ews.url} for {smtp}"
    try:
        yield
    except x.ErrorServerBusy as exc:
        wait = float(exc.back_off or 60)
        raise Throttled(
            f"{where}: the server is busy (ErrorServerBusy); backing off {wait:g} s as it asks",
            status=500,
            graph_code="ErrorServerBusy",
            retry_after=wait,
        ) from None
    except x.ErrorInvalidSyncStateData:
        raise DeltaExpired(
            f"{where}: the sync state is no longer valid (ErrorInvalidSyncStateData): the "
            "window is listed from scratch and the mirror diffed",
            status=200,
            graph_code="ErrorInvalidSyncStateData",
        ) from None
    except x.UnauthorizedError:
        raise ExchangeError(
            f"{where}: the server refused the service account {ews.username!r} (HTTP 401 with "
            f"{ews.auth}): check the user name (DOMAIN\\user or user@domain), the password in "
            f"secret {ews.password_secret_name!r} and that {ews.auth} is enabled on the EWS "
            "virtual directory",
            status=401,
            graph_code="Unauthorized",
        ) from None
    except x.ErrorImpersonateUserDenied:
        raise ExchangeError(
            f"{where}: {ews.username!r} may not impersonate this mailbox "
            "(ErrorImpersonateUserDenied): assign it the ApplicationImpersonation role "
            "(New-ManagementRoleAssignment -Role ApplicationImpersonation -User <account>), "
            "scoped to include this mailbox",
            status=500,
            graph_code="ErrorImpersonateUserDenied",
        ) from None
    except x.ErrorNonExistentMailbox:
        raise ExchangeError(
            f"{where}: the server has no mailbox with this address (ErrorNonExistentMailbox): "
            "enrol the mailbox by its primary SMTP address",
            status=500,
            graph_code="ErrorNonExistentMailbox",
        ) from None
    except x.ErrorAccessDenied:
        raise ExchangeError(
            f"{where}: access to the calendar was denied (ErrorAccessDenied): check the "
            "impersonation scope and the calendar's permissions",
            status=200,
            graph_code="ErrorAccessDenied",
        ) from None
    except (x.MalformedResponseError, x.SOAPError) as exc:
        raise ExchangeUnreachable(
            f"{where}: a malformed EWS answer ({type(exc).__name__}: {exc}); the round is "
            "retried and the cursor was not advanced",
            status=200,
            graph_code=type(exc).__name__,
        ) from None
    except x.TransportError as exc:
        raise ExchangeUnreachable(
            f"{where}: no usable answer ({type(exc).__name__}: {exc}); check the URL, DNS, the "
            "network path from Azure and the server's TLS certificate",
            status=None,
            graph_code=type(exc).__name__,
        ) from None
    except x.EWSError as exc:
        raise ExchangeError(
            f"{where}: {type(exc).__name__}: {exc}", status=None, graph_code=type(exc).__name__
        ) from None
    except CalsyncError:
        raise
    except Exception as exc:
        if not raised_below_us(exc):
            raise  # our own bug: not to be dressed up as the server's
        # exchangelib tripping over an answer it cannot parse
        log.warning("%s: an answer exchangelib could not read", where, exc_info=True)
        raise ExchangeUnreachable(
            f"{where}: a malformed EWS answer ({type(exc).__name__}: {exc}); the round is "
            "retried, and the cursor was not advanced",
            status=200,
            graph_code="MalformedAnswer",
        ) from None
