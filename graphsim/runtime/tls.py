"""TLS material for the simulator, made fresh at every start with trustme.

Rule: one throwaway CA per run, written to the state directory; a server certificate for
127.0.0.1/localhost that the simulator serves, and a second one the project's dev host serves
its own HTTPS with, so that notifications go to an https URL on loopback verified by the same
CA (Graph only delivers to https: change-notifications-delivery-webhooks). Clients are given the
CA path explicitly; nothing here touches the process environment or the system trust store.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    ca_pem_path: Path
    server_cert_path: Path
    server_key_path: Path
    host_cert_path: Path
    host_key_path: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this run's CA."""
        return ssl.create_default_context(cafile=str(self.ca_pem_path))


def make_tls_files(state_dir: Path) -> TlsFiles:
    """Create the CA and both leaf certificates under `state_dir/tls` (private keys 0600)."""
    tls_dir = state_dir / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="graphsim test CA")
    files = TlsFiles(
        ca_pem_path=tls_dir / "ca.pem",
        server_cert_path=tls_dir / "server-cert.pem",
        server_key_path=tls_dir / "server-key.pem",
        host_cert_path=tls_dir / "host-cert.pem",
        host_key_path=tls_dir / "host-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_pem_path))
    for cert_path, key_path in (
        (files.server_cert_path, files.server_key_path),
        (files.host_cert_path, files.host_key_path),
    ):
        leaf = ca.issue_cert(*HOSTS)
        # The chain (leaf + CA) lets strict clients build the path without extra files.
        cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key_path.touch(mode=0o600)
        key_path.write_bytes(leaf.private_key_pem.bytes())
    return files
