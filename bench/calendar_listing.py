"""The cost of a secondary calendar's round when Graph refuses its calendarView delta (the
listing fallback, core.listing) beside the same calendar followed by delta.

    .venv/bin/python bench/calendar_listing.py [--events 300] [--changes 5] [--json out.json]

One local system (devhost/local/stack.py). For each mode (delta; listing, with the simulator's
`calendar_delta_refused` knob on) a fresh user gets a secondary calendar holding `--events`
single events, which is enrolled as `user:side` and synced. Then `--changes` times: one event
is created in that calendar (the control API, as a person in Outlook), and the time until its
row is in the mirror (polled every 50 ms through the admin API) and the Graph requests made
until 5 s after it (differences of the simulator's counters, Entra's and 401s left out) are
recorded; the medians are reported, with the requests by endpoint of the last change.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import median, table, write_json
from graph_cost import SETTLE, Meter


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=300, help="events in the secondary calendar")
    p.add_argument("--changes", type=int, default=5, help="single changes measured (median)")
    p.add_argument("--json", help="write the report here")
    return p.parse_args(argv)


def _slot(at: datetime, n: int) -> dict[str, Any]:
    start = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2 + n)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
    }


def _mode(stack: Any, name: str, events: int, changes: int) -> dict[str, Any]:
    import uuid

    sim = stack.sim.control
    sim.knobs(calendar_delta_refused=name == "listing")
    upn = f"bench-{name}-{uuid.uuid4().hex[:8]}@contoso.example"
    sim.seed(users=[{"tenant": stack.tenant_id, "upn": upn}])
    calendar_id = sim.add_calendar(upn, "Side")
    now = datetime.now(UTC) + timedelta(seconds=stack.offset)
    for n in range(events):
        sim.create_event(upn, {"subject": f"e{n}", **_slot(now, n % 2000)}, calendar=calendar_id)
    path = f"/mailboxes/{stack.tenant_id}/{upn}:side"
    with stack.admin() as api:
        made = api.put(path, json={"calendarName": "Side"})
        assert made.status_code == 201, made.text
        deadline = time.monotonic() + 300
        while not api.get(path).json()["status"]["lastSync"]:
            assert time.monotonic() < deadline, "the first sync did not finish"
            time.sleep(0.2)
        lags, costs, last = [], [], {}
        for i in range(changes):
            meter = Meter(stack)
            began = time.monotonic()
            made_id = sim.create_event(
                upn, {"subject": f"change {i}", **_slot(now, events + i)}, calendar=calendar_id
            )["id"]
            while made_id not in {e["event_id"] for e in api.get(path + "/events").json()["value"]}:
                assert time.monotonic() - began < 120, "the change never reached the mirror"
                time.sleep(0.05)
            lags.append(time.monotonic() - began)
            time.sleep(SETTLE)
            last = meter.delta()
            costs.append(last["graph_requests"])
        result = api.get(path).json()["status"]["lastSyncResult"]
    sim.knobs(calendar_delta_refused=False)
    return {
        "mode": name,
        "lag_s_median": round(median(lags), 3),
        "requests_median": median(costs),
        "by_endpoint_last": last.get("by_endpoint", {}),
        "last_sync_result": result,
    }


def main(argv: list[str] | None = None) -> int:
    from devhost.local.stack import local_stack

    args = _args(argv)
    with local_stack() as stack:
        rows = [_mode(stack, m, args.events, args.changes) for m in ("delta", "listing")]
    table(
        f"one change in a secondary calendar of {args.events} events (median of {args.changes})",
        ("mode", "to the mirror (s)", "Graph requests", "by endpoint (last)", "last round"),
        [
            (
                r["mode"],
                r["lag_s_median"],
                r["requests_median"],
                r["by_endpoint_last"],
                r["last_sync_result"],
            )
            for r in rows
        ],
    )
    write_json(args.json, "calendar_listing", vars(args), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
