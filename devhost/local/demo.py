"""`python -m devhost.local.demo`: the whole system locally, with a live view.

Starts Azurite, the simulator with its demo tenant (two mailboxes with events), the EWS
simulator with a mailbox on "Exchange Server" (its own tenant), a dev host over https, enrols
the demo mailboxes through the admin API (and books one appointment on the Exchange one through
the write API), then prints a live view: each mailbox's
mode and mirrored event count, and every change as it lands in the mirror with its latency. Every
`--every` seconds it books, moves or cancels a meeting through the simulator's control API, as a
person in Outlook would; changes you make yourself (see the printed commands) show up too.
Ctrl-C stops everything, leaving nothing behind.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.local.stack import (
    EWS_DEMO_MAILBOX,
    EWS_TENANT_ID,
    FUNCTION_KEY,
    Stack,
    local_stack,
)


def _slot(rng: random.Random) -> dict[str, Any]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start += timedelta(days=rng.randint(0, 6), hours=rng.randint(1, 8))
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
    }


def _mirror(stack: Stack, user_id: str, tenant: str = "") -> dict[str, str]:
    with stack.admin() as api:
        path = f"/mailboxes/{tenant or stack.tenant_id}/{user_id}/events"
        rows = api.get(path).json()["value"]
    return {r["event_id"]: r["change_key"] for r in rows}


def _wait_first_sync(stack: Stack, user_id: str, timeout: float = 60.0, tenant: str = "") -> None:
    deadline = time.monotonic() + timeout
    with stack.admin() as api:
        while time.monotonic() < deadline:
            path = f"/mailboxes/{tenant or stack.tenant_id}/{user_id}"
            status = api.get(path).json()["status"]
            if status["lastSync"]:
                return
            time.sleep(0.2)
    raise SystemExit(f"mailbox {user_id} did not finish its first sync in {timeout:g} s")


def _act(stack: Stack, upn: str, rng: random.Random, mine: list[str]) -> str:
    """Book, move or cancel a meeting as the mailbox's owner would in Outlook."""
    control = stack.sim.control
    if mine and rng.random() < 0.3:
        control.delete_event(upn, mine.pop(rng.randrange(len(mine))))
        return "cancelled a meeting"
    if mine and rng.random() < 0.5:
        control.update_event(upn, rng.choice(mine), _slot(rng))
        return "moved a meeting"
    event = control.create_event(
        upn, {"subject": f"Demo meeting {rng.randint(100, 999)}", **_slot(rng)}
    )
    mine.append(event["id"])
    return f"booked {event['subject']!r}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devhost.local.demo", description=__doc__)
    parser.add_argument("--every", type=float, default=8.0, help="seconds between demo changes")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    args = parser.parse_args()
    from graphsim.demo import DEMO_USERS

    rng = random.Random()  # noqa: S311 - demo data
    print("starting Azurite, the Graph and EWS simulators and the dev host ...", flush=True)
    with local_stack() as stack, contextlib.suppress(KeyboardInterrupt):
        users: dict[str, str] = {}
        with stack.admin() as api:
            for upn in DEMO_USERS:
                body = api.put(f"/mailboxes/{stack.tenant_id}/{upn}", json={}).json()
                users[upn] = body["userId"]
            ews_id = api.put(f"/mailboxes/{EWS_TENANT_ID}/{EWS_DEMO_MAILBOX}", json={}).json()[
                "userId"
            ]
        _wait_first_sync(stack, ews_id, tenant=EWS_TENANT_ID)
        with stack.admin() as api:
            booked = api.post(
                f"/mailboxes/{EWS_TENANT_ID}/{ews_id}/writes",
                json={
                    "action": "create",
                    "writer": "demo",
                    "event": _slot(rng) | {"subject": "Boiler service"},
                },
                headers={"Idempotency-Key": "demo-ews-1"},
            ).json()
        ews_events = _mirror(stack, ews_id, EWS_TENANT_ID)
        host = stack.hosts[0].url
        print(f"\ncalsync is running: {host}/api/health")
        print(f"  admin API key:   {FUNCTION_KEY}   (header x-functions-key)")
        print(f"  CA certificate:  {stack.sim.ca_pem_path}")
        print(f"  simulator:       {stack.sim.control_url}")
        print(f"  EWS simulator:   {stack.ews.control_url}  (tenant {EWS_TENANT_ID})")
        print(
            f"  {EWS_DEMO_MAILBOX} (Exchange Server): {len(ews_events)} events, one written "
            f"through the write API (write {booked.get('id')}, {booked.get('status')})"
        )
        print("  for the CLI, in another shell (the dev host's own key, never a real one):")
        print(f"    export CALSYNC_URL={host}")
        print(f"    export CALSYNC_FUNCTION_KEY={FUNCTION_KEY}")
        print(f"    export CALSYNC_CA_BUNDLE={stack.sim.ca_pem_path}")
        print("    .venv/bin/calsync list\n")
        print("initial sync ...", flush=True)
        for uid in users.values():
            _wait_first_sync(stack, uid)
        seen = {upn: _mirror(stack, uid) for upn, uid in users.items()}
        for upn, events in seen.items():
            print(f"{time.strftime('%H:%M:%S')}  mirror   {upn}: {len(events)} events", flush=True)
        mine: dict[str, list[str]] = {upn: [] for upn in users}
        pending: dict[str, tuple[float, str]] = {}
        started = next_change = time.monotonic()
        while not args.seconds or time.monotonic() - started < args.seconds:
            if time.monotonic() >= next_change:
                upn = rng.choice(list(users))
                pending[upn] = (time.monotonic(), _act(stack, upn, rng, mine[upn]))
                print(f"{time.strftime('%H:%M:%S')}  Outlook  {upn}: {pending[upn][1]}", flush=True)
                next_change = time.monotonic() + args.every
            for upn, uid in users.items():
                now = _mirror(stack, uid)
                if now != seen[upn]:
                    added = len(now.keys() - seen[upn].keys())
                    removed = len(seen[upn].keys() - now.keys())
                    changed = sum(
                        1 for k in now.keys() & seen[upn].keys() if now[k] != seen[upn][k]
                    )
                    lag = ""
                    if upn in pending:
                        lag = f"  ({time.monotonic() - pending.pop(upn)[0]:.1f} s after the change)"
                    print(
                        f"{time.strftime('%H:%M:%S')}  mirror   {upn}: +{added} ~{changed} "
                        f"-{removed}, {len(now)} events{lag}",
                        flush=True,
                    )
                    seen[upn] = now
            time.sleep(0.25)
    print("stopped; nothing left running.")


if __name__ == "__main__":
    main()
