"""Initial sync: events per second into the mirror and peak memory, side by side with the same
delta paging written with the official msgraph-sdk and with a bare httpx loop.

    .venv/bin/python bench/initial_sync.py [--shapes 100x1000,10x10000] [--runs 1]
                                           [--json out.json] [--profile out.html]

Per shape MAILBOXESxEVENTS, a fresh local system (devhost/local/stack.py: Azurite, the
simulator, one dev host over https) gets that many users with that many single events each,
30 minutes apart from a week ago (all inside the default window: 4 weeks back, 52 ahead).
Then, in this order, on the same simulator:

- `httpx`: a bare loop in a new process: one app token, `calendarView/delta` with the app's
  window and `Prefer: odata.maxpagesize=100`, every nextLink followed, items counted, nothing
  stored (what decoding alone costs: the ceiling).
- `msgraph-sdk`: the same paging in a new process with `GraphServiceClient` (msgraph-sdk, its
  kiota httpx adapter pointed at the simulator, trusting its CA), pages parsed into the SDK's
  `Event` models, nothing stored: what a user writing this with the official SDK gets.
- `calsync`: every mailbox enrolled through the admin API; the clock runs from the first PUT to
  the last mailbox's `lastSync`; the mirror's rows are counted afterwards (they must equal the
  events seeded). Memory is the dev host's (the whole Functions host: triggers, worker, SDKs).
  `feed published/s`: the same events over the time until every change is also on the
  `calendar-changes` queue (its publisher's cursor at each mailbox's last sequence; the
  reference clients have no feed: their figure is their events/s).

Memory: the peak RSS of each process (VmHWM) and its growth over the RSS it had before the
sync; flat in the number of events means pages are streamed, not collected.
`--profile PATH` samples the dev host with py-spy during calsync's sync (all threads, idle ones
too, so waiting on storage counts: wall time; native frames off) and writes the collapsed stacks
to PATH; printed: the top functions by own time, and where the sync rounds' wall time goes (the
share of the rounds' samples under each of our functions, inclusive).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import ROOT, enrol_and_sync, median, rss_kib, seed_users, table, write_json

PAGE = 100  # the app's page size (shared/core/graph.py PAGE_SIZE), used by the other two too


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shapes", default="100x1000,10x10000", help="MAILBOXESxEVENTS, comma-sep.")
    p.add_argument("--clients", default="httpx,msgraph-sdk,calsync", help="which, comma-sep.")
    p.add_argument("--runs", type=int, default=1, help="runs per client per shape (medians)")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--profile", help="py-spy collapsed stacks of the dev host during the sync")
    # internal: one paging client in this process, its figures as JSON on stdout
    p.add_argument("--client", choices=["httpx", "sdk"], help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _window(now: datetime) -> tuple[str, str]:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (now - timedelta(weeks=4)).strftime(fmt), (now + timedelta(weeks=52)).strftime(fmt)


# -- the two reference clients, each run in a process of its own ---------------------------


def _page_httpx(target: dict[str, Any]) -> int:
    import httpx

    from graphsim.testing import SimHandle, token_for

    sim = SimHandle.__new__(SimHandle)
    sim.authority_host, sim.ca_pem_path = target["authority_host"], target["ca_pem_path"]
    token = token_for(sim, target["tenant"], target["client_id"], target["secret"], target["scope"])
    lo, hi = target["window"]
    headers = {
        "Authorization": f"Bearer {token}",
        "Prefer": f'odata.maxpagesize={PAGE}, outlook.timezone="UTC"',
    }
    items = 0
    with httpx.Client(verify=sim.ssl_context(), headers=headers, timeout=60) as client:
        for uid in target["users"]:
            url: str | None = f"{target['graph']}/users/{uid}/calendarView/delta"
            params: dict[str, str] | None = {"startDateTime": lo, "endDateTime": hi}
            while url:
                page = client.get(url, params=params).raise_for_status().json()
                items += len(page["value"])
                url, params = page.get("@odata.nextLink"), None
    return items


def _page_sdk(target: dict[str, Any]) -> int:
    import ssl

    import httpx
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
        DeltaRequestBuilder,
    )
    from msgraph.graph_request_adapter import GraphRequestAdapter
    from msgraph.graph_service_client import GraphServiceClient
    from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]

    from graphsim.testing import SimHandle, token_for

    sim = SimHandle.__new__(SimHandle)
    sim.authority_host, sim.ca_pem_path = target["authority_host"], target["ca_pem_path"]
    token = token_for(sim, target["tenant"], target["client_id"], target["secret"], target["scope"])

    class Tokens(AccessTokenProvider):
        """The app token from the simulator's Entra (as azure-identity would hand it)."""

        async def get_authorization_token(self, uri: str, additional: Any = None) -> str:
            return token

        def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
            return AllowedHostsValidator(["127.0.0.1"])

    async def page_all() -> int:
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(
                verify=ssl.create_default_context(cafile=target["ca_pem_path"]), timeout=60
            )
        )
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(Tokens()), http)
        adapter.base_url = target["graph"]
        client = GraphServiceClient(request_adapter=adapter)
        lo, hi = target["window"]
        items = 0
        for uid in target["users"]:
            delta = client.users.by_user_id(uid).calendar_view.delta
            config = RequestConfiguration(
                query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                    start_date_time=lo, end_date_time=hi
                )
            )
            config.headers.add("Prefer", f"odata.maxpagesize={PAGE}")
            config.headers.add("Prefer", 'outlook.timezone="UTC"')
            page = await delta.get(request_configuration=config)
            while page is not None:
                items += len(page.value or [])
                if not page.odata_next_link:
                    break
                page = await delta.with_url(page.odata_next_link).get()
        return items

    return asyncio.run(page_all())


