"""The benchmarks added for issue 13 run end to end at a tiny size (proves bench/*.py work; the
figures themselves are not checked against targets: benchmarks are not timed tests)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BENCH = Path(__file__).parents[1] / "bench"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the benchmarks import benchlib and pollers from there
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(path: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["benchmark"] == name
    assert data["machine"]["cores"] >= 1
    return data


def test_all_names_a_runnable_module_per_benchmark() -> None:
    """bench/all.py names only modules of bench/ that have a run(argv)."""
    suite = load("all")
    for name in suite.SMALL:
        assert callable(getattr(load(name), "run", None)), name


def test_e2e_latency_smoke(tmp_path: Path) -> None:
    """Two mailboxes, three changes: calsync's changes all reach the mirror and the signed
    webhook, the 60 s poller sees every change later than both, and the JSON report is
    written."""
    out = tmp_path / "e2e.json"
    load("e2e_latency").run(
        ["--mailboxes", "2", "--changes", "3", "--rate", "5", "--pollers", "60", "--json", str(out)]
    )
    (row,) = report(out, "e2e_latency")["result"]
    assert 0 < row["calsync"]["p50_s"] < row["poller_60s"]["p50_s"]
    assert 0 < row["webhook"]["p50_s"] < row["poller_60s"]["p50_s"]


def test_graph_cost_smoke(tmp_path: Path) -> None:
    """A change and a burst of 50 cost calsync fewer Graph requests than the naive design."""
    out = tmp_path / "cost.json"
    load("graph_cost").run(
        ["--mailboxes", "2", "--changes", "1", "--days", "0.25", "--json", str(out)]
    )
    result = report(out, "graph_cost")["result"]
    assert result["burst_50"]["calsync_delta_requests"] >= 1
    assert result["burst_50"]["calsync"] < result["burst_50"]["naive"]
    assert result["idle_per_mailbox_day"]["poller_60s"] >= 1440


def test_initial_sync_smoke(tmp_path: Path) -> None:
    """Two mailboxes of 50 events: httpx, msgraph-sdk and calsync each see all 100 events."""
    out = tmp_path / "sync.json"
    load("initial_sync").run(["--shapes", "2x50", "--json", str(out)])
    (shape,) = report(out, "initial_sync")["result"]
    assert set(shape["clients"]) == {"httpx", "msgraph-sdk", "calsync"}
    assert all(c["all_events"] for c in shape["clients"].values())


def test_renewal_scale_smoke(tmp_path: Path) -> None:
    """Twenty mailboxes over a virtual week in 6 h steps: none expires, no 429, all live."""
    out = tmp_path / "renew.json"
    load("renewal_scale").run(
        ["--mailboxes", "20", "--days", "7", "--step", "21600", "--json", str(out)]
    )
    result = report(out, "renewal_scale")["result"]
    assert result["subscriptions_expired"] == 0
    assert result["throttled_429"] == 0
    assert result["max_writes_per_20s"] <= 500
    assert result["live_at_end"] == 20


def test_renewal_storm_on_seeded_subscriptions_smoke(tmp_path: Path) -> None:
    """Twenty seeded mailboxes on 2 hosts, then all 20 removed at once: the app's lifecycle
    checks pass the seeded clientState and its workers recreate every one, without a 429."""
    out = tmp_path / "storm.json"
    args = "--mailboxes 20 --hosts 2 --days 1 --step 21600 --seed direct --storm"
    load("renewal_scale").run([*args.split(), "--json", str(out)])
    result = report(out, "renewal_scale")["result"]
    assert result["subscriptions_expired"] == 0
    assert result["list_throttled_429"] == 0
    assert result["storm"]["removed"] == 20
    assert result["storm"]["live_after"] == 20
    assert result["storm"]["throttled_429"] == 0
    assert result["not_subscribed_at_end"] == 0


def test_cold_start_smoke(tmp_path: Path) -> None:
    """One import and one new host answering its first notification, reported in JSON."""
    out = tmp_path / "cold.json"
    load("cold_start").run(["--imports", "1", "--hosts", "1", "--json", str(out)])
    result = report(out, "cold_start")["result"]
    assert result["first_notification_s"]["runs"] == 1
    assert result["import_ms"]["p50"] > 0


def test_ews_writes_smoke(tmp_path: Path) -> None:
    """Two writes of each kind to the EWS simulator are done, each create costing one
    CreateItem, and the JSON report is written."""
    out = tmp_path / "ews.json"
    load("ews_writes").run(["--writes", "2", "--json", str(out)])
    result = report(out, "ews_writes")["result"]
    assert result["create"]["n"] == 2
    assert result["create"]["ews_calls"]["CreateItem"] == 1
    assert result["occurrence edit"]["ews_calls"]["UpdateItem"] == 1


def test_table_cost_smoke(tmp_path: Path) -> None:
    """A burst of 5 changes is counted at the Table endpoint's proxy: some requests per change,
    the operations log apart, and the JSON report is written."""
    out = tmp_path / "tables.json"
    load("table_cost").run(["--changes", "5", "--runs", "1", "--json", str(out)])
    result = report(out, "table_cost")["result"]
    assert result["per_change_median"]["all"] > 0
    assert result["samples"][0]["burst"]["by_table"].get("events", 0) > 0


def test_growth_smoke(tmp_path: Path) -> None:
    """One mailbox: Table and Graph requests per change and per idle hour, and the plot."""
    out, png = tmp_path / "growth.json", tmp_path / "growth.png"
    load("growth").run(["--sizes", "1", "--changes", "1", "--png", str(png), "--json", str(out)])
    (row,) = report(out, "growth")["result"]
    assert row["per_change"]["graph_requests"] >= 1
    assert row["idle_hour"]["table_requests"] > 0
    assert png.stat().st_size > 1000
