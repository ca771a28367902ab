"""Simple GETs per second that one simulator process serves on one core.

Starts `python -m graphsim` pinned to CPU 0 (taskset), seeds 8 mailboxes with one event each,
gets a real token, then runs a keep-alive load generator in ANOTHER process pinned to CPU 1:
asyncio + ssl streams, 16 connections, each sending `GET /v1.0/users/{id}/events/{eid}` (full
pipeline: token check, mailbox, permission, throttle, render) and reading the whole answer.
Prints each run and the median. Usage:
    .venv/bin/python bench/sim_load.py [--runs 5] [--seconds 3] [--endpoint event|calendar]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import ssl
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from graphsim.testing import run_simulator, token_for

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "bench-secret"  # noqa: S105 - simulator fixture


async def _connection(
    host: str,
    port: int,
    ctx: ssl.SSLContext,
    requests: list[bytes],
    stop_at: float,
    counts: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    i = 0
    while time.perf_counter() < stop_at:
        writer.write(requests[i % len(requests)])
        i += 1
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        counts[0 if status == 200 else 1] += 1
    writer.close()


def _load(args: tuple[str, str, list[str], str, float, int]) -> tuple[int, int, float]:
    origin, ca, paths, token, seconds, connections = args
    os.sched_setaffinity(0, {1})
    parts = urlsplit(origin)
    host, port = parts.hostname or "127.0.0.1", parts.port or 443
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        for p in paths
    ]
    ctx = ssl.create_default_context(cafile=ca)
    counts = [0, 0]

    async def main() -> float:
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(
            *(_connection(host, port, ctx, requests, stop_at, counts) for _ in range(connections))
        )
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    return counts[0], counts[1], elapsed


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--endpoint",
        choices=["event", "calendar"],
        default="event",
        help="event: GET one event (served from the version-keyed cache after the first read); "
        "calendar: GET the default calendar (built on every request)",
    )
    opts = parser.parse_args()
    with run_simulator(cpu=0) as sim:
        users = [{"tenant": TENANT, "upn": f"load{i}@bench.example"} for i in range(8)]
        seeded = sim.control.seed(
            tenants=[{"id": TENANT, "domain": "bench.example"}],
            apps=[{"client_id": CLIENT, "tenant": TENANT, "secrets": [{"value": SECRET}]}],
            consents=[{"tenant": TENANT, "client_id": CLIENT, "roles": ["Calendars.Read"]}],
            users=users,
            events=[
                {
                    "user": u["upn"],
                    "event": {
                        "subject": "Load",
                        "start": {"dateTime": "2026-11-23T09:00:00", "timeZone": "UTC"},
                        "end": {"dateTime": "2026-11-23T09:30:00", "timeZone": "UTC"},
                    },
                }
                for u in users
            ],
        )
        sim.control.knobs(budget_requests=10**9)
        token = token_for(sim, TENANT, CLIENT, SECRET)
        ids = list(seeded["users"].values())
        if opts.endpoint == "event":
            pairs = zip(ids, seeded["events"], strict=True)
            paths = [f"/v1.0/users/{uid}/events/{quote(eid, safe='')}" for uid, eid in pairs]
        else:
            paths = [f"/v1.0/users/{uid}/calendar" for uid in ids]
        rates, per_cpu = [], []
        ctx = multiprocessing.get_context("spawn")
        for run in range(opts.runs):
            with ctx.Pool(1) as pool:
                cpu_before = _cpu_seconds(sim.process.pid)
                ok, bad, elapsed = pool.apply(
                    _load,
                    (
                        (
                            sim.authority_host,
                            sim.ca_pem_path,
                            paths,
                            token,
                            opts.seconds,
                            opts.connections,
                        ),
                    ),
                )
                cpu_used = _cpu_seconds(sim.process.pid) - cpu_before
            rate = ok / elapsed
            rates.append(rate)
            per_cpu.append(ok / max(cpu_used, 1e-9))
            print(
                f"run {run + 1}: {ok} x 200, {bad} other, {elapsed:.2f} s -> {rate:,.0f} GET/s; "
                f"server CPU {cpu_used / elapsed:.0%} of one core -> "
                f"{per_cpu[-1]:,.0f} GET per CPU-second"
            )
        counters = sim.control.counters()
        print(
            json.dumps(
                {
                    "median_gets_per_s": round(statistics.median(rates)),
                    "median_gets_per_server_cpu_second": round(statistics.median(per_cpu)),
                    "server_requests_total": counters["requests_total"],
                }
            )
        )


if __name__ == "__main__":
    main()
