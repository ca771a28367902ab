"""exchangelib: the EWS page source of mailboxes on Exchange Server on premises.

Rule: a round hands the sync engine the same pages Graph's delta does (`DeltaPageData` of
Graph-shaped events; `core.ews` does the conversion and the plan): SyncFolderItems from the
cursor's sync state on the impersonated mailbox's calendar, then, when anything changed (or
from scratch), one CalendarView of the window. exchangelib is imported inside the functions
(the Functions cold start imports this module); its errors become the project's in
`_deciphered`, the one place. The client never sleeps on a busy server (FailFast): an
ErrorServerBusy is Throttled with its BackOffMilliseconds, and the engine re-queues.
A CA bundle (the local simulator) is trusted through a per-client HTTP adapter, so a
process-wide REQUESTS_CA_BUNDLE is neither needed nor obeyed; without one the system's trust
store is used, as requests does.
https://learn.microsoft.com/exchange/client-developer/exchange-web-services/how-to-synchronize-items-by-using-ews-in-exchange
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.core import ews as core
from shared.core.model import BodyType, DeltaPageData, Window
from shared.errors import (
    CalsyncError,
    DeltaExpired,
    ExchangeError,
    ExchangeUnreachable,
    Throttled,
)
from shared.ews_settings import EwsSettings
from shared.secrets import SecretStore

log = logging.getLogger("calsync.ews")

# EWS refuses a CalendarView of more than two years, and Exchange's throttling policy cuts a
# FindItem at EWSFindCountLimit (1,000 by default) without an error: the window is read in
# slices, and a slice that comes back that full is refused rather than diffed (a cut listing
# would delete real events from the mirror).
VIEW_SLICE = timedelta(days=92)
FIND_COUNT_LIMIT = 1000
VIEW_FIELDS = (
    "subject",
    "body",
    "start",
    "end",
    "is_all_day",
    "_start_timezone",
    "_end_timezone",
    "type",
    "uid",
    "original_start",
    "location",
    "sensitivity",
    "legacy_free_busy_status",
    "importance",
    "organizer",
    "required_attendees",
    "optional_attendees",
    "resources",
    "categories",
    "reminder_is_set",
    "reminder_minutes_before_start",
    "is_cancelled",
    "my_response_type",
    "datetime_created",
    "last_modified_time",
)
_ACCOUNTS_MAX = 512
PUSH_EVENTS = ("CreatedEvent", "ModifiedEvent", "DeletedEvent", "MovedEvent", "CopiedEvent")


@functools.cache
def _protocol_class(ca_bundle: str) -> type[Any]:
    """An exchangelib Protocol whose sessions trust exactly `ca_bundle` (whatever verify
    requests would take from the environment)."""
    import requests.adapters
    from exchangelib.protocol import Protocol

    class CaAdapter(requests.adapters.HTTPAdapter):
        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, ca_bundle, cert)

        def get_connection_with_tls_context(
            self, request: Any, verify: Any, proxies: Any = None, cert: Any = None
        ) -> Any:
            return super().get_connection_with_tls_context(request, ca_bundle, proxies, cert)

    return type("CalsyncProtocol", (Protocol,), {"HTTP_ADAPTER_CLS": CaAdapter})


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _zone_id(zone: Any) -> str:
    return _text(getattr(zone, "ms_id", "") or getattr(zone, "key", ""))


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
                    _text(getattr(box, "name", "")),
                    _text(getattr(box, "email_address", "")),
                    _text(a.response_type) or "Unknown",
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
        change_key=_text(item.changekey),
        kind=_text(item.type) or "Single",
        start=_when(item.start),
        end=end,
        uid=_text(item.uid),
        subject=_text(item.subject),
        body=_text(item.body),
        body_is_html=isinstance(item.body, HTMLBody),
        is_all_day=bool(item.is_all_day),
        start_zone=_zone_id(item._start_timezone),
        end_zone=_zone_id(item._end_timezone),
        original_start=_plain(item.original_start),
        location=_text(item.location),
        sensitivity=_text(item.sensitivity) or "Normal",
        free_busy=_text(item.legacy_free_busy_status) or "Busy",
        importance=_text(item.importance) or "Normal",
        organizer_name=_text(getattr(organizer, "name", "")),
        organizer_address=_text(getattr(organizer, "email_address", "")),
        attendees=_attendees(item),
        categories=tuple(item.categories or ()),
        reminder_set=bool(item.reminder_is_set),
        reminder_minutes=item.reminder_minutes_before_start,
        is_cancelled=bool(item.is_cancelled),
        my_response=_text(item.my_response_type) or "Unknown",
        created=_plain(item.datetime_created),
        modified=_plain(item.last_modified_time),
    )


def _raised_below_us(exc: BaseException) -> bool:
    """Whether the innermost frame of `exc` is a library's (exchangelib, requests, lxml...)
    rather than this project's: only those read as the server's malformed answer."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", "")) if tb is not None else ""
    return not module.startswith(("shared.", "ewssim.", "tests."))


