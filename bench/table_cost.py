"""Table requests per change: a burst of 50 changes to one mailbox, notified within 1 s, counted
at the I/O boundary (a counting proxy in front of Azurite's Table endpoint, bench/tablecount.py).

    .venv/bin/python bench/table_cost.py [--changes 50] [--runs 3] [--json out.json]

One local system with one dev host whose Table endpoint is the proxy; one mailbox enrolled and
synced. Per run: the requests of an idle stretch as long as the burst's are measured first (the
host's own timers: the poll every 30 s, the buffered operations log), then `--changes` events
are created through the simulator's control API as fast as it takes them (Graph notifies each),
and counted until every row is in the mirror and 5 s more (the debounce, the relay). Reported:
Table requests (one batch transaction is one request) per change, by table and kind, with the
idle stretch's subtracted, and the `log` table (the operations log, telemetry) shown apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import burst_created, enrol_and_sync, median, seed_users, table, write_json
from tablecount import TableCounter, diff

SETTLE = 5.0


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--changes", type=int, default=50)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", help="write the report here")
    return p.parse_args(argv)


def burst(stack: Any, counter: TableCounter, user: tuple[str, str], count: int) -> dict[str, Any]:
    """One burst of `count` creations in one mailbox: its Table requests (idle subtracted)."""
    before = counter.snapshot()
    began = time.monotonic()
    _, spread = burst_created(stack, user, count, "burst")  # reads past the proxy: not counted
    time.sleep(SETTLE)
    elapsed = time.monotonic() - began
    used = diff(counter.snapshot(), before)
    idle_before = counter.snapshot()
    time.sleep(elapsed)
    idle = diff(counter.snapshot(), idle_before)
    return {
        "created_within_s": round(spread, 2),
        "elapsed_s": round(elapsed, 1),
        "burst": used,
        "idle": idle,
    }


def per_change(sample: dict[str, Any], count: int) -> dict[str, float]:
    """Requests per change: all, without the operations log, and of the log table."""
    used, idle = sample["burst"], sample["idle"]
    log_used = used["by_table"].get("log", 0) - idle["by_table"].get("log", 0)
    total = used["total"] - idle["total"]
    return {
        "all": round(total / count, 3),
        "without_log": round((total - log_used) / count, 3),
        "log": round(log_used / count, 3),
    }


def run(argv: list[str] | None = None) -> dict[str, Any]:
    from devhost.local.stack import local_stack

    args = _args(argv)
    samples: list[dict[str, Any]] = []
    with local_stack(hosts=0) as stack, TableCounter(stack.storage) as counter:
        upstream = stack.storage
        stack.env["AzureWebJobsStorage"] = counter.connection_string
        stack.start_host()
        stack.storage = upstream  # the bench's own reads bypass the proxy
        users = seed_users(stack, "tables", 1)
        enrol_and_sync(stack, [u for u, _ in users], timeout=300)
        time.sleep(SETTLE)
        for _ in range(args.runs):
            samples.append(burst(stack, counter, users[0], args.changes))
    figures = [per_change(s, args.changes) for s in samples]
    med: dict[str, float] = {k: median([f[k] for f in figures]) for k in figures[0]}
    result = {
        "per_change_median": med,
        "per_change_runs": figures,
        "samples": samples,
    }
    table(
        f"Table requests per change, bursts of {args.changes} to one mailbox ({args.runs} runs)",
        ["what", "median", "runs"],
        [
            ["all Table requests", med["all"], ", ".join(str(f["all"]) for f in figures)],
            [
                "  without the operations log",
                med["without_log"],
                ", ".join(str(f["without_log"]) for f in figures),
            ],
            ["  the operations log (`log`)", med["log"], ", ".join(str(f["log"]) for f in figures)],
            ["created within (s)", median([s["created_within_s"] for s in samples]), ""],
        ],
    )
    last = samples[-1]["burst"]
    print(f"last burst by table: {last['by_table']}\nby kind: {last['by_kind']}")
    return write_json(args.json, "table_cost", vars(args), result)


if __name__ == "__main__":
    run()
