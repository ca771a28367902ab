"""exchangelib: the EWS page source of mailboxes on Exchange Server on premises.

Rule: a round hands the sync engine the same pages Graph's delta does (`DeltaPageData` of
Graph-shaped events; `core.ews` does the conversion and the plan): SyncFolderItems from the
cursor's sync state on the impersonated mailbox's calendar, then, when anything changed (or
from scratch), one CalendarView of the window. exchangelib is imported inside the functions
(the Functions cold start imports this module); its answers and errors become the project's
in `ews_exchangelib_answers` (`read_item`, `deciphered`). The client never sleeps on a busy
server (FailFast): an ErrorServerBusy is Throttled with its BackOffMilliseconds, and the engine
re-queues.
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
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.ews_exchangelib_answers import deciphered, read_item, text
from shared.core import ews as core
from shared.core.model import BodyType, DeltaPageData, Window
from shared.errors import (
    CalsyncError,
    DeltaExpired,
    ExchangeError,
    ExchangeUnreachable,
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
        with deciphered(ews, smtp):
            self._new_account(ews, smtp, password).calendar  # noqa: B018 - GetFolder

    def probe_view(self, ews: EwsSettings, smtp: str, start: datetime, end: datetime) -> int:
        """How many instances a CalendarView of [start, end) shows (test connection)."""
        from exchangelib import EWSDateTime

        password = self._secrets.get(ews.password_secret_name)
        with deciphered(ews, smtp):
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
        with self._rereading_on_401(ews), deciphered(ews, smtp):
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
        with self._rereading_on_401(ews), deciphered(ews, smtp):
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
                    changes.append(core.SyncChange(kind, obj.id, text(obj.uid), text(obj.type)))
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
