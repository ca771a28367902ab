"""The whole system on one machine: Azurite, the Graph/Entra/Key Vault simulator (seeded with its
demo tenant), the EWS simulator (a second tenant on "Exchange Server", EWS_TENANT_ID, with the
demo mailbox EWS_DEMO_MAILBOX), and one or more dev hosts running function_app over https with
a certificate from the Graph simulator's CA, so Graph's callbacks and Exchange's push
notifications are delivered exactly as in Azure (the app trusts both simulators' CAs through
one CA bundle). Used by the run command's demo, the end-to-end tests and the benchmarks.

Rule: everything started here is stopped when the `with` block ends (process groups, temp dirs),
and each dev host is a separate process, as Functions hosts are: they share only Azurite.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devhost.azurite import run_azurite

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTION_KEY = "local-function-key"  # dev host only: the key the local admin API accepts
MASTER_KEY = "local-master-key"  # dev host only, never used in Azure
# The local "Exchange Server" tenant (MAILBOX_PROVIDERS), its service account and demo mailbox.
EWS_TENANT_ID = "5e5e0c1a-7c3b-4f4e-9d7a-0e5e5e5e5e01"
EWS_USER, EWS_PASSWORD = "CONTOSO\\svc-calsync", "local-ews-password"
EWS_DEMO_MAILBOX = "ines.ews@contoso.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HostProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


@dataclass
class Stack:
    """Handles on a running local system; `admin()` talks to the admin API of host `i`."""

    sim: Any  # graphsim.testing.SimHandle
    storage: str
    env: dict[str, str]
    workdir: Path
    hosts: list[HostProcess] = field(default_factory=list)
    offset: float = 0.0
    host_json: dict[str, Any] | None = None  # replaces host.json for every host started
    ews: Any = None  # ewssim.testing.EwsSim

    @property
    def tenant_id(self) -> str:
        """The Graph demo tenant (the first of TENANT_IDS)."""
        return self.env["TENANT_IDS"].split(",")[0]

    def admin(self, i: int = 0) -> httpx.Client:
        return httpx.Client(
            base_url=self.hosts[i].url + "/api",
            headers={"x-functions-key": FUNCTION_KEY},
            verify=self.sim.ssl_context(),
            timeout=60,
        )

    def start_host(
        self,
        *,
        public: bool = True,
        extra: dict[str, str] | None = None,
        host_json: dict[str, Any] | None = None,
    ) -> HostProcess:
        """Start one more dev host process; the first one is the public URL Graph calls."""
        port = int(self.env["_PUBLIC_PORT"]) if public else _free_port()
        log_path = self.workdir / f"host-{len(self.hosts)}.log"
        env = dict(os.environ) | {k: v for k, v in self.env.items() if not k.startswith("_")}
        env |= extra or {}
        env["PYTHONPATH"] = str(REPO_ROOT)
        command = [
            sys.executable,
            "-m",
            "devhost",
            "--no-azurite",
            "--port",
            str(port),
            "--cert",
            self.sim.host_cert_path,
            "--key",
            self.sim.host_key_path,
            "--settings",
            str(self.workdir / "none.json"),
        ]
        host_json = host_json if host_json is not None else self.host_json
        if host_json is not None:
            path = self.workdir / f"host-{len(self.hosts)}.json"
            path.write_text(json.dumps(host_json))
            command += ["--host-json", str(path)]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        host = HostProcess(f"https://127.0.0.1:{port}", proc, log_path)
        self.hosts.append(host)
        deadline = time.monotonic() + 60
        with httpx.Client(verify=self.sim.ssl_context(), timeout=5) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"dev host exited early:\n{log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(host.url + "/api/health").status_code == 200:
                        return host
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dev host not healthy:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)

    def restart_host(self, i: int = 0) -> HostProcess:
        """Stop host `i` (if running) and start it again on the same port and settings."""
        old = self.hosts[i]
        old.stop()
        port = old.url.rsplit(":", 1)[1]
        self.hosts.pop(i)
        host = self.start_host(public=port == self.env["_PUBLIC_PORT"])
        self.hosts.insert(i, self.hosts.pop())
        return host

    def advance(self, seconds: float) -> None:
        """Move the simulators' clocks and the app's clock forward together."""
        self.sim.control.advance(seconds)
        if self.ews is not None:
            self.ews.advance(seconds)
        self.offset += seconds
        clock = Path(self.env["DEV_CLOCK_OFFSET_FILE"])
        clock.write_text(str(self.offset))

    def run_function(self, name: str, i: int = 0) -> None:
        """Run a timer function now, as the Functions host's admin endpoint does."""
        with httpx.Client(verify=self.sim.ssl_context(), timeout=600) as client:
            response = client.post(
                f"{self.hosts[i].url}/admin/functions/{name}",
                json={"input": ""},
                headers={"x-functions-key": MASTER_KEY},
            )
            response.raise_for_status()


@contextlib.contextmanager
def local_stack(
    *,
    hosts: int = 1,
    env: dict[str, str] | None = None,
    host_json: dict[str, Any] | None = None,
) -> Iterator[Stack]:
    """Azurite + the simulator with its demo tenant + `hosts` dev hosts; all stopped on exit.
    `host_json` replaces the repository's host.json for the dev hosts (e.g. smaller batches)."""
    from ewssim.testing import run_ewssim
    from graphsim.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
    from graphsim.testing import run_simulator

    workdir = Path(tempfile.mkdtemp(prefix="calsync-stack-"))
    (workdir / "none.json").write_text('{"IsEncrypted": false, "Values": {}}')
    clock_file = workdir / "clock-offset"
    clock_file.write_text("0")
    port = _free_port()
    with (
        run_azurite() as storage,
        run_simulator(seed_demo=True) as sim,
        run_ewssim(receiver_ca=sim.ca_pem_path) as ews,
    ):
        ews.add_account(EWS_USER, EWS_PASSWORD, ["*"])
        ews.add_mailbox(EWS_DEMO_MAILBOX)
        bundle = workdir / "ca-bundle.pem"  # the app trusts both simulators
        bundle.write_text(Path(sim.ca_pem_path).read_text() + Path(ews.ca_pem_path).read_text())
        provider = {
            "provider": "ews",
            "ewsUrl": ews.ews_url,
            "exchangeVersion": "Exchange2016",
            "auth": "NTLM",
            "username": EWS_USER,
            "passwordSecretName": "ews-password",
        }
        settings = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": storage,
            "TENANT_IDS": f"{DEMO_TENANT_ID},{EWS_TENANT_ID}",
            "CLIENT_ID": DEMO_CLIENT_ID,
            "SECRET_GRAPH_CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "GRAPH_BASE_URL": sim.graph_base_url,
            "AUTHORITY_HOST": sim.authority_host,
            "CA_BUNDLE": str(bundle),
            "MAILBOX_PROVIDERS": json.dumps({EWS_TENANT_ID: provider}),
            "SECRET_EWS_PASSWORD": EWS_PASSWORD,
            "PUBLIC_BASE_URL": f"https://127.0.0.1:{port}",
            "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
            "DEVHOST_MASTER_KEY": MASTER_KEY,
            "DEV_CLOCK_OFFSET_FILE": str(clock_file),
            "_PUBLIC_PORT": str(port),
        } | (env or {})
        stack = Stack(
            sim=sim, storage=storage, env=settings, workdir=workdir, host_json=host_json, ews=ews
        )
        try:
            for i in range(hosts):
                stack.start_host(public=i == 0)
            yield stack
        finally:
            for host in stack.hosts:
                host.stop()
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
