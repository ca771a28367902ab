"""Start a private Azurite (tables, queues, blobs) for the dev host and the tests; leave nothing.

Rule: Azurite listens on loopback only, on ports the OS picks (`--*Port 0`, read back from
Azurite's own "successfully listening at" lines, so two runs never race for a port), keeps data
in memory (`--inMemoryPersistence`), sends no telemetry, and runs with a throwaway working
directory. On exit, normal or not (Ctrl-C included), its whole process group is terminated
(then killed after a grace period) and the directory removed. On Linux the child also gets
SIGKILL if this process dies first (PR_SET_PDEATHSIG), so a killed test run leaves no orphan
process; the directory such a run leaves is removed by the next launch.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Azurite's documented well-known development account: public, and only valid against Azurite.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# The defaults `UseDevelopmentStorage=true` stands for (Azurite's fixed ports).
DEVELOPMENT_STORAGE = (
    f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
    f"BlobEndpoint=http://127.0.0.1:10000/{ACCOUNT_NAME};"
    f"QueueEndpoint=http://127.0.0.1:10001/{ACCOUNT_NAME};"
    f"TableEndpoint=http://127.0.0.1:10002/{ACCOUNT_NAME};"
)
_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service is successfully listening at \S+:(\d+)"
)
_REPO = Path(__file__).resolve().parents[1]
_PREFIX = "calsync-azurite-"


class AzuriteError(RuntimeError):
    """Azurite could not be found or did not start; the message says what to do."""


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    """The storage connection string for an Azurite on loopback with these ports."""
    base = f"http://127.0.0.1:{{}}/{ACCOUNT_NAME}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base.format(blob_port)};QueueEndpoint={base.format(queue_port)};"
        f"TableEndpoint={base.format(table_port)};"
    )


def resolve_connection_string(value: str) -> str:
    """Expand `UseDevelopmentStorage=true` (which the storage SDKs do not parse) to its meaning."""
    return DEVELOPMENT_STORAGE if value.strip().lower() == "usedevelopmentstorage=true" else value


def find_azurite() -> Path:
    """The project's pinned Azurite (node_modules/.bin/azurite), or AzuriteError saying how."""
    path = _REPO / "node_modules" / ".bin" / "azurite"
    if not os.access(path, os.X_OK):
        raise AzuriteError(
            f"Azurite is not installed at {path}; run `bash scripts/bootstrap` (npm ci) first"
        )
    return path


def _die_with_parent() -> Callable[[], object] | None:
    """A pre-exec hook asking Linux to SIGKILL the child when the launching thread ends.

    The C function is resolved here, in the parent: the forked child only calls it (no imports
    or lookups between fork and exec). PR_SET_PDEATHSIG follows the *thread* that forked, so
    run Azurite from a thread that outlives the `with` block (the main thread does).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return functools.partial(prctl, pr_set_pdeathsig, int(signal.SIGKILL))


@contextlib.contextmanager
def run_azurite(*, start_timeout: float = 30.0, memory_limit_mb: int = 256) -> Iterator[str]:
    """Run Azurite for the duration of the `with` block and yield its connection string."""
    exe = find_azurite()
    _sweep_orphans()
    workdir = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (workdir / "owner.pid").write_text(str(os.getpid()))
    log_path = workdir / "azurite.log"
    # --location cannot be combined with --inMemoryPersistence: the throwaway cwd plays its part.
    args = [str(exe), "--silent", "--inMemoryPersistence", "--disableTelemetry"]
    args += ["--skipApiVersionCheck", f"--extentMemoryLimit={memory_limit_mb}"]
    for service in ("blob", "queue", "table"):
        args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", "0"]
    proc: subprocess.Popen[bytes] | None = None
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(  # noqa: S603  # fixed argv, no shell
                args,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: one killpg stops all of it
                preexec_fn=_die_with_parent(),
            )
        ports = _wait_listening(proc, log_path, start_timeout)
        yield connection_string(ports["Blob"], ports["Queue"], ports["Table"])
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _sweep_orphans() -> None:
    """Remove directories left by launchers that were killed before they could clean up."""
    for path in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            owner = int((path / "owner.pid").read_text())
            os.kill(owner, 0)  # raises if no such process
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (OSError, ValueError):  # not ours to judge (no or odd pid file, no permission)
            continue


def _wait_listening(
    proc: subprocess.Popen[bytes], log_path: Path, timeout: float
) -> dict[str, int]:
    """Poll Azurite's log until all three services listen and accept; AzuriteError otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        ports = {m.group(1): int(m.group(2)) for m in _LISTENING.finditer(text)}
        if len(ports) == 3 and all(_accepts(p) for p in ports.values()):
            return ports
        if proc.poll() is not None:
            raise AzuriteError(f"Azurite exited with code {proc.returncode}: {text[-800:]}")
        time.sleep(0.05)  # polling a child's log with a deadline; nothing to wait on instead
    text = log_path.read_text(errors="replace")
    raise AzuriteError(f"Azurite did not listen within {timeout:.0f}s; its output: {text[-800:]}")


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the whole group, wait, then SIGKILL what is left; reap the child."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # The leader may be gone while others in its group linger: make sure none is left.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
