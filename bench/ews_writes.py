"""Writes to a mailbox on Exchange Server through the write service: time per write and EWS
calls per write.

    .venv/bin/python bench/ews_writes.py [--writes 20] [--json out.json]

Runs Azurite and the EWS simulator (exchangelib over NTLM and TLS on loopback; no dev host:
the write service is called directly, as the HTTP trigger does). `--writes` single events
are created, then each updated (the mirror's ChangeKey, NeverOverwrite), then each deleted,
one at a time; then one weekly series of 4 is created and one occurrence edited. Reported per
action: p50/p90 of the time the call takes (the EWS calls, reading the answer back and the
mirror's write with its change events) and the EWS operations it cost, from ewssim's counters.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import pct, table, write_json  # (it puts the repository on sys.path too)

OPERATIONS = ("CreateItem", "UpdateItem", "DeleteItem", "GetItem", "FindItem")


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--writes", type=int, default=20, help="single events per action")
    p.add_argument("--json", help="write the results here")
    return p.parse_args(argv)


def _slot(i: int) -> dict[str, Any]:
    day = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    start = day + timedelta(days=1 + i // 8, hours=i % 8)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
    }


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _args(argv)
    from devhost.azurite import run_azurite
    from ewssim.testing import run_ewssim
    from shared.compose import build_services
    from shared.core.ews import ews_user_id
    from shared.core.model import MailboxKey
    from shared.secrets import EnvSecrets
    from shared.services import mailboxes, writes
    from shared.settings import Settings

    rows: list[list[Any]] = []
    result: dict[str, Any] = {}
    with run_azurite() as storage, run_ewssim() as sim:
        sim.add_account("CONTOSO\\svc-bench", "bench-password", ["*"])
        tenant, smtp = str(uuid.uuid4()), "bench@contoso.example"
        sim.add_mailbox(smtp)
        provider = {"provider": "ews", "ewsUrl": sim.ews_url, "username": "CONTOSO\\svc-bench"}
        settings = Settings.from_env(
            {
                "TENANT_IDS": tenant,
                "CLIENT_ID": str(uuid.uuid4()),
                "CA_BUNDLE": sim.ca_pem_path,
                "AzureWebJobsStorage": storage,
                "MAILBOX_PROVIDERS": json.dumps({tenant: provider}),
            }
        )
        secrets = EnvSecrets({"SECRET_EWS_PASSWORD": "bench-password"})
        svc = build_services(settings, secrets=secrets)
        try:
            mailboxes.enrol(svc, tenant, smtp, {})
            user = ews_user_id(smtp)

            def timed(label: str, action: str, bodies: list[dict[str, Any]]) -> list[str]:
                before = sim.calls()
                samples, ids = [], []
                for body in bodies:
                    began = time.perf_counter()
                    view, _ = writes.run_write(svc, tenant, user, {"action": action, **body}, None)
                    samples.append(time.perf_counter() - began)
                    if view["status"] != "done":
                        raise SystemExit(f"{label}: the write is {view['status']}: {view}")
                    ids.append(str(view["eventId"]))
                after = sim.calls()
                calls = {o: (after.get(o, 0) - before.get(o, 0)) / len(bodies) for o in OPERATIONS}
                result[label] = {
                    "n": len(bodies),
                    "p50_ms": round(1000 * pct(samples, 0.5), 1),
                    "p90_ms": round(1000 * pct(samples, 0.9), 1),
                    "ews_calls": calls,
                }
                per = ", ".join(f"{o} {c:g}" for o, c in calls.items() if c)
                rows.append(
                    [label, len(bodies), result[label]["p50_ms"], result[label]["p90_ms"], per]
                )
                return ids

            n = args.writes
            ids = timed(
                "create", "create", [{"event": {"subject": f"b{i}", **_slot(i)}} for i in range(n)]
            )
            timed("update", "update", [{"eventId": e, "event": {"subject": "moved"}} for e in ids])
            timed("delete", "delete", [{"eventId": e} for e in ids])
            slot = _slot(0)
            day = datetime.fromisoformat(slot["start"]["dateTime"])
            weekly = {
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": [day.strftime("%A").lower()],
                },
                "range": {
                    "type": "numbered",
                    "startDate": day.date().isoformat(),
                    "numberOfOccurrences": 4,
                },
            }
            timed(
                "series create (4)",
                "create",
                [{"event": {"subject": "s", **slot, "recurrence": weekly}}],
            )
            rows_now = svc.state.list_events(
                MailboxKey(tenant, user), columns=["event_id", "series_master_id"]
            )
            occurrence = next(str(r["event_id"]) for r in rows_now if r.get("series_master_id"))
            timed("occurrence edit", "update", [{"eventId": occurrence, "event": {"subject": "x"}}])
        finally:
            if svc.ews is not None:
                svc.ews.close()
            svc.graph.close()
    headers = ["action", "n", "p50 ms", "p90 ms", "EWS calls per write"]
    table("EWS writes through the write service (ewssim, Azurite)", headers, rows)
    write_json(args.json, "ews_writes", vars(args), result)
    return result


if __name__ == "__main__":
    run()