@contextlib.contextmanager
def _deciphered(ews: EwsSettings, smtp: str) -> Iterator[None]:
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
        if not _raised_below_us(exc):
            raise  # our own bug: not to be dressed up as the server's
        # exchangelib tripping over an answer it cannot parse
        log.warning("%s: an answer exchangelib could not read", where, exc_info=True)
        raise ExchangeUnreachable(
            f"{where}: a malformed EWS answer ({type(exc).__name__}: {exc}); the round is "
            "retried, and the cursor was not advanced",
            status=200,
            graph_code="MalformedAnswer",
        ) from None


class EwsSource:
    """The page source of EWS mailboxes, one per process (accounts and sessions reused)."""

    def __init__(
        self,
        secrets: SecretStore,
        *,
        ca_bundle: str | None = None,
        find_count_limit: int = FIND_COUNT_LIMIT,
    ) -> None:
        self._secrets = secrets
        self._find_count_limit = find_count_limit  # the server's EWSFindCountLimit
        self._ca_bundle = ca_bundle
        self._lock = threading.Lock()
        self._accounts: dict[tuple[str, ...], Any] = {}
        self._protocols: dict[int, Any] = {}  # every protocol used, probes' too, for close()

    def account(self, ews: EwsSettings, smtp: str) -> Any:
        """An exchangelib Account impersonating `smtp` (built without I/O, then cached: its
        calendar folder is looked up once)."""
        password = self._secrets.get(ews.password_secret_name)
        key = (ews.url, ews.username, password, ews.auth, ews.version, smtp.lower())
        with self._lock:
            found = self._accounts.get(key)
        if found is not None:
            return found
        account = self._new_account(ews, smtp, password)
        with self._lock:
            if len(self._accounts) >= _ACCOUNTS_MAX:
                self._accounts.clear()
            self._accounts[key] = account
        return account

    def probe(self, ews: EwsSettings, smtp: str) -> None:
        """Look the mailbox's calendar up afresh (test connection): raises what a round would."""
        password = self._secrets.get(ews.password_secret_name)
        with _deciphered(ews, smtp):
            self._new_account(ews, smtp, password).calendar  # noqa: B018 - GetFolder

    def probe_view(self, ews: EwsSettings, smtp: str, start: datetime, end: datetime) -> int:
        """How many instances a CalendarView of [start, end) shows (test connection)."""
        from exchangelib import EWSDateTime

        password = self._secrets.get(ews.password_secret_name)
        with _deciphered(ews, smtp):
            folder = self._new_account(ews, smtp, password).calendar
            view = folder.view(
                start=EWSDateTime.from_datetime(start.astimezone(UTC)),
                end=EWSDateTime.from_datetime(end.astimezone(UTC)),
            ).only("subject")
            return sum(1 for _ in view)

    def close(self) -> None:
        """Close every session of the accounts made here, and drop their protocols from
        exchangelib's process-wide cache (a host shutting down, a test ending)."""
        with self._lock:
            accounts, self._accounts = list(self._accounts.values()), {}
            protocols, self._protocols = list(self._protocols.values()), {}
        for protocol in {id(p): p for p in [*protocols, *(a.protocol for a in accounts)]}.values():
            with contextlib.suppress(Exception):  # closing is best effort
                protocol.close()
                del type(protocol)[protocol.config]

    def subscribe_push(
        self, ews: EwsSettings, smtp: str, url: str, status_minutes: int
    ) -> tuple[str, str]:
        """A push subscription on the mailbox's calendar to `url`: (SubscriptionId,
        Watermark). Exchange keeps it while `url` answers OK, with a StatusEvent every
        `status_minutes` when nothing changes."""
        with self._rereading_on_401(ews), _deciphered(ews, smtp):
            folder = self.account(ews, smtp).calendar
            sub_id, watermark = folder.subscribe_to_push(
                callback_url=url, event_types=list(PUSH_EVENTS), status_frequency=status_minutes
            )
        return str(sub_id), str(watermark or "")

    def _new_account(self, ews: EwsSettings, smtp: str, password: str) -> Any:
        from exchangelib import BASIC, IMPERSONATION, NTLM, Account, Configuration, Credentials
        from exchangelib.protocol import FailFast
        from exchangelib.version import Build, Version

        builds = {
            "Exchange2007_SP1": Build(8, 1),
            "Exchange2010": Build(14, 0),
            "Exchange2010_SP1": Build(14, 1),
            "Exchange2010_SP2": Build(14, 2),
            "Exchange2013": Build(15, 0),
            "Exchange2013_SP1": Build(15, 0, 847),
            "Exchange2016": Build(15, 1),
            "Exchange2019": Build(15, 2),
        }
        config = Configuration(
            service_endpoint=ews.url,
            credentials=Credentials(ews.username, password),
            auth_type=BASIC if ews.auth == "Basic" else NTLM,
            version=Version(build=builds[ews.version]),
            retry_policy=FailFast(),
        )
        # exchangelib caches one Protocol per (endpoint, credentials): made first, ours (with
        # the CA adapter) is the one the Account finds; set again in case another was cached.
        protocol = _protocol_class(self._ca_bundle)(config=config) if self._ca_bundle else None
        account = Account(
            smtp,
            config=config,
            autodiscover=False,
            access_type=IMPERSONATION,
            default_timezone=None,
        )
        if protocol is not None and account.protocol is not protocol:
            account.protocol = protocol
        with self._lock:
            self._protocols[id(account.protocol)] = account.protocol
        return account

    def iter_pages(
        self,
        ews: EwsSettings,
        smtp: str,
        cursor: str,
        window: Window,
        *,
        full: bool,
        body_type: BodyType,
        mirror_ids: Callable[[], Iterable[str]],
    ) -> Iterator[DeltaPageData]:
        """The round's pages (see the module docstring); DeltaExpired for a cursor that is not
        an EWS sync state, so the engine lists the window from scratch."""
        state = None if full else core.parse_sync_link(cursor)
        if cursor and not full and state is None:
            raise DeltaExpired(
                f"the cursor of {smtp} is not an EWS sync state (the tenant used another "
                "provider): the window is listed from scratch",
                status=None,
                graph_code="NotAnEwsSyncState",
            )
        with self._rereading_on_401(ews), _deciphered(ews, smtp):
            folder = self.account(ews, smtp).calendar
            changes, new_state = self._changes(folder, state)
            if state is None:
                masters = {c.uid: c.item_id for c in changes if c.item_type == "RecurringMaster"}
                plan = core.plan_full(self._view(folder, window), masters, body_type=body_type)
                if plan.skipped:
                    log.info(
                        "%s: %d occurrences of new series wait for the next round",
                        smtp,
                        plan.skipped,
                    )
            elif changes:
                plan = core.plan_changes(
                    changes, self._view(folder, window), mirror_ids(), body_type=body_type
                )
            else:
                plan = core.RoundPlan(())
        yield from core.pages(plan, new_state)

    @contextlib.contextmanager
    def _rereading_on_401(self, ews: EwsSettings) -> Iterator[None]:
        """A refused password is read again past the secret cache, so a rotated one is used
        by the next round instead of after the cache's time."""
        try:
            yield
        except ExchangeError as exc:
            if exc.detail_code == "Unauthorized":
                with contextlib.suppress(CalsyncError):
                    self._secrets.refresh(ews.password_secret_name)
            raise

    def _changes(self, folder: Any, state: str | None) -> tuple[list[core.SyncChange], str]:
        """Every change since `state` (None: every item) and the state after them. Through
        FolderCollection, whose SyncCompleted carries the new state: the cached folder object
        is not written to (two rounds of one mailbox may meet after a lease takeover)."""
        from exchangelib.folders.collections import FolderCollection, SyncCompleted

        changes: list[core.SyncChange] = []
        walk = FolderCollection(account=folder.account, folders=[folder]).sync_items(
            sync_state=state, only_fields=["uid", "type"], max_changes_returned=100
        )
        try:
            for kind, obj in walk:
                if kind == "delete":
                    changes.append(core.SyncChange("delete", obj.id))
                elif kind in ("create", "update"):
                    changes.append(core.SyncChange(kind, obj.id, _text(obj.uid), _text(obj.type)))
        except SyncCompleted as done:
            return changes, str(done.sync_state)
        raise ExchangeUnreachable(
            "SyncFolderItems ended without a sync state; the cursor was not advanced",
            status=200,
            graph_code="NoSyncState",
        )

    def _view(self, folder: Any, window: Window) -> list[core.EwsItem]:
        from exchangelib import EWSDateTime

        out: dict[str, core.EwsItem] = {}
        start = window.start
        while start < window.end:
            end = min(window.end, start + VIEW_SLICE)
            view = folder.view(
                start=EWSDateTime.from_datetime(start.astimezone(UTC)),
                end=EWSDateTime.from_datetime(end.astimezone(UTC)),
            ).only(*VIEW_FIELDS)
            seen = 0
            for item in view:
                if isinstance(item, Exception):
                    raise item
                seen += 1
                out.setdefault(item.id, read_item(item))
            if seen >= self._find_count_limit:
                raise ExchangeError(
                    f"a CalendarView of {start:%Y-%m-%d} to {end:%Y-%m-%d} returned {seen} "
                    "instances, the server's EWSFindCountLimit: the listing may be cut, so "
                    "the round stops before changing the mirror; raise EWSFindCountLimit in the "
                    "service account's throttling policy, or shorten the mailbox's window",
                    status=200,
                    graph_code="CalendarViewFull",
                )
            start = end
        return list(out.values())
