"""The simulator process behind `python -m graphsim --port 0 --state-dir DIR [--seed-demo]`.

Rule: binds the socket first (port 0 picks a free one), makes the TLS files, serves HTTPS with
uvicorn (h11, one worker, no access log) and prints exactly ONE JSON line on stdout when it
accepts connections: graph_base_url, authority_host, key_vault_url, control_url, ca_pem_path,
host_cert_path, host_key_path. SIGTERM or SIGINT stops it cleanly.
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

from graphsim.demo import seed_demo
from graphsim.runtime.server import build_app
from graphsim.runtime.tls import make_tls_files
from graphsim.simulator import Simulator


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m graphsim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True, help="where TLS files go")
    parser.add_argument("--seed-demo", action="store_true", help="load the demo tenant")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    if args.host not in ("127.0.0.1", "localhost"):
        raise SystemExit("graphsim serves loopback only: use --host 127.0.0.1")
    tls = make_tls_files(args.state_dir)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY from the listening socket; without it a
    # pre-bound socket serves each keep-alive answer ~40 ms late (Nagle + delayed ACK).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    sim = Simulator(f"https://127.0.0.1:{port}", ca_pem_path=tls.ca_pem_path, seed=args.seed)
    if args.seed_demo:
        seed_demo(sim.directory, sim.vault, sim.clock.now())
    config = uvicorn.Config(
        build_app(sim),
        http="h11",
        loop="asyncio",
        lifespan="on",
        access_log=False,
        log_level="warning",
        ssl_certfile=str(tls.server_cert_path),
        ssl_keyfile=str(tls.server_key_path),
        timeout_keep_alive=60,
        # TLS close waits for the peer's close_notify; idle keep-alive clients never send it.
        timeout_graceful_shutdown=1,
        backlog=1024,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise SystemExit("graphsim: the server stopped before it was ready")
        await asyncio.sleep(0.01)
    ready = {
        "graph_base_url": sim.urls.graph_base_url,
        "authority_host": sim.urls.authority_host,
        "key_vault_url": sim.urls.key_vault_url,
        "key_vault_resource": sim.urls.key_vault_resource,
        "control_url": sim.urls.control_url,
        "ca_pem_path": str(tls.ca_pem_path),
        "host_cert_path": str(tls.host_cert_path),
        "host_key_path": str(tls.host_key_path),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    await task


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # uvicorn re-raises the stop signal after a clean shutdown; Ctrl-C needs no traceback.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
