"""The intake benchmark runs end to end at a tiny size (proves bench/intake.py works)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_intake_benchmark_smoke(tmp_path: Path) -> None:
    """Two seconds at 20 items/s against this tree: every POST answered 2xx, every mailbox
    named by them got its sync request, and the JSON report is written."""
    path = Path(__file__).parents[1] / "bench" / "intake.py"
    spec = importlib.util.spec_from_file_location("bench_intake", path)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "intake.json"
    rows = bench.run(
        [
            "--rates",
            "20",
            "--seconds",
            "2",
            "--mailboxes",
            "2",
            "--max-items",
            "5",
            "--json",
            str(out),
        ]
    )
    assert out.exists()
    (row,) = rows
    assert row["accepted_per_s"] > 0
    assert row["timeouts"] == 0
    assert row["non_2xx"] == 0
    assert row["mailboxes_missing_a_request"] == 0
