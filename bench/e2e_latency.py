"""Change -> mirror -> webhook latency: calsync side by side with a 60 s and a 30 min reference
poller.

    .venv/bin/python bench/e2e_latency.py [--mailboxes 100,1000] [--changes 200] [--rate 10]
                                          [--pollers 60,1800] [--json out.json]

Per mailbox count, one local system (devhost/local/stack.py: Azurite, the simulator, one dev
host over https); the mailboxes are seeded with 3 events each, enrolled and synced once. The
simulator's notification delay is zero (knob `delivery_delay_ms` 0, batching window 20 ms).

- calsync, in real time: `--changes` events are created through the simulator's control API
  (as a person in Outlook would), round-robin over the mailboxes, at `--rate` per second in
  total (steady traffic). Latency = from the control call's start to the event's row being in
  the mirror (the events table, read every 20 ms). With `--leading-round true` (the product's
  default, LEADING_ROUND) a mailbox without a request in the last 3 s syncs at once; with
  `false` every request waits the intake's debounce (shared/core/rounds.py DEBOUNCE_SECONDS,
  3 s, whole seconds in Azurite's queue), so that a burst folds into one delta round.
  Every mailbox then changes once per `mailboxes / rate` seconds, so keep that over 3 s to
  measure the leading round. `--rate` is the whole system's load: one dev host process and
  Azurite on this machine saturate at a few changes a second with a webhook subscriber (each
  change is a round, two deliveries and their Table and queue requests), and latency then
  measures queueing, not the path.
- calsync's webhook, in the same run: a subscriber registered through the admin API
  (`POST /api/webhooks`, every mailbox) is a local HTTPS receiver on loopback (tests/receiver.py,
  the simulator's host certificate); latency = from the control call's start to the arrival of
  the change's first delivery whose Standard Webhooks signature verifies (standardwebhooks).
  So the whole path: simulator change -> notification -> intake -> debounce -> round -> mirror
  -> delivery work item -> signed POST.
- each reference poller (bench/pollers.py), on the simulator's virtual clock: every mailbox
  gets a random phase in [0, interval) and is listed (calendarView) at phase + k x interval;
  `--changes` changes are spread uniformly over one interval of virtual time. The timeline
  (changes and listings, in time order) is played by moving the simulator's clock to each
  moment (`POST /_sim/clock/advance`, the app's clock with it) and then making the change or
  the listing for real. Latency = listing's virtual time - change's virtual time + the listing's
  real duration. A 30 min poller is thus measured in seconds of wall time.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import enrol_and_sync, median, pct, seed_users, table, write_json
from pollers import Poller

from tests.receiver import run_receiver


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mailboxes", default="100,1000", help="mailbox counts, comma-separated")
    p.add_argument("--changes", type=int, default=200, help="changes per measurement")
    p.add_argument("--rate", type=float, default=2.0, help="calsync: changes per second")
    p.add_argument("--pollers", default="60,1800", help="poller intervals in seconds")
    p.add_argument(
        "--leading-round", choices=("true", "false"), default="true", help="LEADING_ROUND"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="write the report here")
    return p.parse_args(argv)


def _slot(at: datetime, n: int) -> dict[str, Any]:
    start = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2 + n % 48)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
    }


def _calsync(
    stack: Any,
    users: list[tuple[str, str]],
    changes: int,
    rate: float,
    receiver: Any,
    secret: str,
) -> tuple[list[float], list[float]]:
    """(change -> mirror, change -> verified webhook) latencies, in seconds."""
    from standardwebhooks.webhooks import Webhook

    from shared.adapters.storage import StorageClients
    from shared.adapters.tables import TableState
    from shared.core.model import MailboxKey
    from shared.settings import StorageSettings

    state = TableState(StorageClients(StorageSettings(connection_string=stack.storage)))
    pending: dict[tuple[str, str], float] = {}
    made: dict[str, float] = {}  # event id -> when its change began
    done: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() or pending:
            with lock:
                items = list(pending.items())
            for (uid, eid), t0 in items:
                if state.stored_versions(MailboxKey(stack.tenant_id, uid), [eid]):
                    with lock:
                        done.append(time.monotonic() - t0)
                        pending.pop((uid, eid), None)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    began = time.monotonic()
    now = datetime.now(UTC) + timedelta(seconds=stack.offset)
    for n in range(changes):
        upn, uid = users[n % len(users)]
        t0 = time.monotonic()
        eid = stack.sim.control.create_event(upn, {"subject": f"e2e {n}", **_slot(now, n)})["id"]
        with lock:
            pending[(uid, eid)] = t0
            made[eid] = t0
        time.sleep(max(0.0, began + (n + 1) / rate - time.monotonic()))
    stop.set()
    watcher.join(timeout=180)
    if pending:
        raise SystemExit(f"{len(pending)} changes never reached the mirror")
    hook = Webhook(secret)
    received: dict[str, float] = {}
    deadline = time.monotonic() + 180
    while len(received) < len(made) and time.monotonic() < deadline:
        with receiver.lock:
            arrived = list(receiver.requests)
        for r in arrived:
            body = hook.verify(r.body, r.headers)  # raises unless signed with the secret
            eid = body.get("eventId")
            if eid in made and eid not in received:
                received[eid] = r.at - made[eid]
        time.sleep(0.1)
    if len(received) < len(made):
        raise SystemExit(f"{len(made) - len(received)} changes never reached the webhook")
    return done, list(received.values())


def _poller(
    stack: Any, users: list[tuple[str, str]], interval: float, changes: int, rng: random.Random
) -> tuple[list[float], int]:
    """(latencies, Graph requests) of one reference poller over one virtual timeline."""
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

    with Poller(interval, stack.sim.graph_base_url, token, stack.sim.ssl_context(), window) as p:
        p.baseline(uid for _, uid in users)
        p.requests = 0
        timeline: list[tuple[float, int, int]] = []  # (virtual offset, 0 change / 1 listing, who)
        for n in range(changes):
            timeline.append((rng.uniform(0, interval), 0, n))
        for m in range(len(users)):
            phase = rng.uniform(0, interval)
            timeline += [(phase + k * interval, 1, m) for k in range(2)]
        timeline.sort()
        clock = 0.0
        made: dict[tuple[str, str], float] = {}  # (user id, event id) -> virtual offset
        latencies: list[float] = []
        for at, kind, who in timeline:
            if at > clock:
                stack.advance(at - clock)
                clock = at
            if kind == 0:
                upn, uid = users[who % len(users)]
                body = {"subject": f"poll {who}", **_slot(start, who)}
                made[(uid, stack.sim.control.create_event(upn, body)["id"])] = at
            else:
                uid = users[who][1]
                seen, took = p.poll(uid)
                for eid in seen:
                    if (uid, eid) in made:
                        latencies.append(at - made.pop((uid, eid)) + took)
        if made:
            raise SystemExit(f"poller {interval:g} s never saw {len(made)} changes")
        return latencies, p.requests


def run(argv: list[str] | None = None) -> dict[str, Any]:
    from devhost.local.stack import local_stack
    from shared.core.rounds import DEBOUNCE_SECONDS

    args = _args(argv)
    rng = random.Random(args.seed)
    results = []
    for count in [int(c) for c in args.mailboxes.split(",")]:
        with local_stack(env={"LEADING_ROUND": args.leading_round}) as stack:
            stack.sim.control.knobs(delivery_delay_ms=0)
            users = seed_users(stack, "e2e", count)
            now = datetime.now(UTC)
            for upn, _ in users:
                stack.sim.control.bulk_events(
                    upn, 3, (now + timedelta(days=1)).strftime("%Y-%m-%dT09:00:00Z")
                )
            enrol_and_sync(stack, [u for u, _ in users], timeout=1800)
            cert = (stack.sim.host_cert_path, stack.sim.host_key_path)
            with run_receiver(cert=cert) as receiver:
                with stack.admin() as api:
                    created = api.post("/webhooks", json={"url": receiver.url})
                    created.raise_for_status()
                secret = created.json()["secret"]
                before = stack.sim.control.counters()
                ours, hooks = _calsync(stack, users, args.changes, args.rate, receiver, secret)
                after = stack.sim.control.counters()
            row: dict[str, Any] = {
                "mailboxes": count,
                "changes": args.changes,
                "calsync": {
                    "p50_s": median(ours),
                    "p90_s": pct(ours, 0.9),
                    "p99_s": pct(ours, 0.99),
                    "samples_s": sorted(round(x, 3) for x in ours),
                },
                "webhook": {
                    "p50_s": median(hooks),
                    "p90_s": pct(hooks, 0.9),
                    "p99_s": pct(hooks, 0.99),
                    "samples_s": sorted(round(x, 3) for x in hooks),
                },
                # The simulator's delivery side during the run: retried POSTs, items held
                # back for a slow endpoint, 429s: what a long tail comes from.
                "simulator": {
                    k: after["notifications"][k] - before["notifications"].get(k, 0)
                    for k in after["notifications"]
                    if after["notifications"][k] != before["notifications"].get(k, 0)
                }
                | {
                    "throttled_429": sum(
                        v - before["requests_by_endpoint_status"].get(k, 0)
                        for k, v in after["requests_by_endpoint_status"].items()
                        if k.endswith(" 429")
                    )
                },
                "debounce_s": DEBOUNCE_SECONDS,
                "leading_round": args.leading_round == "true",
            }
            for interval in [float(i) for i in args.pollers.split(",")]:
                lat, requests = _poller(stack, users, interval, args.changes, rng)
                row[f"poller_{interval:g}s"] = {
                    "p50_s": median(lat),
                    "p99_s": pct(lat, 0.99),
                    "graph_requests_per_listing": requests / (2 * count),
                    "p50_vs_calsync": median(lat) / median(ours),
                }
            results.append(row)
    rows = []
    for r in results:
        c = r["calsync"]
        rows.append([r["mailboxes"], "calsync", c["p50_s"], c["p99_s"], "1x"])
        w = r["webhook"]
        rows.append(
            [r["mailboxes"], "calsync webhook (signed, received)", w["p50_s"], w["p99_s"], ""]
        )
        for key, p in r.items():
            if key.startswith("poller_"):
                name = f"poller every {key[7:]}"
                rows.append(
                    [r["mailboxes"], name, p["p50_s"], p["p99_s"], f"{p['p50_vs_calsync']:.0f}x"]
                )
    table(
        f"change -> mirror latency, {args.changes} changes per row (seconds)",
        ["mailboxes", "who", "p50 s", "p99 s", "p50 vs calsync"],
        rows,
    )
    return write_json(args.json, "e2e_latency", vars(args), results)


if __name__ == "__main__":
    run()
