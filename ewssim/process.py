"""The process behind `python -m ewssim --port 0 --state-dir DIR [--server-version V]`.

Rule: like graphsim's: bind first (port 0 picks a free one), make the TLS files with
graphsim.runtime.tls (a throwaway CA per run), serve HTTPS with uvicorn on loopback only and
print ONE JSON line when ready: ews_url, control_url, ca_pem_path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from pathlib import Path

import uvicorn

from ewssim.auth import Authenticator
from ewssim.model import World
from ewssim.server import build_app
from graphsim.runtime.tls import make_tls_files


async def serve(args: argparse.Namespace) -> None:
    tls = make_tls_files(args.state_dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    world = World(server_version=args.server_version)
    auth = Authenticator(world, args.state_dir / "ntlm-users.txt")
    config = uvicorn.Config(
        build_app(world, auth, str(tls.ca_pem_path)),
        http="h11",
        loop="asyncio",
        lifespan="on",
        access_log=False,
        log_level="warning",
        ssl_certfile=str(tls.server_cert_path),
        ssl_keyfile=str(tls.server_key_path),
        timeout_keep_alive=60,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise SystemExit("ewssim: the server stopped before it was ready")
        await asyncio.sleep(0.01)
    base = f"https://127.0.0.1:{port}"
    ready = {
        "ews_url": f"{base}/EWS/Exchange.asmx",
        "control_url": f"{base}/_sim",
        "ca_pem_path": str(tls.ca_pem_path),
        # A certificate of the same CA for a receiver of push notifications on loopback.
        "host_cert_path": str(tls.host_cert_path),
        "host_key_path": str(tls.host_key_path),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    await task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ewssim", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True, help="TLS and NTLM files")
    parser.add_argument(
        "--server-version",
        default="Exchange2016",
        choices=("Exchange2013", "Exchange2016", "Exchange2019"),
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
