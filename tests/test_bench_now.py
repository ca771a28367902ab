"""The "now" benchmark runs end to end at a tiny size (proves bench/now.py works)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_now_benchmark_smoke(tmp_path: Path) -> None:
    """Two mailboxes, three requests of "now" and of the agenda: answers 200, repeats 304 (or a
    fresh 200), a JSON report with the machine."""
    path = Path(__file__).parents[1] / "bench" / "now.py"
    spec = importlib.util.spec_from_file_location("bench_now", path)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "now.json"
    result = bench.run(["--mailboxes", "2", "--events", "2", "--requests", "3", "--json", str(out)])
    assert result["mailboxes"] == 2
    assert result["answer_bytes"] > 0
    assert result["repeat_304"] >= 2
    assert result["agenda"]["repeat_304"] >= 2
    report = json.loads(out.read_text())
    assert report["result"] == result
    assert report["machine"]["cores"] >= 1
