"""Liveness/readiness: are the settings sane, is storage reachable, and can a token be had for
each tenant? Never shows a secret value: settings problems are reported by name, storage by account
name only, each tenant's token as ok or failed with the AADSTS code (or the project's error code),
never Entra's text. The endpoint is anonymous, so each tenant's token check is kept for
TOKEN_CHECK_SECONDS: probes at any rate ask Entra at most once a minute per tenant.

A failed token makes the report `degraded` but still 200: the instance must keep taking Graph's
notifications (they are queued, not lost), and restarting it would not fix a credential; storage
or settings problems are `unhealthy`, 503.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared import __version__
from shared.errors import CalsyncError, ConfigError, TokenError
from shared.settings import Settings

TOKEN_CHECK_SECONDS = 60.0


class TokenCheck:
    """Per tenant: can a token be had? Each answer is kept `ttl` seconds."""

    def __init__(
        self,
        token: Callable[[str], object],
        *,
        ttl: float = TOKEN_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token
        self._ttl = ttl
        self._clock = clock
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def report(self, tenant_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {tenant_id: self._check(tenant_id) for tenant_id in tenant_ids}

    def _check(self, tenant_id: str) -> dict[str, Any]:
        with self._lock:  # one check per tenant at a time: concurrent probes share its answer
            hit = self._answers.get(tenant_id)
            now = self._clock()
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
            answer: dict[str, Any] = {"ok": True}
            try:
                self._token(tenant_id)
            except TokenError as exc:
                answer = {"ok": False}
                answer |= {"aadsts": exc.aadsts} if exc.aadsts else {"error": exc.code}
            except CalsyncError as exc:  # the secret could not be read, say
                answer = {"ok": False, "error": exc.code}
            self._answers[tenant_id] = (now, answer)
            return answer


@functools.cache
def _token_check(settings: Settings) -> TokenCheck:
    """The process's token check for these settings (its own MSAL apps, built on first use)."""
    from shared.adapters.msal_tokens import MsalTokens
    from shared.compose import build_secrets
    from shared.credentials import build_client_credential

    secrets = build_secrets(settings)
    tokens = MsalTokens(
        settings,
        lambda: build_client_credential(settings, secrets),
        refresh=lambda: build_client_credential(settings, secrets, fresh=True),
    )
    return TokenCheck(tokens.token)


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    body: dict[str, Any] = field(default_factory=dict)


def run_health(
    environ: Mapping[str, str], *, token_check: Callable[[Settings], TokenCheck] = _token_check
) -> HealthReport:
    """Check settings, then tables and queues with one cheap call each (short timeouts), then a
    token per tenant (cached)."""
    body: dict[str, Any] = {"service": "calsync", "version": __version__}
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        body |= {"status": "unhealthy", "settings": {"ok": False, "problems": exc.problems}}
        return HealthReport(False, body)
    body["settings"] = {
        "ok": True,
        "tenants": len(settings.tenant_ids),
        "graph_base_url": settings.graph_base_url,
        "authority_host": settings.authority_host,
        "key_vault": bool(settings.key_vault_url),
        "credential_type": settings.credential_type,
        "webhooks": bool(settings.public_base_url),
        "ews_tenants": len(settings.ews_tenants),
    }
    storage = _check_storage(settings)
    body["storage"] = storage
    ok = storage["tables"] == "ok" and storage["queues"] == "ok"
    if not ok:
        body["status"] = "unhealthy"
        return HealthReport(False, body)
    # Entra tokens for the Graph tenants only: an EWS tenant's server is checked by the test
    # connection (POST /api/diagnostics/test-connection), not by an anonymous probe.
    graph_tenants = [t for t in settings.tenant_ids if settings.ews_for(t) is None]
    tokens = token_check(settings).report(graph_tenants)
    body["credentials"] = tokens
    tokens_ok = all(t["ok"] for t in tokens.values())
    expiry = _credential_expiry(settings)
    if expiry is not None:
        body["credentialExpiry"] = expiry
    subscribers = _webhook_subscribers(settings)
    if subscribers is not None:
        body["webhookSubscribers"] = subscribers
    expiring = expiry is not None and expiry["status"] in ("warning", "expired")
    body["status"] = "healthy" if tokens_ok and not expiring else "degraded"
    return HealthReport(True, body)


def _check_storage(settings: Settings) -> dict[str, Any]:
    from azure.core.exceptions import AzureError

    from shared.adapters.storage import StorageClients

    started = time.perf_counter()
    result: dict[str, Any] = {"where": settings.storage.describe()}
    clients = StorageClients(settings.storage, retry_total=0, connection_timeout=3, read_timeout=5)
    try:
        next(iter(clients.tables.list_tables(results_per_page=1).by_page()), None)
        result["tables"] = "ok"
    except AzureError as exc:
        result["tables"] = f"unreachable ({type(exc).__name__})"
    try:
        next(iter(clients.queues.list_queues(results_per_page=1).by_page()), None)
        result["queues"] = "ok"
    except AzureError as exc:
        result["queues"] = f"unreachable ({type(exc).__name__})"
    result["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _webhook_subscribers(settings: Settings) -> dict[str, int] | None:
    """How many change-feed subscribers there are, and how many are failing or disabled
    (counts only: the probe is anonymous). A receiver's failure is not the instance's, so it
    never makes the report degraded; None when the table cannot be read."""
    from azure.core.exceptions import AzureError

    from shared.adapters.storage import StorageClients
    from shared.adapters.webhook_tables import SUBSCRIBER_PARTITION
    from shared.names import WEBHOOKS_TABLE

    clients = StorageClients(settings.storage, retry_total=0, connection_timeout=3, read_timeout=5)
    counts = {"total": 0, "failing": 0, "disabled": 0}
    try:
        rows = clients.table(WEBHOOKS_TABLE).query_entities(
            "PartitionKey eq @p",
            parameters={"p": SUBSCRIBER_PARTITION},
            select=["enabled", "failing"],
        )
        for row in rows:
            counts["total"] += 1
            if not row.get("enabled", True):
                counts["disabled"] += 1
            elif row.get("failing"):
                counts["failing"] += 1
    except AzureError:  # not created yet, or unreachable: the storage check says which
        return None
    return counts


def _credential_expiry(settings: Settings) -> dict[str, Any] | None:
    """The expiry watch's status row (None: never checked yet, or unreadable)."""
    from azure.core.exceptions import AzureError

    from shared.adapters.storage import StorageClients
    from shared.core.expiry import parse_status
    from shared.core.oplog import STATUS_PARTITION, credential_row
    from shared.names import LOG_TABLE

    clients = StorageClients(settings.storage, retry_total=0, connection_timeout=3, read_timeout=5)
    try:
        row = clients.table(LOG_TABLE).get_entity(
            STATUS_PARTITION, credential_row(settings.client_id)
        )
    except AzureError:  # absent (never checked) or unreachable: the storage check says which
        return None
    return parse_status(dict(row))
