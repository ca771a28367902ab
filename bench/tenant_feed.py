"""The tenant feed's read side (GET /api/tenants/{tenant}/changes, `services.tenant_feed.read`)
against Azurite: a tenant of `--mailboxes` mailboxes with `--changes` changes each, read from
the start to the end with pages of `--limit`, then idle polls (nothing new: the steady state of
a consumer). Reported: pages, p50/p99 per page, the whole drain, the idle poll, the cursor's
length. The changes are written through the mirror (`services.mirror.apply_items`, one page
of `--changes` new events per mailbox), so the feed read is the one consumers get; the writes
are not measured.

    .venv/bin/python bench/tenant_feed.py [--mailboxes 10,100] [--changes 20] [--limit 100]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import median, pct, table, write_json  # (it puts the repository on sys.path too)


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mailboxes", default="10,100", help="comma list of tenant sizes")
    p.add_argument("--changes", type=int, default=20, help="changes per mailbox")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--polls", type=int, default=10, help="idle polls after the drain")
    p.add_argument("--json", help="write the results here")
    return p.parse_args(argv)


def _event(start: datetime, n: int) -> dict[str, Any]:
    """A Graph event as delta gives it, `n` minutes after `start`."""
    begin = start + timedelta(days=1, minutes=n)
    fmt = "%Y-%m-%dT%H:%M:%S.0000000"
    return {
        "id": f"event-{n}",
        "changeKey": f"ck-{n}",
        "subject": f"Event {n}",
        "start": {"dateTime": begin.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (begin + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
        "type": "singleInstance",
        "showAs": "busy",
    }


def _run(connection: str, mailboxes: int, changes: int, limit: int, polls: int) -> dict[str, float]:
    from shared.compose import build_services
    from shared.core.model import DeltaItem, MailboxKey
    from shared.core.state import MailboxRecord
    from shared.secrets import EnvSecrets
    from shared.services import mirror, tenant_feed
    from shared.settings import Settings

    tenant = str(uuid.uuid4())
    settings = Settings.from_env(
        {"TENANT_IDS": tenant, "CLIENT_ID": str(uuid.uuid4()), "AzureWebJobsStorage": connection}
    )
    svc = build_services(settings, secrets=EnvSecrets({}))
    assert svc.changes is not None
    start = datetime.now(UTC)
    for m in range(mailboxes):
        key = MailboxKey(tenant, str(uuid.uuid4()))
        svc.state.put_mailbox(MailboxRecord(key, f"u{m}@bench.example"))
        record = svc.state.get_mailbox(key)
        assert record is not None
        mirror.apply_items(
            svc, record, [DeltaItem(f"event-{n}", _event(start, n)) for n in range(changes)]
        )
    pages: list[float] = []
    cursor: str | None = None
    got = 0
    began = time.perf_counter()
    while True:
        t = time.perf_counter()
        page = tenant_feed.read(svc, tenant, cursor, str(limit))
        pages.append(time.perf_counter() - t)
        got += page["count"]
        cursor = page["next"]
        if not page["more"]:
            break
    drain = time.perf_counter() - began
    assert got == mailboxes * changes, (got, mailboxes * changes)
    idle: list[float] = []
    for _ in range(polls):
        t = time.perf_counter()
        assert tenant_feed.read(svc, tenant, cursor, str(limit))["count"] == 0
        idle.append(time.perf_counter() - t)
    svc.graph.close()
    return {
        "mailboxes": mailboxes,
        "changes": got,
        "pages": len(pages),
        "page_p50_ms": round(1000 * median(pages), 1),
        "page_p99_ms": round(1000 * pct(pages, 0.99), 1),
        "drain_s": round(drain, 2),
        "idle_poll_p50_ms": round(1000 * median(idle), 1),
        "cursor_chars": len(cursor or ""),
    }


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    from devhost.azurite import run_azurite

    rows = []
    with run_azurite() as connection:
        for size in (int(s) for s in args.mailboxes.split(",")):
            rows.append(_run(connection, size, args.changes, args.limit, args.polls))
    headers = list(rows[0])
    table(
        "tenant feed (GET /api/tenants/{tenant}/changes)",
        headers,
        [[r[h] for h in headers] for r in rows],
    )
    write_json(args.json, "tenant_feed", vars(args), rows)


if __name__ == "__main__":
    main()
