"""Graph cost from the simulator's counters: requests per change, per burst, and per idle
mailbox per day, side by side with the naive webhook design and with the 60 s poller.

    .venv/bin/python bench/graph_cost.py [--mailboxes 10] [--changes 5] [--days 7]
                                         [--json out.json]

One local system (devhost/local/stack.py); `--mailboxes` mailboxes seeded with 3 events each,
enrolled and synced. Every figure is a difference of the simulator's request counters
(`GET /_sim/counters`: Graph requests by endpoint and status; Entra's token requests are not
Graph requests and are not counted). Measured:

- one change: an event created in one mailbox, then wait for its row in the mirror and 5 s
  more (so a late or deferred round is counted too); `--changes` times, the median.
- a burst: 50 events created in one mailbox as fast as the control API takes them (the
  elapsed time is reported: it must be under 1 s), then wait for all 50 rows and 5 s more.
- idle: `--days` virtual days with no change, in 15-minute steps as the host's timers run
  (the clock moved with `POST /_sim/clock/advance`, the app's clock with it): each step runs
  `renew_subscriptions` and `poll_mailboxes`; each virtual midnight runs `daily_roll` and waits
  for the rounds it queued. Requests answered 401 are left out: they come from the virtual
  clock expiring the app's cached token early (the app's token cache runs on the wall clock).
- the naive webhook design GETs the event once per notification item: its cost per change is
  the number of items the simulator delivered for it (its counters), its idle cost the same
  renewals as calsync's.
- the 60 s poller (bench/pollers.py) lists each mailbox 60 times (a virtual hour): its cost per
  day is 24 times that, and it is the same with or without changes.
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
    burst_created,
    enrol_and_sync,
    median,
    seed_users,
    table,
    wait_sync_queue_empty,
    write_json,
)
from pollers import Poller

PER_TENANT = (  # endpoints the timers call once per tenant, not per mailbox
    "subscriptions.list",  # the renewal timer's orphan check, every 15 min
    "applications.get",  # the daily credential expiry watch
)
SETTLE = 5.0  # seconds after the last row: the debounce (3 s) plus a margin


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mailboxes", type=int, default=10)
    p.add_argument("--changes", type=int, default=5, help="single changes measured (median)")
    p.add_argument("--days", type=float, default=7.0, help="virtual idle days")
    p.add_argument("--json", help="write the report here")
    return p.parse_args(argv)


class Meter:
    """Graph requests between two snapshots of the simulator's counters."""

    def __init__(self, stack: Any) -> None:
        self.sim = stack.sim.control
        self.before = self.sim.counters()

    def delta(self) -> dict[str, Any]:
        after = self.sim.counters()
        by_status = _diff(
            after["requests_by_endpoint_status"], self.before["requests_by_endpoint_status"]
        )
        graph = {
            k: v
            for k, v in by_status.items()
            if not k.endswith(" 401") and not k.startswith("entra.")
        }
        by_endpoint: dict[str, int] = {}
        for key, n in graph.items():
            endpoint = key.rsplit(" ", 1)[0]
            by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + n
        notes = _diff(after["notifications"], self.before["notifications"])
        return {
            "graph_requests": sum(by_endpoint.values()),
            "by_endpoint": by_endpoint,
            "unauthorized_401": sum(v for k, v in by_status.items() if k.endswith(" 401")),
            "throttled_429": sum(v for k, v in by_status.items() if k.endswith(" 429")),
            "items_delivered": notes.get("change_items_delivered", 0),
        }


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _changes(stack: Any, user: tuple[str, str], count: int) -> tuple[dict[str, Any], float]:
    """Create `count` events in one mailbox at once; wait for the mirror; the Graph cost."""
    meter = Meter(stack)
    _, spread = burst_created(stack, user, count, "cost")
    time.sleep(SETTLE)
    return meter.delta(), spread


def _wait_rounds(stack: Any) -> None:
    """Until the sync queue is empty (the daily roll's requests ran: most are slides of the
    user's window, which make no Graph request and leave lastSync as it was)."""
    time.sleep(1.0)
    wait_sync_queue_empty(stack, 300, "the daily roll's rounds", poll=0.2)
    time.sleep(1.0)  # the last message is deleted only after its round


