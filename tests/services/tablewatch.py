"""Table requests watched at the I/O boundary: bench/tablecount.py's counting proxy in front of
Azurite, for tests that pin how many requests a step makes, or that two reads run side by side."""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from pathlib import Path
from typing import Any

_PATH = Path(__file__).parents[2] / "bench" / "tablecount.py"
_spec = importlib.util.spec_from_file_location("bench_tablecount", _PATH)
assert _spec is not None
assert _spec.loader is not None
tablecount = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bench_tablecount", tablecount)
_spec.loader.exec_module(tablecount)
TableCounter: Any = tablecount.TableCounter
diff = tablecount.diff

_TABLE = re.compile(r"^/[^/]+/([A-Za-z][A-Za-z0-9]*)(?:\(|$|\?)")


class ReadsMeet(TableCounter):  # type: ignore[misc]
    """The counting proxy that, once armed with some tables, holds the first query of each of
    them until all of them have arrived: `met` says whether they were in flight together (a
    read that runs only after another one has answered never meets it; the wait then gives up
    after `patience` seconds)."""

    def __init__(self, connection_string: str, patience: float = 5.0) -> None:
        super().__init__(connection_string)
        self.patience = patience
        self.waiting: set[str] = set()
        self.barrier: threading.Barrier | None = None
        self.met: bool | None = None

    def arm(self, *tables: str) -> None:
        self.waiting, self.met = set(tables), None
        self.barrier = threading.Barrier(len(tables))

    def count(self, method: str, path: str, body: bytes) -> None:
        super().count(method, path, body)
        match = _TABLE.match(path)
        table = match.group(1) if match else ""
        barrier = self.barrier
        with self.lock:
            held = method == "GET" and barrier is not None and table in self.waiting
            if held:
                self.waiting.discard(table)
        if not held or barrier is None:
            return
        try:
            barrier.wait(timeout=self.patience)
            met = True
        except threading.BrokenBarrierError:
            met = False
        with self.lock:
            self.met = met if self.met is None else self.met and met
