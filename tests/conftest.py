"""Shared fixtures: one Azurite for the whole test session (loopback, free ports, in memory).

Started through `devhost.azurite`, stopped (process group and all) when the session ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.azurite import run_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """The connection string of a private, in-memory Azurite running for this test session."""
    with run_azurite() as connection_string:
        yield connection_string
