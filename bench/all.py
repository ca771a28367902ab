"""Every benchmark at a small size, one after another: each prints its table and writes its JSON.

    .venv/bin/python bench/all.py [--out bench-results] [--only NAME,NAME]

The sizes here prove the whole set runs on a fresh clone in a few minutes and give figures of
the right order; docs/benchmarks.md quotes the full sizes, each with its own command. A
benchmark that fails is reported and the others still run; the exit status is 1 if any did.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import table

SMALL: dict[str, list[str]] = {
    "intake": ["--rates", "100,300,500", "--seconds", "2", "--mailboxes", "5"],
    "e2e_latency": ["--mailboxes", "20", "--changes", "40", "--rate", "4"],
    "graph_cost": ["--mailboxes", "3", "--changes", "3", "--days", "1"],
    "initial_sync": ["--shapes", "10x100,2x500"],
    "renewal_scale": ["--mailboxes", "300", "--days", "7", "--step", "3600"],
    "now": ["--mailboxes", "20", "--requests", "20"],
    "cold_start": ["--imports", "5", "--hosts", "3"],
    "ews_writes": ["--writes", "10"],
    "table_cost": ["--changes", "50", "--runs", "1"],
    "growth": ["--sizes", "1,3", "--changes", "2", "--png", "bench-results/growth.png"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="bench-results", help="directory for the JSON reports")
    p.add_argument("--only", help="comma-separated names (default: all): " + ", ".join(SMALL))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(SMALL)
    summary: list[list[Any]] = []
    for name in names:
        print(f"\n== {name} {' '.join(SMALL[name])}", flush=True)
        began = time.monotonic()
        try:
            module: Any = importlib.import_module(name)
            module.run([*SMALL[name], "--json", str(out / f"{name}.json")])
            status = "ok"
        except (Exception, SystemExit) as exc:  # one failure must not hide the others' figures
            traceback.print_exc()
            status = f"FAILED: {exc}"
        summary.append([name, round(time.monotonic() - began, 1), status])
    print()
    table(f"bench/all.py (JSON in {out}/)", ["benchmark", "seconds", "status"], summary)
    return 0 if all(row[2] == "ok" for row in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
