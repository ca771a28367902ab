"""`run_simulator()`: start `python -m graphsim` as a subprocess and stop it with no leftovers.

Rule: tests, benchmarks and the demo all start the simulator this way: a fresh state directory,
the ready line read with a deadline, a handle with the URLs, the CA path and a control client;
on exit the process is terminated (then killed if it lingers) and the directory removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from graphsim.client import SimClient

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SimHandle:
    graph_base_url: str
    authority_host: str
    key_vault_url: str
    key_vault_resource: str
    control_url: str
    ca_pem_path: str
    host_cert_path: str
    host_key_path: str
    process: subprocess.Popen[bytes]
    control: SimClient
    state_dir: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts only this run's CA (for httpx `verify=`)."""
        return ssl.create_default_context(cafile=self.ca_pem_path)

    @property
    def graph_scope(self) -> str:
        """The client-credentials scope for Graph: scheme+host of the Graph base URL."""
        return self.authority_host + "/.default"

    @property
    def key_vault_scope(self) -> str:
        return self.key_vault_resource + "/.default"


def token_for(sim: SimHandle, tenant: str, client_id: str, secret: str, scope: str = "") -> str:
    """An app-only access token from the simulator's Entra (client secret flow), for tests,
    benchmarks and the demo that call Graph without going through the app."""
    response = httpx.post(
        f"{sim.authority_host}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": scope or sim.graph_scope,
        },
        verify=sim.ssl_context(),
    )
    if response.status_code != 200:
        raise RuntimeError(f"token request refused: {response.text}")
    return str(response.json()["access_token"])


def _read_ready_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, str]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"graphsim did not print its ready line within {timeout:g} s")
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"graphsim exited early with code {proc.wait()}")
            buffer += chunk
    return json.loads(buffer.split(b"\n", 1)[0])  # type: ignore[no-any-return]


@contextlib.contextmanager
def run_simulator(
    *,
    seed_demo: bool = False,
    seed: int = 0,
    cpu: int | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[SimHandle]:
    """Run one simulator process for the duration of the `with` block."""
    state_dir = Path(tempfile.mkdtemp(prefix="graphsim-"))
    command = [sys.executable, "-m", "graphsim", "--port", "0", "--state-dir", str(state_dir)]
    command += ["--seed", str(seed)] + (["--seed-demo"] if seed_demo else [])
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    log = (state_dir / "stderr.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, env=env
    )
    control: SimClient | None = None
    try:
        try:
            ready = _read_ready_line(proc, startup_timeout)
        except (TimeoutError, RuntimeError) as exc:
            log.flush()
            detail = (state_dir / "stderr.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; stderr:\n{detail}") from None
        control = SimClient(ready["control_url"], ready["ca_pem_path"])
        yield SimHandle(
            process=proc,
            control=control,
            state_dir=state_dir,
            **{
                k: ready[k]
                for k in (
                    "graph_base_url",
                    "authority_host",
                    "key_vault_url",
                    "key_vault_resource",
                    "control_url",
                    "ca_pem_path",
                    "host_cert_path",
                    "host_key_path",
                )
            },
        )
    finally:
        if control is not None:
            control.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()
        shutil.rmtree(state_dir, ignore_errors=True)
