"""`run_ewssim()`: start `python -m ewssim` as a subprocess for a `with` block, and a small
control client (accounts, mailboxes, appointments, knobs) for tests and demos.

Rule: as graphsim.testing: a fresh state directory, the ready line read with a deadline, the
process terminated (then killed) and the directory removed on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from graphsim.testing import REPO_ROOT, _read_ready_line


@dataclass
class EwsSim:
    ews_url: str
    control_url: str
    ca_pem_path: str
    host_cert_path: str
    host_key_path: str
    process: subprocess.Popen[bytes]
    http: httpx.Client

    def _call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        r = self.http.request(method, self.control_url + path, json=body, params=params or None)
        if r.status_code >= 400:
            raise RuntimeError(f"ewssim {method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    def add_account(self, username: str, password: str, impersonates: list[str]) -> None:
        self._call(
            "POST",
            "/accounts",
            {"username": username, "password": password, "impersonates": impersonates},
        )

    def add_mailbox(self, smtp: str) -> None:
        self._call("POST", "/mailboxes", {"smtp": smtp})

    def create(self, smtp: str, **fields: Any) -> str:
        return str(self._call("POST", f"/mailboxes/{smtp}/items", fields)["id"])

    def update(self, smtp: str, item_id: str, **fields: Any) -> None:
        self._call("PATCH", f"/mailboxes/{smtp}/items", fields, id=item_id)

    def delete(self, smtp: str, item_id: str) -> None:
        self._call("DELETE", f"/mailboxes/{smtp}/items", id=item_id)

    def edit_occurrence(self, smtp: str, item_id: str, index: int, **fields: Any) -> str:
        path = f"/mailboxes/{smtp}/occurrences/{index}"
        return str(self._call("PATCH", path, fields, id=item_id)["id"])

    def cancel_occurrence(self, smtp: str, item_id: str, index: int) -> None:
        self._call("DELETE", f"/mailboxes/{smtp}/occurrences/{index}", id=item_id)

    def view(self, smtp: str, start: str, end: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/mailboxes/{smtp}/view", start=start, end=end))

    def knob(self, name: str, **body: Any) -> None:
        self._call("POST", f"/knobs/{name}", body)

    def subscriptions(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/subscriptions"))

    def item(self, smtp: str, item_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/mailboxes/{smtp}/item", id=item_id))

    def sent(self) -> list[dict[str, Any]]:
        """The invitations, updates and cancellations Exchange sent (none with SendToNone)."""
        return list(self._call("GET", "/sent"))

    def now(self) -> str:
        return str(self._call("GET", "/clock")["now"])

    def advance(self, seconds: float) -> str:
        """Move the virtual clock forward (keep-alives, sync state expiry)."""
        return str(self._call("POST", "/clock/advance", {"seconds": seconds})["now"])

    def calls(self) -> dict[str, int]:
        return dict(self._call("GET", "/calls"))


@contextlib.contextmanager
def run_ewssim(
    *, server_version: str = "Exchange2016", receiver_ca: str = "", timeout: float = 30.0
) -> Iterator[EwsSim]:
    """ewssim for a `with` block; `receiver_ca`: a CA more that push receivers may use."""
    state_dir = Path(tempfile.mkdtemp(prefix="ewssim-"))
    command = [
        sys.executable,
        "-m",
        "ewssim",
        "--port",
        "0",
        "--state-dir",
        str(state_dir),
        "--server-version",
        server_version,
    ]
    if receiver_ca:
        command += ["--receiver-ca", receiver_ca]
    log = (state_dir / "stderr.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log
    )
    try:
        try:
            ready = _read_ready_line(proc, timeout)
        except (TimeoutError, RuntimeError) as exc:
            log.flush()
            detail = (state_dir / "stderr.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"ewssim: {exc}; stderr:\n{detail}") from None
        verify = ssl.create_default_context(cafile=ready["ca_pem_path"])
        with httpx.Client(verify=verify, timeout=10) as http:
            yield EwsSim(
                ready["ews_url"],
                ready["control_url"],
                ready["ca_pem_path"],
                ready["host_cert_path"],
                ready["host_key_path"],
                proc,
                http,
            )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(state_dir, ignore_errors=True)
