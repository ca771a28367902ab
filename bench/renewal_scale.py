"""Renewal at scale: many mailboxes of one tenant over a simulated week on the virtual clock.

    .venv/bin/python bench/renewal_scale.py [--mailboxes 10000] [--hosts 1] [--days 7]
                                            [--step 900] [--json out.json]

One local system (devhost/local/stack.py) with `--hosts` dev hosts sharing Azurite. The
mailboxes (empty calendars) are enrolled through the admin API, the PUTs spread over the hosts
(8 at a time), as an operator's script would. Each PUT tries to create the subscription at once
(paced: past the pacer's 5 s wait the mailbox falls back to poll mode, `paced`, and the poll
timer retries it). Then the virtual clock runs `--days` days in `--step` second steps; each
step runs `poll_mailboxes` (which also retries the paced ones) and `renew_subscriptions` on
host 0, as the host's timers do (their schedule is 30 s and 15 min; timers run on one host at
a time in Azure), and times each invocation. The hosts' own schedules of those two timers are
off (`AzureWebJobs.<name>.Disabled`): they fire on the real clock, not the virtual one, on
every host at once, which Azure's timers never do.

Reported, from the simulator's counters and its subscription list:
- subscriptions expired (the simulator's `subscriptions_expired`): must be 0;
- 429 answers to subscription writes: must be 0;
- the most subscription writes (create, renew, delete, reauthorize) in any 20 s of the
  simulator's virtual clock, per tenant: must stay under 500 (Graph's limit per app and tenant),
  from samples of the counters every 0.5 s (a window is counted from the samples inside it,
  so the figure can only be over, never under, by the writes of one sample);
- live subscriptions at the end (must equal the mailboxes), mailboxes still not subscribed;
- each timer's run time per invocation, p50/p99/max.
With `--hosts 2` the PUTs reach both hosts at once, and the timers alternate between them: the
subscription writes of every host draw on one budget per tenant (the `pacing` table,
services/write_budget.py), so together they stay under the limit.

Also reported: 429 answers to the orphan check's `GET /subscriptions` (Graph's list limit,
25 per 20 s per tenant in the simulator), which must be 0 too.

`--storm` then sends `subscriptionRemoved` for every subscription at once (as Graph does when
it drops a tenant's subscriptions), so every host's queue workers recreate them together; the
writes per 20 s and the 429s of that phase are reported apart, until every mailbox has a live
subscription again (the poll timer, run every 30 virtual seconds, retries the paced ones).
With `--seed direct` the seeded subscriptions carry the app's lifecycle URL and a clientState
whose digest is on record (one for the run, where a PUT makes one per subscription), so the
lifecycle notifications pass the app's own checks and the recreation is the product's.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import median, pct, table, write_json

# The bench runs these itself, once a step on one host (see the docstring).
TIMERS_OFF = {
    "AzureWebJobs.poll_mailboxes.Disabled": "true",
    "AzureWebJobs.renew_subscriptions.Disabled": "true",
}
WRITES = (
    "subscriptions.create",
    "subscriptions.update",
    "subscriptions.delete",
    "subscriptions.reauthorize",
)


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mailboxes", type=int, default=10_000)
    p.add_argument("--hosts", type=int, default=1)
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--step", type=float, default=900.0, help="virtual seconds per timer step")
    p.add_argument(
        "--storm",
        action="store_true",
        help="then remove every subscription at once (subscriptionRemoved) and measure the rebuild",
    )
    p.add_argument(
        "--storm-timeout",
        type=float,
        default=900.0,
        help="real seconds the storm's rebuild may take before the report is made",
    )
    p.add_argument(
        "--seed",
        choices=("api", "direct"),
        default="api",
        help="api: enrol through the admin API's PUT (about 4 a second here); direct: the "
        "simulator makes each mailbox's subscription (no handshake; 7-day life less up to 6 h, "
        "as plan_expiry asks) and the bench writes the records a PUT would (for 10,000)",
    )
    p.add_argument("--json", help="write the report here")
    return p.parse_args(argv)


class WriteSampler:
    """Samples (virtual time, subscription writes so far, 429s so far) every 0.5 s."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WriteSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            counters = self.stack.sim.control.counters()
            by_status = counters["requests_by_endpoint_status"]
            writes = sum(v for k, v in by_status.items() if k.rsplit(" ", 1)[0] in WRITES)
            throttled = sum(
                v
                for k, v in by_status.items()
                if k.rsplit(" ", 1)[0] in WRITES and k.endswith(" 429")
            )
            self.samples.append((time.time() + self.stack.offset, writes, throttled))
            self._stop.wait(0.5)

    def max_per_window(self, window: float = 20.0) -> int:
        """The most writes between two samples at most `window` virtual seconds apart, plus
        the writes of the sample before the first (they may fall inside the window too)."""
        best, lo = 0, 0
        for hi in range(1, len(self.samples)):
            while self.samples[hi][0] - self.samples[lo][0] > window:
                lo += 1
            base = self.samples[lo - 1][1] if lo > 0 else self.samples[0][1]
            best = max(best, self.samples[hi][1] - base)
        return best


