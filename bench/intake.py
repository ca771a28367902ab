"""Intake capacity: notifications/s the dev host accepts, and its answer times.

    .venv/bin/python bench/intake.py [--rates 100,300,500] [--seconds 10] [--runs 1]
                                      [--mailboxes 5] [--repo PATH] [--json out.json]

Runs the whole local system of the tree at `--repo` (default: this checkout) as
devhost/local/stack.py does (Azurite, the simulator, one dev host over https). `--mailboxes`
mailboxes are enrolled for real; for each, a subscription record with a clientState the
benchmark knows is stored beside the real one, so its notifications pass the intake's checks.
Then, per rate, POSTs of 1 to 50 items (mailboxes picked at random, so most POSTs repeat one)
are offered open-loop on loopback at that many items per second for `--seconds`, each with a
10 s timeout (Graph drops notifications past 10 s). Reported: accepted items/s, p50/p99 answer
time, timeouts, non-2xx, and whether every mailbox named by an accepted POST got a sync request
from this step afterwards (the worker stamps `lastNotification` with the request's time, which
must be past the step's start; requests may run out of order, so not necessarily the last
one's time). Bounded: at most
rate x seconds items per step, and 30 s of checking.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rates", default="100,300,500", help="items per second, comma-separated")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per rate")
    p.add_argument("--runs", type=int, default=1, help="runs per rate (medians reported)")
    p.add_argument("--mailboxes", type=int, default=5)
    p.add_argument("--max-items", type=int, default=50, help="items per POST: 1 to this")
    p.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    p.add_argument("--json", help="write the results here")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


def _enrol(stack: Any, count: int) -> list[tuple[str, str, str]]:
    """(user id, subscription id, clientState) of `count` freshly enrolled mailboxes."""
    from shared.adapters.storage import StorageClients
    from shared.adapters.tables import TableState
    from shared.core.model import SubscriptionRecord
    from shared.core.notifications import client_state_digest
    from shared.settings import StorageSettings

    users = [f"bench-{uuid.uuid4().hex[:8]}@contoso.example" for _ in range(count)]
    seeded = stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": u} for u in users])
    state = TableState(StorageClients(StorageSettings(connection_string=stack.storage)))
    out = []
    with stack.admin() as api:
        for upn in users:
            assert api.put(f"/mailboxes/{stack.tenant_id}/{upn}", json={}).status_code == 201
            uid = seeded["users"][upn].lower()
            sub, secret = str(uuid.uuid4()), uuid.uuid4().hex + uuid.uuid4().hex
            state.put_subscription(
                SubscriptionRecord(
                    sub,
                    stack.tenant_id,
                    uid,
                    f"users/{uid}/events",
                    datetime.now(UTC) + timedelta(days=2),
                    client_state_digest(secret),
                )
            )
            out.append((uid, sub, secret))
    return out


def _last_notification(stack: Any, uid: str) -> datetime | None:
    with stack.admin() as api:
        value = api.get(f"/mailboxes/{stack.tenant_id}/{uid}").json()["status"]["lastNotification"]
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _step(
    stack: Any,
    boxes: list[tuple[str, str, str]],
    rate: float,
    seconds: float,
    max_items: int,
    rng: random.Random,
) -> dict[str, Any]:
    import httpx

    url = stack.hosts[0].url + "/api/notifications"
    plan: list[tuple[float, list[int]]] = []
    at, total = 0.0, 0
    while at < seconds:
        size = rng.randint(1, max_items)
        plan.append((at, [rng.randrange(len(boxes)) for _ in range(size)]))
        total += size
        at += size / rate
    results: list[tuple[float, int, list[int], datetime]] = []  # (seconds, status, boxes, sent)
    lock = threading.Lock()
    client = httpx.Client(
        verify=stack.sim.ssl_context(),
        timeout=10.0,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
    )

    def post(picks: list[int]) -> None:
        items = [
            {
                "subscriptionId": boxes[i][1],
                "clientState": boxes[i][2],
                "tenantId": stack.tenant_id,
                "changeType": "updated",
                "resource": f"Users/{boxes[i][0]}/Events/bench-{n}",
                "resourceData": {"id": f"bench-{n}"},
            }
            for n, i in enumerate(picks)
        ]
        sent = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            status = client.post(url, json={"value": items}).status_code
        except httpx.TimeoutException:
            status = 0
        except httpx.HTTPError:
            status = -1
        with lock:
            results.append((time.perf_counter() - t0, status, picks, sent))

    step_start = datetime.now(UTC)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=200) as pool:
        for offset, picks in plan:
            delay = started + offset - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, picks)
    elapsed = time.perf_counter() - started
    client.close()
    accepted = [r for r in results if 200 <= r[1] < 300]
    times = sorted(r[0] for r in results)
    missing = {i for r in accepted for i in r[2]}
    deadline = time.monotonic() + 30
    while missing and time.monotonic() < deadline:
        for i in list(missing):
            noted = _last_notification(stack, boxes[i][0])
            if noted is not None and noted >= step_start:
                missing.discard(i)
        time.sleep(0.2)
    return {
        "rate": rate,
        "offered": total,
        "posts": len(plan),
        "seconds": round(elapsed, 2),
        "accepted_per_s": round(sum(len(r[2]) for r in accepted) / elapsed, 1),
        "p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 1)
        if times
        else None,
        "timeouts": sum(1 for r in results if r[1] == 0),
        "non_2xx": sum(1 for r in results if not 200 <= r[1] < 300 and r[1] != 0),
        "mailboxes_missing_a_request": len(missing),
    }


def run(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = _args(argv)
    repo = Path(args.repo).resolve()
    sys.path.insert(0, str(repo))  # that tree's devhost, stack and shared package
    from devhost.local.stack import local_stack

    rng = random.Random(args.seed)
    rows: list[dict[str, Any]] = []
    with local_stack() as stack:
        boxes = _enrol(stack, args.mailboxes)
        for rate in [float(r) for r in args.rates.split(",")]:
            runs = [
                _step(stack, boxes, rate, args.seconds, args.max_items, rng)
                for _ in range(args.runs)
            ]
            row = dict(runs[-1])
            for key in ("accepted_per_s", "p50_ms", "p99_ms", "timeouts", "non_2xx"):
                values = [r[key] for r in runs if r[key] is not None]
                row[key] = statistics.median(values) if values else None
            row["mailboxes_missing_a_request"] = max(r["mailboxes_missing_a_request"] for r in runs)
            row["runs"] = runs
            rows.append(row)
    print(f"intake benchmark: {repo} ({args.mailboxes} mailboxes, {args.seconds:g} s per rate)")
    print(
        f"{'offered/s':>10} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'timeouts':>9} "
        f"{'non-2xx':>8} {'missing':>8}"
    )
    for r in rows:
        print(
            f"{r['rate']:>10g} {r['accepted_per_s']:>11} {r['p50_ms']!s:>8} {r['p99_ms']!s:>8} "
            f"{r['timeouts']:>9} {r['non_2xx']:>8} {r['mailboxes_missing_a_request']:>8}"
        )
    if args.json:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from benchlib import machine

        report = {"repo": str(repo), "machine": machine(), "rows": rows}
        Path(args.json).write_text(json.dumps(report, indent=2))
    return rows


if __name__ == "__main__":
    run()
