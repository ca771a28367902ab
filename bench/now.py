"""POST /api/now for many mailboxes through the dev host: answer times, and the 304 repeat.

    .venv/bin/python bench/now.py [--mailboxes 100] [--events 6] [--requests 100] [--json out.json]

Runs the whole local system (devhost/local/stack.py: Azurite, the simulator, one dev host over
https). `--mailboxes` users are seeded with `--events` events each around now (today, so "now"
and "next" have work to do), enrolled for real and synced once. Then `--requests` sequential
POSTs of /api/now naming every mailbox (500 per POST at most, the API's limit: a request is
then that many POSTs in turn; each answer read from the mirror: one mailbox-list
query per tenant, one bounded events query per mailbox), then as many repeats with the answer's
latest ETag in If-None-Match, as a console refreshing would send (304, no body, unless an event
began or ended meanwhile; the server still reads the mirror, the client is spared the bytes).
Then today's agenda (`GET /api/mailboxes/{tenant}/{user}/agenda`, the mailbox's day in its
zone) `--requests` times, cycling over the mailboxes, and as many repeats with each mailbox's
ETag in If-None-Match. Reported: p50/p99 of each, the answer's size, and how many repeats
were 304.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import table, write_json  # (it puts the repository on sys.path too)

MAX_NOW = 500  # mailboxes per POST /api/now (shared/openapi.json)


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mailboxes", type=int, default=100)
    p.add_argument("--events", type=int, default=6, help="events per mailbox, around now")
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--json", help="write the results here")
    return p.parse_args(argv)


def _ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def _utc(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _seed(stack: Any, count: int, events: int) -> list[str]:
    users = [f"now-{uuid.uuid4().hex[:8]}@contoso.example" for _ in range(count)]
    stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": u} for u in users])
    now = datetime.now(UTC) + timedelta(seconds=stack.offset)
    for i, upn in enumerate(users):
        for j in range(events):
            start = now + timedelta(minutes=30 * (j - 2) + i % 7)
            show_as = ("busy", "tentative", "oof", "free", "workingElsewhere")[(i + j) % 5]
            stack.sim.control.create_event(
                upn,
                {
                    "subject": f"e{j}",
                    "showAs": show_as,
                    "start": _utc(start),
                    "end": _utc(start + timedelta(minutes=45)),
                },
            )
    with stack.admin() as api:
        for upn in users:
            api.put(f"/mailboxes/{stack.tenant_id}/{upn}", json={}).raise_for_status()
        deadline = time.monotonic() + 120
        for upn in users:
            while not api.get(f"/mailboxes/{stack.tenant_id}/{upn}").json()["status"]["lastSync"]:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{upn} never synced")
                time.sleep(0.2)
    return users


def run(argv: list[str] | None = None) -> dict[str, Any]:
    from devhost.local.stack import local_stack

    args = _args(argv)
    with local_stack() as stack:
        users = _seed(stack, args.mailboxes, args.events)
        names = [{"tenantId": stack.tenant_id, "user": u} for u in users]
        # POST /api/now takes at most 500 mailboxes: a console of more sends several, in turn.
        bodies = [{"mailboxes": names[i : i + MAX_NOW]} for i in range(0, len(names), MAX_NOW)]
        full: list[float] = []
        repeat: list[float] = []
        not_modified = 0
        with stack.admin() as api:
            firsts = [api.post("/now", json=body).raise_for_status() for body in bodies]
            size = sum(len(first.content) for first in firsts)
            etags = [first.headers["etag"] for first in firsts]
            for _ in range(args.requests):
                began = time.perf_counter()
                answers = [api.post("/now", json=body) for body in bodies]
                full.append(time.perf_counter() - began)
                etags = [answer.raise_for_status().headers["etag"] for answer in answers]
            for _ in range(args.requests):
                began = time.perf_counter()
                agains = [
                    api.post("/now", json=body, headers={"If-None-Match": etag})
                    for body, etag in zip(bodies, etags, strict=True)
                ]
                repeat.append(time.perf_counter() - began)
                not_modified += all(again.status_code == 304 for again in agains)
                # "now" moved on (an event began or ended): that answer's new ETag
                etags = [
                    again.headers["etag"] if again.status_code == 200 else etag
                    for again, etag in zip(agains, etags, strict=True)
                ]
            agenda = _agenda(api, stack.tenant_id, users, args.requests)
    result = {
        "mailboxes": args.mailboxes,
        "requests": args.requests,
        "answer_bytes": size,
        "p50_ms": _ms(full, 0.5),
        "p99_ms": _ms(full, 0.99),
        "mean_ms": round(1000 * statistics.fmean(full), 1),
        "repeat_304": not_modified,
        "repeat_p50_ms": _ms(repeat, 0.5),
        "repeat_p99_ms": _ms(repeat, 0.99),
        "agenda": agenda,
    }
    a = agenda
    table(
        f"read API through the dev host: {args.mailboxes} mailboxes, {args.requests} requests each",
        ["request", "p50 ms", "p99 ms", "bytes", "304s"],
        [
            [
                f"POST /api/now ({args.mailboxes} mailboxes)",
                result["p50_ms"],
                result["p99_ms"],
                size,
                "",
            ],
            [
                "  again with If-None-Match",
                result["repeat_p50_ms"],
                result["repeat_p99_ms"],
                0,
                f"{not_modified}/{args.requests}",
            ],
            ["GET agenda (one mailbox, today)", a["p50_ms"], a["p99_ms"], a["answer_bytes"], ""],
            [
                "  again with If-None-Match",
                a["repeat_p50_ms"],
                a["repeat_p99_ms"],
                0,
                f"{a['repeat_304']}/{args.requests}",
            ],
        ],
    )
    write_json(args.json, "now", vars(args), result)
    return result


def _agenda(api: Any, tenant: str, users: list[str], requests: int) -> dict[str, Any]:
    """Today's agenda of one mailbox per request (cycling), then the repeats with ETags."""
    full: list[float] = []
    repeat: list[float] = []
    etags: dict[str, str] = {}
    size = 0
    not_modified = 0
    for n in range(requests):
        user = users[n % len(users)]
        began = time.perf_counter()
        answer = api.get(f"/mailboxes/{tenant}/{user}/agenda")
        full.append(time.perf_counter() - began)
        answer.raise_for_status()
        etags[user], size = answer.headers["etag"], len(answer.content)
    for n in range(requests):
        user = users[n % len(users)]
        began = time.perf_counter()
        again = api.get(
            f"/mailboxes/{tenant}/{user}/agenda", headers={"If-None-Match": etags[user]}
        )
        repeat.append(time.perf_counter() - began)
        not_modified += again.status_code == 304
    return {
        "answer_bytes": size,
        "p50_ms": _ms(full, 0.5),
        "p99_ms": _ms(full, 0.99),
        "repeat_304": not_modified,
        "repeat_p50_ms": _ms(repeat, 0.5),
        "repeat_p99_ms": _ms(repeat, 0.99),
    }


if __name__ == "__main__":
    run()