def _enrol(stack: Any, upns: list[str], hosts: int) -> float:
    began = time.monotonic()
    clients = [stack.admin(i) for i in range(hosts)]

    def put(n: int) -> None:
        upn = upns[n]
        for attempt in range(
            5
        ):  # 503 means "retry" (storage briefly unavailable), as a script would
            answer = clients[n % hosts].put(f"/mailboxes/{stack.tenant_id}/{upn}", json={})
            if answer.status_code != 503:
                break
            time.sleep(1.0 + attempt)
        if answer.status_code not in (200, 201):
            raise SystemExit(f"enrolling {upn}: {answer.status_code} {answer.text}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(len(upns))))
    for c in clients:
        c.close()
    return time.monotonic() - began


def _seed_direct(stack: Any, upns: list[str], ids: dict[str, str]) -> float:
    """Subscribed mailboxes as a PUT leaves them, made without the PUT: the simulator creates
    the subscriptions (to the app's notification URL), the bench writes the mailbox and
    subscription records. Renewal from then on is the product's alone."""
    from datetime import UTC, datetime

    from graphsim.demo import DEMO_CLIENT_ID
    from shared.adapters.storage import StorageClients
    from shared.adapters.tables import TableState
    from shared.core.lifecycle import State
    from shared.core.model import MailboxKey, SubscriptionRecord
    from shared.core.notifications import client_state_digest
    from shared.core.state import MailboxRecord, MailboxStatus
    from shared.settings import StorageSettings

    began = time.monotonic()
    client_state = secrets.token_urlsafe(32)  # the lifecycle notifications carry it
    state = TableState(StorageClients(StorageSettings(connection_string=stack.storage)))
    state.ensure()  # the hosts create them on their first request; the bench writes first
    url = stack.env["PUBLIC_BASE_URL"] + "/api/notifications"
    made: dict[str, list[str]] = {}
    for i in range(0, len(upns), 500):
        made |= stack.sim.control.seed_subscriptions(
            upns[i : i + 500],
            DEMO_CLIENT_ID,
            notification_url=url,
            lifecycle_url=stack.env["PUBLIC_BASE_URL"] + "/api/lifecycle",
            client_state=client_state,
            lifetime_s=7 * 86400 - 900,
            spread_s=6 * 3600,
        )
    expiry = {s["id"]: s["expirationDateTime"] for s in stack.sim.control.subscriptions()}
    now = datetime.now(UTC)

    def write(upn: str) -> None:
        sub_id = made[upn][0]
        until = datetime.fromisoformat(expiry[sub_id].replace("Z", "+00:00"))
        key = MailboxKey(stack.tenant_id, ids[upn])
        status = MailboxStatus(
            state=State.SUBSCRIBED.value,
            mode="webhook",
            mode_reason="subscribed",
            subscription_id=sub_id,
            subscription_expiry=until,
        )
        state.put_mailbox(MailboxRecord(key, upn, status=status, enrolled_at=now))
        state.put_subscription(
            SubscriptionRecord(
                sub_id,
                key.tenant_id,
                key.user_id,
                f"users/{key.user_id}/events",
                until,
                client_state_digest(client_state),
            )
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, upns))
    return time.monotonic() - began


def _not_subscribed(stack: Any) -> int:
    from shared.adapters.storage import StorageClients
    from shared.adapters.tables import TableState
    from shared.core.lifecycle import State
    from shared.settings import StorageSettings

    state = TableState(StorageClients(StorageSettings(connection_string=stack.storage)))
    return sum(1 for m in state.list_mailboxes() if m.state is not State.SUBSCRIBED)


def _storm(stack: Any, mailboxes: int, timeout: float) -> dict[str, Any]:
    """subscriptionRemoved for every live subscription at once; the rebuild's writes and 429s."""
    subs = [s["id"] for s in stack.sim.control.subscriptions()]
    began = time.monotonic()
    with WriteSampler(stack) as sampler:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(lambda sub: stack.sim.control.lifecycle(sub, "subscriptionRemoved"), subs)
            )
        deadline = time.monotonic() + timeout
        while len(stack.sim.control.subscriptions()) < mailboxes:
            if time.monotonic() > deadline:
                break
            stack.advance(30)
            stack.run_function("poll_mailboxes")
            time.sleep(1.0)
        time.sleep(1.0)
    first = sampler.samples[0] if sampler.samples else (0.0, 0, 0)
    last = sampler.samples[-1] if sampler.samples else (0.0, 0, 0)
    return {
        "removed": len(subs),
        "rebuilt_s": round(time.monotonic() - began, 1),
        "live_after": len(stack.sim.control.subscriptions()),
        "max_writes_per_20s": sampler.max_per_window(),
        "throttled_429": last[2] - first[2],
    }


