"""One local stack (Azurite + simulator + a dev host over https) for the end-to-end tests; each
test enrols mailboxes of its own, so tests don't see each other's events."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from devhost.local.stack import Stack, local_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with local_stack() as running:
        yield running


@pytest.fixture(autouse=True)
def _calm_simulator(stack: Stack) -> Iterator[None]:
    """Each test starts with Graph behaving (no faults, no delivery knobs) and leaves it so."""
    defaults = {
        "duplicate_rate": 0.0,
        "reorder": False,
        "drop_rate": 0.0,
        "delivery_delay_ms": 0.0,
        "delta_replay_rate": 0.0,
        "fault_rate_503": 0.0,
        "fault_rate_504": 0.0,
    }
    stack.sim.control.knobs(**defaults)
    stack.sim.control.clear_faults()
    yield
    stack.sim.control.knobs(**defaults)
    stack.sim.control.clear_faults()
    # Webhook subscribers a test registered (schemathesis registers some) would receive every
    # later test's changes: none outlives its test.
    with contextlib.suppress(httpx.HTTPError), stack.admin() as api:
        for sub in api.get("/webhooks").json().get("value", []):
            api.delete(f"/webhooks/{sub['id']}")
