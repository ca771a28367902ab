"""The storage Bicep provisions exactly the tables and queues the app names (shared/names.py)."""

from __future__ import annotations

import re

from bicep_tools import INFRA

from shared.names import QUEUES, TABLES

STORAGE = INFRA / "app" / "storage.bicep"


def _array_default(name: str) -> list[str]:
    text = STORAGE.read_text(encoding="utf-8")
    found = re.search(rf"^param {name} array = \[(.*?)^\]", text, re.S | re.M)
    assert found, f"storage.bicep declares no `param {name} array = [...]`"
    return re.findall(r"'([^']+)'", found.group(1))


def test_bicep_tables_are_the_apps_tables() -> None:
    """tableNames' default lists every table of names.TABLES (the write records too), in order."""
    assert _array_default("tableNames") == list(TABLES)


def test_bicep_queues_are_the_apps_queues() -> None:
    """queueNames' default lists every queue of names.QUEUES (queued writes too), in order."""
    assert _array_default("queueNames") == list(QUEUES)