def _client_main(args: argparse.Namespace) -> None:
    target = json.loads(Path(args.target).read_text())
    if args.client == "sdk":  # imported before the clock and the baseline, as an app would
        import msgraph  # noqa: F401
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    items = (_page_sdk if args.client == "sdk" else _page_httpx)(target)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"items": items, "seconds": seconds, "peak_kib": peak, "growth_kib": peak - before}
        )
    )


def _run_client(kind: str, target_path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--client", kind, "--target", str(target_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- calsync through the dev host -----------------------------------------------------------


def _top(collapsed: Path, n: int = 15) -> list[tuple[str, float]]:
    """The `n` functions with the most own samples in py-spy's collapsed stacks, as shares."""
    own: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [(name, count / total) for name, count in ranked] if total else []


def _rounds(collapsed: Path, n: int = 25) -> list[tuple[str, float]]:
    """Our functions (shared/) by inclusive share of the samples of threads inside a sync
    round: where the round's wall time goes."""
    incl: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(f.startswith("run_sync_request ") for f in frames):
            continue
        total += int(count)
        for frame in dict.fromkeys(f for f in frames if "(shared/" in f):
            incl[frame] = incl.get(frame, 0) + int(count)
    ranked = sorted(incl.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [(name, count / total) for name, count in ranked] if total else []


def _calsync(stack: Any, users: list[tuple[str, str]], profile: str | None) -> dict[str, Any]:
    from shared.adapters.storage import StorageClients
    from shared.adapters.tables import TableState
    from shared.core.model import MailboxKey
    from shared.settings import StorageSettings

    pid = stack.hosts[0].process.pid
    before, _ = rss_kib(pid)
    spy = None
    if profile:
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--output",
                profile,
                "--rate",
                "50",
                "--idle",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches
    seconds = enrol_and_sync(stack, [u for u, _ in users], timeout=3600)
    _, peak = rss_kib(pid)
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        spy.wait(timeout=60)
        table(
            "dev host, own time by function (py-spy)",
            ["function", "share"],
            [[name, f"{share:.1%}"] for name, share in _top(Path(profile or ""))],
        )
        table(
            "sync rounds' wall time, inclusive, by function (py-spy)",
            ["function", "share"],
            [[name, f"{share:.1%}"] for name, share in _rounds(Path(profile or ""))],
        )
    clients = StorageClients(StorageSettings(connection_string=stack.storage))
    published = seconds + _published_after(clients, stack.tenant_id, [uid for _, uid in users])
    state = TableState(clients)
    rows = sum(len(state.stored_versions(MailboxKey(stack.tenant_id, uid))) for _, uid in users)
    return {
        "items": rows,
        "seconds": seconds,
        "published_seconds": published,
        "peak_kib": peak,
        "growth_kib": peak - before,
    }


def _published_after(clients: Any, tenant_id: str, user_ids: list[str]) -> float:
    """Seconds from now until every mailbox's changes are on the `calendar-changes` queue (its
    publisher's cursor at the mailbox's last sequence); 0 where the round itself sends them."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared.adapters.feed_tables import ChangeLog
    from shared.core.model import MailboxKey
    from shared.names import DELIVERIES_TABLE

    try:
        from shared.services.publish import QUEUE_TARGET
    except ImportError:  # a tree whose round sends them
        return 0.0
    feed, cursors = ChangeLog(clients), clients.table(DELIVERIES_TABLE)
    started = time.monotonic()
    for uid in user_ids:
        key = MailboxKey(tenant_id, uid)
        while True:
            try:
                row = cursors.get_entity(QUEUE_TARGET.id, key.partition)
                if int(row.get("delivered", -1)) >= feed.latest(key):
                    break
            except ResourceNotFoundError:
                pass
            if time.monotonic() - started > 3600:
                raise SystemExit(f"{uid}: changes not published in an hour")
            time.sleep(0.2)
    return time.monotonic() - started


def _shape(
    mailboxes: int, events: int, runs: int, profile: str | None, clients: list[str]
) -> dict[str, Any]:
    from devhost.local.stack import local_stack
    from graphsim.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    results: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    for _ in range(runs):
        with local_stack() as stack:
            users = seed_users(stack, "sync", mailboxes)
            now = datetime.now(UTC)
            start = (now - timedelta(weeks=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            for upn, _ in users:
                stack.sim.control.bulk_events(upn, events, start, step_minutes=30)
            target = stack.workdir / "target.json"
            target.write_text(
                json.dumps(
                    {
                        "graph": stack.sim.graph_base_url,
                        "authority_host": stack.sim.authority_host,
                        "ca_pem_path": stack.sim.ca_pem_path,
                        "scope": stack.sim.graph_scope,
                        "tenant": stack.tenant_id,
                        "client_id": DEMO_CLIENT_ID,
                        "secret": DEMO_CLIENT_SECRET,
                        "users": [uid for _, uid in users],
                        "window": _window(now),
                    }
                )
            )
            if "httpx" in results:
                results["httpx"].append(_run_client("httpx", target))
            if "msgraph-sdk" in results:
                results["msgraph-sdk"].append(_run_client("sdk", target))
            if "calsync" in results:
                results["calsync"].append(_calsync(stack, users, profile))
    expected = mailboxes * events
    rows: dict[str, Any] = {}
    for name, samples in results.items():
        rows[name] = {
            "events_per_s": median([s["items"] / s["seconds"] for s in samples]),
            "published_per_s": median(
                [s["items"] / s.get("published_seconds", s["seconds"]) for s in samples]
            ),
            "seconds": median([s["seconds"] for s in samples]),
            "peak_rss_mib": median([s["peak_kib"] / 1024 for s in samples]),
            "rss_growth_mib": median([s["growth_kib"] / 1024 for s in samples]),
            "all_events": all(s["items"] == expected for s in samples),
            "runs": samples,
        }
    base = rows["httpx"]["events_per_s"] if "httpx" in rows else 0.0
    for row in rows.values():
        row["of_httpx"] = row["events_per_s"] / base if base else 0.0
    return {"mailboxes": mailboxes, "events": events, "clients": rows}


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _args(argv)
    if args.client:
        _client_main(args)
        return {}
    shapes = []
    for shape in args.shapes.split(","):
        mailboxes, events = (int(x) for x in shape.lower().split("x"))
        shapes.append(_shape(mailboxes, events, args.runs, args.profile, args.clients.split(",")))
    rows = [
        [
            f"{s['mailboxes']}x{s['events']}",
            name,
            c["events_per_s"],
            f"{c['of_httpx']:.0%}",
            c["published_per_s"],
            c["peak_rss_mib"],
            c["rss_growth_mib"],
            c["all_events"],
        ]
        for s in shapes
        for name, c in s["clients"].items()
    ]
    table(
        f"initial sync (medians of {args.runs} run(s))",
        [
            "shape",
            "client",
            "events/s",
            "of httpx",
            "feed published/s",
            "peak RSS MiB",
            "RSS growth MiB",
            "all events",
        ],
        rows,
    )
    return write_json(args.json, "initial_sync", vars(args), shapes)


if __name__ == "__main__":
    run()
