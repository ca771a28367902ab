"""Cold start: import of function_app in fresh interpreters, and the time a new host process
takes to answer its first change notification.

    .venv/bin/python bench/cold_start.py [--imports 9] [--hosts 5] [--json out.json]

- import: `import function_app` timed inside `--imports` fresh interpreters (the Azure SDKs,
  MSAL and httpx load on first use, so this is what every cold start pays first).
- first notification: one local system (devhost/local/stack.py); one mailbox enrolled, and a
  subscription record with a clientState this benchmark knows stored beside the real one (as
  bench/intake.py does). Then `--hosts` times a new dev host process is started (a Functions
  host's cold start: interpreter, function_app, the host's listener) while a client POSTs a
  valid notification to its port every 20 ms; the time from the spawn to the first 202 is
  the figure. The host is stopped before the next one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import ROOT, median, pct, table, write_json

CODE = "import time; t=time.perf_counter(); import function_app; print(time.perf_counter()-t)"


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--imports", type=int, default=9)
    p.add_argument("--hosts", type=int, default=5)
    p.add_argument("--json", help="write the report here")
    return p.parse_args(argv)


def _imports(runs: int) -> list[float]:
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", CODE], cwd=ROOT, check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(runs)
    ]


def _first_answer(stack: Any, box: tuple[str, str, str]) -> float:
    """Seconds from spawning a new dev host to its first 2xx answer to a notification POST."""
    import httpx

    from devhost.local.stack import _free_port

    uid, sub, secret = box
    body = {
        "value": [
            {
                "subscriptionId": sub,
                "clientState": secret,
                "tenantId": stack.tenant_id,
                "changeType": "updated",
                "resource": f"Users/{uid}/Events/cold",
                "resourceData": {"id": "cold"},
            }
        ]
    }
    port = _free_port()
    answered: list[float] = []
    stop = threading.Event()
    began = time.monotonic()

    def knock() -> None:
        with httpx.Client(verify=stack.sim.ssl_context(), timeout=5) as client:
            while not stop.is_set():
                try:
                    answer = client.post(f"https://127.0.0.1:{port}/api/notifications", json=body)
                    if 200 <= answer.status_code < 300:
                        answered.append(time.monotonic() - began)
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)

    knocker = threading.Thread(target=knock)
    knocker.start()
    original = stack.env["_PUBLIC_PORT"]
    stack.env["_PUBLIC_PORT"] = str(port)  # start_host(public=True) binds the public port
    try:
        host = stack.start_host(public=True)
    finally:
        stack.env["_PUBLIC_PORT"] = original
    knocker.join(timeout=60)
    stop.set()
    host.stop()
    stack.hosts.remove(host)
    if not answered:
        raise SystemExit("the new host never answered the notification")
    return answered[0]


def run(argv: list[str] | None = None) -> dict[str, Any]:
    from intake import _enrol

    from devhost.local.stack import local_stack

    args = _args(argv)
    imports = _imports(args.imports)
    with local_stack() as stack:
        (box,) = _enrol(stack, 1)
        first = [_first_answer(stack, box) for _ in range(args.hosts)]
    result: dict[str, Any] = {
        "import_ms": {
            "p50": 1000 * median(imports),
            "min": 1000 * min(imports),
            "max": 1000 * max(imports),
            "runs": len(imports),
        },
        "first_notification_s": {
            "p50": median(first),
            "p99": pct(first, 0.99),
            "max": max(first),
            "runs": len(first),
            "samples": first,
        },
    }
    table(
        "cold start",
        ["what", "p50", "max", "runs"],
        [
            [
                "import function_app (ms)",
                result["import_ms"]["p50"],
                result["import_ms"]["max"],
                len(imports),
            ],
            [
                "new host: spawn -> first notification 202 (s)",
                median(first),
                max(first),
                len(first),
            ],
        ],
    )
    return write_json(args.json, "cold_start", vars(args), result)


if __name__ == "__main__":
    run()
