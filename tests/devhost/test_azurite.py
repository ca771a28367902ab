"""The Azurite launcher: loopback, free ports, working storage, and nothing left afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from devhost.azurite import _sweep_orphans, resolve_connection_string, run_azurite

from .helpers import wait_until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PREFIX = "calsync-azurite-"


def azurite_processes(parent: int) -> dict[int, str]:
    """pid -> working directory of each child of `parent` running in a launcher's directory."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and Path(cwd.removesuffix(" (deleted)")).name.startswith(PREFIX):
            found[int(entry.name)] = cwd
    return found


def endpoints(conn: str) -> dict[str, tuple[str, int]]:
    parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
    out = {}
    for key in ("BlobEndpoint", "QueueEndpoint", "TableEndpoint"):
        host, port = parts[key].removeprefix("http://").split("/", 1)[0].split(":")
        out[key] = (host, int(port))
    return out


def accepts(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def test_runs_on_loopback_free_ports_and_leaves_nothing() -> None:
    """Azurite works on loopback ports of its own; afterwards no process, port or directory."""
    before = azurite_processes(os.getpid())  # e.g. the session's own Azurite
    with run_azurite() as conn:
        where = endpoints(conn)
        assert {host for host, _ in where.values()} == {"127.0.0.1"}
        assert len({port for _, port in where.values()}) == 3
        assert not {10000, 10001, 10002} & {port for _, port in where.values()}
        assert all(accepts(a) for a in where.values())
        queue = QueueClient.from_connection_string(conn, "launcher-check")
        queue.create_queue()
        queue.send_message("hello")
        assert [m.content for m in queue.receive_messages()] == ["hello"]
        ours = {p: c for p, c in azurite_processes(os.getpid()).items() if p not in before}
        assert len(ours) == 1, "the launcher's Azurite process was not found"
        assert all(Path(cwd).is_dir() for cwd in ours.values())
    assert not any(Path(f"/proc/{pid}").exists() for pid in ours)
    assert not any(Path(cwd.removesuffix(" (deleted)")).exists() for cwd in ours.values())
    assert not any(accepts(a) for a in where.values())


def test_ctrl_c_inside_the_block_still_stops_azurite() -> None:
    """A KeyboardInterrupt propagates, and Azurite is stopped and its directory removed."""
    before = azurite_processes(os.getpid())
    seen: dict[int, str] = {}

    def interrupted_run() -> str:
        with run_azurite() as conn:
            seen.update(
                {p: c for p, c in azurite_processes(os.getpid()).items() if p not in before}
            )
            raise KeyboardInterrupt(conn)

    with pytest.raises(KeyboardInterrupt) as caught:
        interrupted_run()
    ours, conn = seen, str(caught.value.args[0])
    assert ours
    assert not any(Path(f"/proc/{pid}").exists() for pid in ours)
    assert not any(accepts(a) for a in endpoints(conn).values())


def test_development_storage_shorthand_is_expanded() -> None:
    """UseDevelopmentStorage=true means Azurite's well-known account on its default ports."""
    expanded = resolve_connection_string("UseDevelopmentStorage=true")
    assert "AccountName=devstoreaccount1" in expanded
    assert endpoints(expanded)["QueueEndpoint"] == ("127.0.0.1", 10001)
    assert resolve_connection_string("AccountName=x;AccountKey=y") == "AccountName=x;AccountKey=y"


def test_killed_launcher_leaves_no_process_and_its_directory_is_swept(tmp_path: Path) -> None:
    """A SIGKILLed launcher takes Azurite with it; the next launch sweeps the directory left."""
    script = (
        "import sys\n"
        "from devhost.azurite import run_azurite\n"
        "with run_azurite():\n"
        "    print('up', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as launcher:
        assert launcher.stdout.readline().strip() == "up"
        ours = azurite_processes(launcher.pid)
        assert len(ours) == 1
        launcher.kill()
        launcher.wait()
        wait_until(
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in ours), 10, "Azurite to die"
        )
    left = {Path(c.removesuffix(" (deleted)")) for c in ours.values()}
    assert all(d.exists() for d in left)  # nobody could clean up after a SIGKILL...
    _sweep_orphans()
    assert not any(d.exists() for d in left)  # ...until the next launch sweeps
