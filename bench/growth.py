"""Growth: Table transactions and Graph requests per change and per idle hour, for 1 to 1,000
mailboxes, plotted.

    .venv/bin/python bench/growth.py [--sizes 1,10,100,1000] [--changes 10]
                                     [--png docs/growth.png] [--json out.json]

Per size, a fresh local system with one dev host whose Table endpoint is a counting proxy
(bench/tablecount.py: every Table request, a batch transaction counting once) and the
simulator's request counters (Graph requests; Entra's token requests and the 401s the virtual
clock causes left out). The mailboxes (empty calendars) are enrolled through the admin API.

- per change: `--changes` events created one at a time, each in another mailbox, each waited
  for in the mirror and 5 s more; the requests of an idle stretch as long are subtracted.
- per idle hour: one virtual hour with no change, the timers run as the host runs them
  (`poll_mailboxes` every 30 s, `renew_subscriptions` every 15 min) on the virtual clock; per
  mailbox (the timers' per-tenant calls, such as the subscription list, divided by the
  mailboxes too: that is how they grow).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    mirror_state,
    seed_users,
    table,
    wait_mirrored,
    wait_sync_queue_empty,
    write_json,
)
from tablecount import TableCounter, diff

SETTLE = 5.0


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1,10,100,1000", help="mailbox counts, comma-separated")
    p.add_argument("--changes", type=int, default=10, help="changes measured per size")
    p.add_argument("--png", default="docs/growth.png", help="the plot ('' for none)")
    p.add_argument("--json", help="write the report here")
    return p.parse_args(argv)


def _graph(stack: Any) -> int:
    counts: dict[str, int] = stack.sim.control.counters()["requests_by_endpoint_status"]
    return sum(
        n for k, n in counts.items() if not k.startswith("entra.") and not k.endswith(" 401")
    )


def _enrol(stack: Any, upns: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    clients = [stack.admin() for _ in range(8)]

    def put(n: int) -> None:
        for attempt in range(5):
            answer = clients[n % 8].put(f"/mailboxes/{stack.tenant_id}/{upns[n]}", json={})
            if answer.status_code != 503:
                break
            time.sleep(1.0 + attempt)
        if answer.status_code not in (200, 201):
            raise SystemExit(f"enrolling {upns[n]}: {answer.status_code} {answer.text}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(len(upns))))
    for c in clients:
        c.close()


def _quiet(stack: Any, seconds: float = 60.0) -> None:
    """Until the sync queue is empty (the enrolments' first rounds ran)."""
    wait_sync_queue_empty(stack, 600, "the sync queue's rounds")
    time.sleep(min(seconds, SETTLE))


def _per_change(
    stack: Any, counter: TableCounter, users: list[tuple[str, str]], count: int
) -> dict[str, float]:
    state = mirror_state(stack)
    tables = graph = 0.0
    for n in range(count):
        upn, uid = users[n % len(users)]
        now = datetime.now(UTC) + timedelta(seconds=stack.offset)
        start = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=1, hours=n % 8)
        fmt = "%Y-%m-%dT%H:%M:%S"
        body = {
            "subject": f"growth {n}",
            "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
        }
        t0, g0, began = counter.snapshot(), _graph(stack), time.monotonic()
        event_id = stack.sim.control.create_event(upn, body)["id"]
        wait_mirrored(stack, state, uid, [event_id], 60)  # past the proxy: not counted
        time.sleep(SETTLE)
        used, g_used = diff(counter.snapshot(), t0)["total"], _graph(stack) - g0
        elapsed = time.monotonic() - began
        t1, g1 = counter.snapshot(), _graph(stack)
        time.sleep(elapsed)  # the same stretch idle: the host's own timers
        tables += used - diff(counter.snapshot(), t1)["total"]
        graph += g_used - (_graph(stack) - g1)
    return {"table_requests": tables / count, "graph_requests": graph / count}


def _idle_hour(stack: Any, counter: TableCounter, mailboxes: int) -> dict[str, float]:
    t0, g0 = counter.snapshot(), _graph(stack)
    for step in range(1, 121):  # 120 x 30 s
        stack.advance(30)
        stack.run_function("poll_mailboxes")
        if step % 30 == 0:
            stack.run_function("renew_subscriptions")
    used = diff(counter.snapshot(), t0)
    graph = _graph(stack) - g0
    return {
        "table_requests": used["total"] / mailboxes,
        "graph_requests": graph / mailboxes,
        "table_requests_total": used["total"],
        "graph_requests_total": graph,
    }


def measure(size: int, changes: int) -> dict[str, Any]:
    """One size on a fresh local system."""
    from devhost.local.stack import local_stack

    with local_stack(hosts=0) as stack, TableCounter(stack.storage) as counter:
        upstream = stack.storage
        stack.env["AzureWebJobsStorage"] = counter.connection_string
        stack.start_host()
        stack.storage = upstream
        users = seed_users(stack, "growth", size)
        began = time.monotonic()
        _enrol(stack, [u for u, _ in users])
        _quiet(stack)
        enrol_s = time.monotonic() - began
        change = _per_change(stack, counter, users, changes)
        idle = _idle_hour(stack, counter, size)
    return {
        "mailboxes": size,
        "enrol_s": round(enrol_s, 1),
        "per_change": change,
        "idle_hour": idle,
    }


def plot(rows: list[dict[str, Any]], path: str) -> None:
    """Two panels: per change, and per idle hour per mailbox; log-scaled mailbox axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["mailboxes"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, part, title in (
        (left, "per_change", "per change"),
        (right, "idle_hour", "per idle hour, per mailbox"),
    ):
        ax.plot(sizes, [r[part]["table_requests"] for r in rows], "o-", label="Table requests")
        ax.plot(sizes, [r[part]["graph_requests"] for r in rows], "s-", label="Graph requests")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("mailboxes")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("calsync growth (bench/growth.py)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _args(argv)
    rows = [measure(int(s), args.changes) for s in args.sizes.split(",")]
    table(
        "growth: Table transactions and Graph requests",
        [
            "mailboxes",
            "per change: Table",
            "Graph",
            "per idle hour per mailbox: Table",
            "Graph",
            "enrolment s",
        ],
        [
            [
                r["mailboxes"],
                round(r["per_change"]["table_requests"], 2),
                round(r["per_change"]["graph_requests"], 2),
                round(r["idle_hour"]["table_requests"], 2),
                round(r["idle_hour"]["graph_requests"], 3),
                r["enrol_s"],
            ]
            for r in rows
        ],
    )
    if args.png:
        plot(rows, args.png)
        print(f"plot: {args.png}")
    return write_json(args.json, "growth", vars(args), rows)


if __name__ == "__main__":
    run()