def _idle(stack: Any, days: float) -> dict[str, Any]:
    meter = Meter(stack)
    step = 900.0
    for n in range(1, int(days * 96) + 1):
        stack.advance(step)
        stack.run_function("renew_subscriptions")
        stack.run_function("poll_mailboxes")
        if n % 96 == 0:
            stack.run_function("daily_roll")
            _wait_rounds(stack)
    time.sleep(SETTLE)
    return meter.delta()


def _poller_day(stack: Any, users: list[tuple[str, str]]) -> float:
    """Graph requests per mailbox per day of the 60 s poller (a virtual hour, times 24)."""
    from graphsim.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
    from graphsim.testing import token_for

    start = datetime.now(UTC) + timedelta(seconds=stack.offset)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    window = (
        (start - timedelta(weeks=4)).strftime(fmt),
        (start + timedelta(weeks=52)).strftime(fmt),
    )

    def token() -> str:
        return token_for(stack.sim, stack.tenant_id, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)

    with Poller(60, stack.sim.graph_base_url, token, stack.sim.ssl_context(), window) as poller:
        for _ in range(60):
            for _, uid in users:
                poller.poll(uid)
        return 24 * poller.requests / len(users)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    from devhost.local.stack import local_stack

    args = _args(argv)
    with local_stack() as stack:
        users = seed_users(stack, "cost", args.mailboxes)
        start = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT09:00:00Z")
        for upn, _ in users:
            stack.sim.control.bulk_events(upn, 3, start)
        enrol_and_sync(stack, [u for u, _ in users], timeout=600)
        time.sleep(SETTLE)
        singles = [_changes(stack, users[n % len(users)], 1)[0] for n in range(args.changes)]
        burst, spread = _changes(stack, users[0], 50)
        idle = _idle(stack, args.days)
        poller_day = _poller_day(stack, users[: min(len(users), 10)])
    # The renewal timer's orphan check lists the tenant's subscriptions: a cost per tenant.
    tenant_day = sum(v for k, v in idle["by_endpoint"].items() if k in PER_TENANT) / args.days
    per_day = (idle["graph_requests"] - tenant_day * args.days) / args.mailboxes / args.days
    per_kind = {
        k: round(v / args.mailboxes / args.days, 3)
        for k, v in idle["by_endpoint"].items()
        if k not in PER_TENANT
    }
    renewals_per_day = (
        idle["by_endpoint"].get("subscriptions.update", 0) / args.mailboxes / args.days
    )
    result = {
        "change": {
            "calsync": median([s["graph_requests"] for s in singles]),
            "calsync_delta_requests": median(
                [s["by_endpoint"].get("calendarView.delta", 0) for s in singles]
            ),
            "naive": median([s["items_delivered"] for s in singles]),
            "samples": singles,
        },
        "burst_50": {
            "created_within_s": round(spread, 2),
            "calsync": burst["graph_requests"],
            "calsync_delta_requests": burst["by_endpoint"].get("calendarView.delta", 0),
            "naive": burst["items_delivered"],
            "detail": burst,
        },
        "idle_per_mailbox_day": {
            "calsync": per_day,
            "naive": renewals_per_day,
            "poller_60s": poller_day,
            "calsync_per_tenant_day": tenant_day,
            "calsync_by_endpoint": per_kind,
            "detail": idle,
        },
    }
    ch, bu = result["change"], result["burst_50"]
    table(
        f"Graph requests ({args.mailboxes} mailboxes; idle over {args.days:g} virtual days)",
        ["what", "calsync", "naive webhook (GET per item)", "60 s poller"],
        [
            ["one change", ch["calsync"], ch["naive"], "n/a (polls regardless)"],
            [f"burst of 50 in {spread:.2f} s", bu["calsync"], bu["naive"], "n/a"],
            ["  of which delta requests", bu["calsync_delta_requests"], "", ""],
            [
                "idle mailbox, per day",
                round(per_day, 2),
                round(renewals_per_day, 2),
                round(poller_day),
            ],
        ],
    )
    print(f"idle mailbox, per day, by endpoint: {per_kind}")
    print(
        f"idle requests by endpoint: {idle['by_endpoint']} "
        f"(401s left out: {idle['unauthorized_401']}, 429s: {idle['throttled_429']})"
    )
    return write_json(args.json, "graph_cost", vars(args), result)


if __name__ == "__main__":
    run()
