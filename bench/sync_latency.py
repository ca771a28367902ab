"""Notification-to-mirror latency for many mailboxes, and delta requests per burst of 50 changes.

    .venv/bin/python bench/sync_latency.py [--mailboxes 100] [--rate 10] [--runs 1]

Runs the whole local system (Azurite, the simulator, one dev host over https). For each mailbox
an event is created through the simulator's control API (as a person in Outlook would) at
`--rate` changes per second in total; the time until the event is in the mirror (read straight
from the events table) is its latency. Then 50 changes are made to one mailbox as fast as the
control API takes them, and the calendarView/delta requests the app made for them are counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devhost.local.stack import Stack, local_stack
from shared.adapters.storage import StorageClients
from shared.adapters.tables import TableState
from shared.core.model import MailboxKey
from shared.settings import StorageSettings


def _slot(n: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2 + n)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
    }


def _enrol(stack: Stack, count: int) -> list[tuple[str, str]]:
    users = [f"bench-{uuid.uuid4().hex[:8]}@contoso.example" for _ in range(count)]
    seeded = stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": u} for u in users])
    out = []
    with stack.admin() as api:
        for upn in users:
            assert api.put(f"/mailboxes/{stack.tenant_id}/{upn}", json={}).status_code == 201
            out.append((upn, seeded["users"][upn].lower()))
        deadline = time.monotonic() + 300
        for _, uid in out:
            while not api.get(f"/mailboxes/{stack.tenant_id}/{uid}").json()["status"]["lastSync"]:
                if time.monotonic() > deadline:
                    raise SystemExit("first syncs did not finish in 300 s")
                time.sleep(0.2)
    return out


def latency(stack: Stack, mailboxes: list[tuple[str, str]], rate: float) -> list[float]:
    state = TableState(StorageClients(StorageSettings(connection_string=stack.storage)))
    pending: dict[tuple[str, str], float] = {}
    done: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() or pending:
            with lock:
                items = list(pending.items())
            for (uid, eid), t0 in items:
                key = MailboxKey(stack.tenant_id, uid)
                if state.stored_versions(key, [eid]):
                    with lock:
                        done.append(time.monotonic() - t0)
                        pending.pop((uid, eid), None)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for n, (upn, uid) in enumerate(mailboxes):
        t0 = time.monotonic()
        eid = stack.sim.control.create_event(upn, {"subject": f"Latency {n}", **_slot(n % 24)})[
            "id"
        ]
        with lock:
            pending[(uid, eid)] = t0
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t0)))
    stop.set()
    watcher.join(timeout=120)
    return done


def burst(stack: Stack, upn: str, uid: str) -> int:
    def deltas() -> int:
        return int(
            stack.sim.control.counters()["requests_by_endpoint"].get("calendarView.delta", 0)
        )

    state = TableState(StorageClients(StorageSettings(connection_string=stack.storage)))
    key = MailboxKey(stack.tenant_id, uid)
    before_rows = len(state.stored_versions(key))
    before = deltas()
    for n in range(50):
        stack.sim.control.create_event(upn, {"subject": f"Burst {n}", **_slot(n % 24)})
    deadline = time.monotonic() + 60
    while len(state.stored_versions(key)) < before_rows + 50:
        if time.monotonic() > deadline:
            raise SystemExit("the burst did not reach the mirror in 60 s")
        time.sleep(0.05)
    time.sleep(3)  # let any folded or deferred request run, so it is counted too
    return deltas() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second in total")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with local_stack() as stack:
        mailboxes = _enrol(stack, args.mailboxes)
        for run in range(args.runs):
            samples = sorted(latency(stack, mailboxes, args.rate))
            p50 = statistics.median(samples)
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
            print(
                f"run {run + 1}: {len(samples)} changes in {args.mailboxes} mailboxes at "
                f"{args.rate:g}/s: latency p50 {p50:.2f} s, p99 {p99:.2f} s, "
                f"max {samples[-1]:.2f} s"
            )
            upn, uid = mailboxes[run % len(mailboxes)]
            print(
                f"run {run + 1}: burst of 50 changes to one mailbox -> "
                f"{burst(stack, upn, uid)} calendarView/delta requests"
            )


if __name__ == "__main__":
    main()
