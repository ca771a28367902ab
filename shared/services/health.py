"""Liveness/readiness: are the settings sane and is storage reachable? Never shows a secret value:
settings problems are reported by name, storage by account name only."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared import __version__
from shared.errors import ConfigError
from shared.settings import Settings


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    body: dict[str, Any] = field(default_factory=dict)


def run_health(environ: Mapping[str, str]) -> HealthReport:
    """Check settings, then tables and queues with one cheap call each (short timeouts)."""
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
    }
    storage = _check_storage(settings)
    body["storage"] = storage
    ok = storage["tables"] == "ok" and storage["queues"] == "ok"
    body["status"] = "healthy" if ok else "unhealthy"
    return HealthReport(ok, body)


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
