"""The process behind `python -m ewssim --port 0 --state-dir DIR [--server-version V]`.

Rule: like graphsim's, through the same graphsim.runtime.serving: bind first (port 0 picks a
free one), make the TLS files with graphsim.runtime.tls (a throwaway CA per run), serve HTTPS
on loopback only and print ONE JSON line when ready: ews_url, control_url, ca_pem_path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from ewssim.auth import Authenticator
from ewssim.model import World
from ewssim.server import build_app
from graphsim.runtime.serving import bind_loopback, serve_tls
from graphsim.runtime.tls import make_tls_files


async def serve(args: argparse.Namespace) -> None:
    tls = make_tls_files(args.state_dir)
    sock, port = bind_loopback(args.port)
    world = World(server_version=args.server_version)
    auth = Authenticator(world, args.state_dir / "ntlm-users.txt")
    # Push receivers are trusted by this run's CA, plus `--receiver-ca` (a dev host's).
    trusted = [str(tls.ca_pem_path)] + ([str(args.receiver_ca)] if args.receiver_ca else [])
    base = f"https://127.0.0.1:{port}"
    ready = {
        "ews_url": f"{base}/EWS/Exchange.asmx",
        "control_url": f"{base}/_sim",
        "ca_pem_path": str(tls.ca_pem_path),
        # A certificate of the same CA for a receiver of push notifications on loopback.
        "host_cert_path": str(tls.host_cert_path),
        "host_key_path": str(tls.host_key_path),
    }
    await serve_tls(build_app(world, auth, trusted), sock, tls, ready, name="ewssim")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ewssim", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True, help="TLS and NTLM files")
    parser.add_argument(
        "--server-version",
        default="Exchange2016",
        choices=("Exchange2013", "Exchange2016", "Exchange2019"),
    )
    parser.add_argument(
        "--receiver-ca", type=Path, default=None, help="a CA more to trust for push receivers"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
