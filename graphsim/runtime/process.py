"""The simulator process behind `python -m graphsim --port 0 --state-dir DIR [--seed-demo]`.

Rule: binds the socket first (port 0 picks a free one), makes the TLS files, serves HTTPS
(graphsim.runtime.serving, shared with ewssim) and prints exactly ONE JSON line on stdout when
it accepts connections: graph_base_url, authority_host, key_vault_url, control_url, ca_pem_path,
host_cert_path, host_key_path. SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from graphsim.demo import seed_demo
from graphsim.runtime.server import build_app
from graphsim.runtime.serving import bind_loopback, serve_tls
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
    sock, port = bind_loopback(args.port)
    sim = Simulator(f"https://127.0.0.1:{port}", ca_pem_path=tls.ca_pem_path, seed=args.seed)
    if args.seed_demo:
        seed_demo(sim.directory, sim.vault, sim.clock.now())
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
    await serve_tls(build_app(sim), sock, tls, ready, name="graphsim")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # uvicorn re-raises the stop signal after a clean shutdown; Ctrl-C needs no traceback.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
