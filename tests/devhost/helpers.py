"""Polling with a deadline for the dev host's tests (never a bare sleep as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call `probe` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(interval)


def table_rows(client: TableClient, query: str) -> list[dict[str, Any]]:
    """Rows matching `query`, or none while the table does not exist yet."""
    try:
        return [dict(r) for r in client.query_entities(query)]
    except ResourceNotFoundError:
        return []
