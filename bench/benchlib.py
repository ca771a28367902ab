"""What every benchmark shares: percentiles, the printed table, the JSON report with the machine
it ran on, enrolling mailboxes through the admin API until their first sync is done, and the
stacks' common steps: a burst of new events, waiting for the mirror or the sync queue.

Rule: a benchmark reports medians and p99 over repeated samples and puts the alternatives it is
compared with in the same run; this module only formats and never decides what is measured.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pct(samples: Sequence[float], q: float) -> float:
    """The `q` quantile (nearest rank, 0 < q < 1) of `samples`; 0.0 for none."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else 0.0


def machine() -> dict[str, Any]:
    """Cores, memory and the date: what docs/benchmarks.md quotes beside every figure."""
    mem_kib = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns as wide as their widest cell; printed and returned."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title]
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_json(path: str | None, name: str, args: dict[str, Any], result: Any) -> dict[str, Any]:
    """The report: the benchmark's name, its arguments, the machine, the result."""
    report = {"benchmark": name, "args": args, "machine": machine(), "result": result}
    if path:
        Path(path).write_text(json.dumps(report, indent=2, default=str))
    return report


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of process `pid` in KiB, from /proc (Linux)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in values:
            values[key] = int(line.split()[1])
    return values["VmRSS"], values["VmHWM"]


def enrol_and_sync(stack: Any, upns: Sequence[str], *, timeout: float = 600.0) -> float:
    """Enrol `upns` through the admin API and wait until each has finished its first sync;
    the seconds from the first PUT to the last first sync."""
    started = time.monotonic()
    with stack.admin() as api:
        for upn in upns:
            answer = api.put(f"/mailboxes/{stack.tenant_id}/{upn}", json={})
            if answer.status_code not in (200, 201):
                raise SystemExit(f"enrolling {upn}: {answer.status_code} {answer.text}")
        deadline = started + timeout
        for upn in upns:
            while not api.get(f"/mailboxes/{stack.tenant_id}/{upn}").json()["status"]["lastSync"]:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{upn}: first sync not done in {timeout:g} s")
                time.sleep(0.1)
    return time.monotonic() - started


def seed_users(stack: Any, prefix: str, count: int) -> list[tuple[str, str]]:
    """`count` new users of the stack's tenant in the simulator: (upn, user id)."""
    import uuid

    upns = [f"{prefix}-{uuid.uuid4().hex[:8]}@contoso.example" for _ in range(count)]
    seeded = stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": u} for u in upns])
    return [(u, str(seeded["users"][u]).lower()) for u in upns]


def mirror_state(stack: Any) -> Any:
    """The stack's Table state, read through `stack.storage` (past any counting proxy)."""
    from shared.adapters.storage import StorageClients
    from shared.adapters.tables import TableState
    from shared.settings import StorageSettings

    return TableState(StorageClients(StorageSettings(connection_string=stack.storage)))


def slot(at: datetime, n: int) -> dict[str, Any]:
    """The start and end of the `n`th half hour event of a burst: from 2 h after `at`'s hour,
    one an hour, over two days."""
    start = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2 + n % 48)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime(fmt), "timeZone": "UTC"},
    }


def wait_mirrored(stack: Any, state: Any, uid: str, ids: Sequence[str], timeout: float) -> None:
    """Until every one of `ids` is in the mailbox's mirror (SystemExit after `timeout` s)."""
    from shared.core.model import MailboxKey

    key = MailboxKey(stack.tenant_id, uid)
    deadline = time.monotonic() + timeout
    while len(state.stored_versions(key, list(ids))) < len(ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(ids)} changes did not reach the mirror in {timeout:g} s")
        time.sleep(0.05)


def burst_created(
    stack: Any, user: tuple[str, str], count: int, subject: str
) -> tuple[list[str], float]:
    """Create `count` events in one mailbox at once (`slot`s from now, the stack's clock) and
    wait until all are mirrored: their ids and the seconds the creation took."""
    state = mirror_state(stack)
    upn, uid = user
    now = datetime.now(UTC) + timedelta(seconds=stack.offset)
    began = time.monotonic()
    ids = [
        stack.sim.control.create_event(upn, {"subject": f"{subject} {n}", **slot(now, n)})["id"]
        for n in range(count)
    ]
    spread = time.monotonic() - began
    wait_mirrored(stack, state, uid, ids, 120)
    return ids, spread


def wait_sync_queue_empty(stack: Any, timeout: float, what: str, poll: float = 0.5) -> None:
    """Until the stack's sync queue holds no message (SystemExit naming `what` after
    `timeout` s)."""
    from azure.storage.queue import QueueClient

    from shared.names import SYNC_QUEUE

    queue = QueueClient.from_connection_string(stack.storage, SYNC_QUEUE)
    deadline = time.monotonic() + timeout
    while queue.get_queue_properties().approximate_message_count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not finish in {timeout:g} s")
        time.sleep(poll)
