"""`python -m devhost` as a developer runs it: the real function_app, its own Azurite."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from .helpers import wait_until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_main_serves_health_with_its_own_azurite_and_stops_clean(tmp_path: Path) -> None:
    """It starts its own Azurite, serves /api/health (storage ok), and exits 0 clean on SIGINT."""
    settings = tmp_path / "local.settings.json"
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "TENANT_IDS": TENANT,
        "CLIENT_ID": CLIENT,
    }
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    env = {k: v for k, v in os.environ.items() if k not in values and not k.startswith("DEVHOST")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--port", "0", "--settings", str(settings)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)
    reader.start()

    def url() -> str | None:
        while not lines.empty():
            output.append(lines.get())
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", "".join(output))
        if proc.poll() is not None:
            raise AssertionError(f"the dev host exited early: {''.join(output)}")
        return found.group(1) if found else None

    try:
        base = wait_until(url, 60, "the dev host to listen")
        assert "health: [GET] " in "".join(output)
        r = httpx.get(f"{base}/api/health", timeout=20, trust_env=False)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["storage"]["tables"] == body["storage"]["queues"] == "ok"
        # No client secret is configured here: storage is fine, the tenant has no token.
        assert body["status"] == "degraded"
        assert body["credentials"] == {TENANT: {"ok": False, "error": "secret_not_found"}}
        azurite = children(proc.pid)
        assert azurite, "no Azurite child process"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(10)  # the pipe is at its end once the process exited
        proc.stdout.close()
    assert not any(Path(f"/proc/{pid}").exists() for pid in azurite)
