"""The composition root: builds the services from Settings once per process (cached), instead of
module-level globals set up at import. Tests call `build_services` with their own settings, clock
and credential; the triggers call `services()`.

Heavy SDK imports happen here, on first use, so that importing function_app stays fast.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import socket
import ssl
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared import redact, telemetry
from shared.core.intake import ArrivalGate, SubscriptionCache
from shared.core.rounds import DEBOUNCE_SECONDS
from shared.core.webhooks import Coalescer
from shared.names import ICALUIDS_TABLE, LOG_TABLE, PACING_TABLE
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.adapters.ews_exchangelib import EwsSource
    from shared.adapters.ews_push_tables import PushTable
    from shared.adapters.feed_tables import ChangeLog
    from shared.adapters.graph_httpx import GraphClient
    from shared.adapters.icaluid_tables import TableIcalIndex
    from shared.adapters.msal_tokens import MsalTokens
    from shared.adapters.oplog_tables import TableOpLog
    from shared.adapters.queues import SyncQueue, WriteQueue
    from shared.adapters.tables import TableState
    from shared.adapters.webhook_http import WebhookSender
    from shared.adapters.webhook_tables import WebhookStore
    from shared.adapters.write_tables import WriteStore
    from shared.secrets import SecretStore
    from shared.services.write_budget import SharedPacer

log = logging.getLogger("calsync")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class OffsetClock:
    """Dev/test only: real time plus an offset in seconds read from a file (re-read when the
    file changes), so the app can share a simulator's virtual clock ("the host was down for 8
    days"). Enabled by the dev-only setting DEV_CLOCK_OFFSET_FILE; never set in Azure."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stamp = -1
        self._offset = 0.0

    def __call__(self) -> datetime:
        try:
            stamp = os.stat(self._path).st_mtime_ns
            if stamp != self._stamp:
                with open(self._path) as f:
                    self._offset = float(f.read().strip() or 0)
                self._stamp = stamp
        except (OSError, ValueError):
            pass
        return datetime.now(UTC) + timedelta(seconds=self._offset)


@dataclass
class Services:
    """Everything a service step needs, built from settings."""

    settings: Settings
    state: TableState
    queue: SyncQueue
    graph: GraphClient
    tokens: MsalTokens
    secrets: SecretStore
    clock: Clock = utc_now
    rng: random.Random = field(default_factory=random.Random)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}")
    # The intake's own storage clients (a budget Graph's 3 s allows) and subscription memory;
    # None: the intake uses `state` and `queue`.
    intake_state: TableState | None = None
    intake_queue: SyncQueue | None = None
    intake_cache: SubscriptionCache = field(default_factory=SubscriptionCache)
    # Which notifications sync at once (a quiet mailbox's first) and which wait out a burst.
    arrivals: ArrivalGate = field(
        default_factory=lambda: ArrivalGate(quiet=DEBOUNCE_SECONDS, debounce=DEBOUNCE_SECONDS)
    )
    # Which mirror writes need a delivery work item (a burst's writes share one per pair).
    deliveries_due: Coalescer = field(default_factory=Coalescer)
    metrics: telemetry.Metrics = field(default_factory=telemetry.Metrics)
    # The operations log (inbound POSTs, outbound Graph calls), written in the background.
    oplog: TableOpLog | None = None
    # The change feed: its log (the events partitions' change rows), counts and queue.
    changes: ChangeLog | None = None
    # The iCalUId index, kept after each mirror write (services.icaluid_index).
    icaluids: TableIcalIndex | None = None
    # Webhook delivery of the feed: subscribers, pair cursors, dead letters; the signed sender.
    webhooks: WebhookStore | None = None
    sender: WebhookSender | None = None
    # The write API's records and its retry queue (services.writes); None: writes refused.
    writes: WriteStore | None = None
    write_queue: WriteQueue | None = None
    # The EWS page source, when a tenant is on Exchange Server (MAILBOX_PROVIDERS).
    ews: EwsSource | None = None
    ews_push: PushTable | None = None  # the EWS mailboxes' push subscriptions
    # Subscription writes paced per tenant across hosts (None: this process alone paces them).
    pacer: SharedPacer | None = None

    def now(self) -> datetime:
        return self.clock()


def build_secrets(settings: Settings, environ: dict[str, str] | None = None) -> SecretStore:
    """Key Vault with the managed identity in Azure; environment variables locally."""
    from shared.secrets import EnvSecrets

    if not settings.key_vault_url:
        return EnvSecrets(environ)
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    from shared.adapters.keyvault import KeyVaultSecrets

    credential = DefaultAzureCredential(
        managed_identity_client_id=settings.managed_identity_client_id
    )
    options: dict[str, Any] = {}
    if settings.ca_bundle:
        # Local simulator only: trust its CA, and accept its loopback challenge resource.
        options = {"connection_verify": settings.ca_bundle, "verify_challenge_resource": False}
    client = SecretClient(settings.key_vault_url, credential, **options)
    return KeyVaultSecrets(client, ttl=settings.secret_cache_seconds)