def _timed(stack: Any, name: str, runs: dict[str, list[float]], host: int = 0) -> None:
    began = time.perf_counter()
    stack.run_function(name, host)
    runs.setdefault(name, []).append(time.perf_counter() - began)


def run(argv: list[str] | None = None) -> dict[str, Any]:
    import uuid

    from devhost.local.stack import local_stack

    args = _args(argv)
    runs: dict[str, list[float]] = {}
    with local_stack(hosts=args.hosts, env=TIMERS_OFF) as stack:
        upns = [f"renew-{uuid.uuid4().hex[:10]}@contoso.example" for _ in range(args.mailboxes)]
        ids: dict[str, str] = {}
        for i in range(0, len(upns), 1000):
            seeded = stack.sim.control.seed(
                users=[{"tenant": stack.tenant_id, "upn": u} for u in upns[i : i + 1000]]
            )
            ids |= {u: str(v).lower() for u, v in seeded["users"].items()}
        before = stack.sim.control.counters()["notifications"].get("subscriptions_expired", 0)
        with WriteSampler(stack) as sampler:
            if args.seed == "direct":
                enrol_s = _seed_direct(stack, upns, ids)
            else:
                enrol_s = _enrol(stack, upns, args.hosts)
            live_after_enrol = len(stack.sim.control.subscriptions())
            steps = int(args.days * 86400 / args.step)
            for n in range(steps):
                stack.advance(args.step)
                # Timers run on one host at a time; which one changes (as after a scale-out).
                _timed(stack, "poll_mailboxes", runs, n % args.hosts)
                _timed(stack, "renew_subscriptions", runs, (n + 1) % args.hosts)
            time.sleep(1.0)
        counters = stack.sim.control.counters()
        live = len(stack.sim.control.subscriptions())
        storm = _storm(stack, args.mailboxes, args.storm_timeout) if args.storm else None
        not_subscribed = _not_subscribed(stack)
    result = {
        "mailboxes": args.mailboxes,
        "hosts": args.hosts,
        "virtual_days": args.days,
        "step_s": args.step,
        "enrol_s": round(enrol_s, 1),
        "live_after_enrol": live_after_enrol,
        "subscriptions_expired": counters["notifications"].get("subscriptions_expired", 0) - before,
        "throttled_429": sampler.samples[-1][2] if sampler.samples else 0,
        "max_writes_per_20s": sampler.max_per_window(),
        "live_at_end": live,
        "not_subscribed_at_end": not_subscribed,
        "writes_total": sampler.samples[-1][1] if sampler.samples else 0,
        "list_throttled_429": counters["requests_by_endpoint_status"].get(
            "subscriptions.list 429", 0
        ),
        "storm": storm,
        "timers": {
            name: {"runs": len(t), "p50_s": median(t), "p99_s": pct(t, 0.99), "max_s": max(t)}
            for name, t in runs.items()
        },
    }
    r = result
    table(
        f"renewal at scale: {args.mailboxes} mailboxes, {args.hosts} host(s), "
        f"{args.days:g} virtual days in {args.step:g} s steps",
        ["what", "value"],
        [
            ["enrolment (PUTs, s)", r["enrol_s"]],
            ["live subscriptions after the PUTs", r["live_after_enrol"]],
            ["subscriptions expired", r["subscriptions_expired"]],
            ["429 on subscription writes", r["throttled_429"]],
            ["most subscription writes in 20 s", r["max_writes_per_20s"]],
            ["subscription writes in all", r["writes_total"]],
            ["429 on subscription lists (orphan check)", r["list_throttled_429"]],
            ["live subscriptions at the end", r["live_at_end"]],
            ["mailboxes not subscribed at the end", r["not_subscribed_at_end"]],
        ]
        + [
            [
                f"{name} run time p50 / p99 / max (s)",
                f"{t['p50_s']:.2f} / {t['p99_s']:.2f} / {t['max_s']:.2f}",
            ]
            for name, t in r["timers"].items()
        ]
        + (
            [
                ["storm: subscriptions removed at once", r["storm"]["removed"]],
                ["storm: rebuilt in (s)", r["storm"]["rebuilt_s"]],
                ["storm: live afterwards", r["storm"]["live_after"]],
                ["storm: most subscription writes in 20 s", r["storm"]["max_writes_per_20s"]],
                ["storm: 429 on subscription writes", r["storm"]["throttled_429"]],
            ]
            if r["storm"]
            else []
        ),
    )
    return write_json(args.json, "renewal_scale", vars(args), result)


if __name__ == "__main__":
    run()