def build_services(
    settings: Settings,
    *,
    secrets: SecretStore | None = None,
    clock: Clock = utc_now,
    rng: random.Random | None = None,
    ensure: bool = True,
) -> Services:
    import httpx

    from shared.adapters.feed_tables import ChangeLog
    from shared.adapters.graph_httpx import GraphClient
    from shared.adapters.icaluid_tables import TableIcalIndex
    from shared.adapters.msal_tokens import MsalTokens
    from shared.adapters.oplog_tables import TableOpLog
    from shared.adapters.pacing_tables import PacingTable
    from shared.adapters.queues import SyncQueue, WriteQueue
    from shared.adapters.storage import StorageClients
    from shared.adapters.tables import TableState
    from shared.adapters.webhook_http import WebhookSender
    from shared.adapters.webhook_tables import WebhookStore
    from shared.adapters.write_tables import WriteStore
    from shared.credentials import build_client_credential
    from shared.services.write_budget import SharedPacer

    secrets = secrets if secrets is not None else build_secrets(settings)
    # Short storage timeouts and quick retries: the intake must answer Graph within 3 s, and a
    # worker that cannot reach storage is better retried by the queue than stuck in backoff.
    clients = StorageClients(
        settings.storage,
        retry_total=3,
        retry_backoff_factor=0.2,
        connection_timeout=3,
        read_timeout=15,
    )
    state = TableState(clients)
    queue = SyncQueue(clients)
    # Graph's callbacks: one quick retry and ~1 s per try, so that a slow storage account is
    # a 503 well inside Graph's 3 s (Graph retries 5xx) instead of a hang in backoff.
    intake_clients = StorageClients(
        settings.storage,
        retry_total=1,
        retry_backoff_factor=0.1,
        connection_timeout=1,
        read_timeout=1,
    )
    if ensure:
        state.ensure()
        queue.ensure()
    http = httpx.Client(
        verify=ssl.create_default_context(cafile=settings.ca_bundle)
        if settings.ca_bundle
        else True,
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        trust_env=not settings.ca_bundle,
    )
    # Its own clients: the background flush never competes with the intake's short budget.
    log_clients = StorageClients(
        settings.storage, retry_total=1, connection_timeout=3, read_timeout=10
    )
    oplog = TableOpLog(log_clients.table(LOG_TABLE))
    tokens = MsalTokens(
        settings,
        lambda: build_client_credential(settings, secrets),
        refresh=lambda: build_client_credential(settings, secrets, fresh=True),
        observe=oplog.record,  # Entra's token requests are in the operations log too
        clock=clock,
    )
    graph = GraphClient(http, settings.graph_base_url, tokens, clock=clock, observe=oplog.record)
    # Receivers get their own client: a short timeout, the system trust store plus the local
    # CA (a test receiver on loopback https), never the Graph connection pool.
    hooks_http = httpx.Client(
        verify=ssl.create_default_context(cafile=settings.ca_bundle)
        if settings.ca_bundle
        else True,
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        trust_env=not settings.ca_bundle,
    )
    redact.install()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Graph call is noise
    ews, ews_push = None, None
    if settings.ews_tenants:
        from shared.adapters.ews_exchangelib import EwsSource  # exchangelib itself loads later
        from shared.adapters.ews_push_tables import EWS_PUSH_TABLE, PushTable

        ews = EwsSource(secrets, ca_bundle=settings.ca_bundle)
        ews_push = PushTable(clients.table(EWS_PUSH_TABLE))
        if ensure:
            ews_push.ensure()
    return Services(
        settings=settings,
        state=state,
        queue=queue,
        graph=graph,
        tokens=tokens,
        secrets=secrets,
        clock=clock,
        rng=rng or random.Random(),  # noqa: S311 - jitter, not security
        intake_state=TableState(intake_clients),
        intake_queue=SyncQueue(intake_clients),
        oplog=oplog,
        changes=ChangeLog(clients),
        icaluids=TableIcalIndex(clients.table(ICALUIDS_TABLE)),
        webhooks=WebhookStore(clients),
        sender=WebhookSender(hooks_http),
        writes=WriteStore(clients),
        pacer=SharedPacer(PacingTable(clients.table(PACING_TABLE))),
        write_queue=WriteQueue(clients),
        ews=ews,
        ews_push=ews_push,
    )


INTAKE_THREADS = 8


@functools.cache
def intake_pool() -> ThreadPoolExecutor:
    """The executor of Graph's callbacks, apart from the host's pool that runs the sync worker
    and timers, so that a busy worker never delays an answer to Graph."""
    return ThreadPoolExecutor(max_workers=INTAKE_THREADS, thread_name_prefix="calsync-intake")


@functools.cache
def intake_send_pool() -> ThreadPoolExecutor:
    """Where one POST's queue messages are sent side by side (one per mailbox): a POST naming
    five mailboxes then costs one queue round trip, not five in a row. Apart from
    `intake_pool`, whose threads wait on these."""
    return ThreadPoolExecutor(max_workers=4 * INTAKE_THREADS, thread_name_prefix="calsync-send")


@functools.cache
def services() -> Services:
    """The process-wide services, built on first use from the environment."""
    offset_file = os.environ.get("DEV_CLOCK_OFFSET_FILE", "")
    clock: Clock = OffsetClock(offset_file) if offset_file else utc_now
    settings = Settings.from_env(os.environ)
    telemetry.configure(settings)  # Azure Monitor, once, before anything logs or measures
    return build_services(settings, clock=clock)
