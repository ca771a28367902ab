"""`python -m devhost`: run the app's triggers locally, with an Azurite of its own.

Rule: local.settings.json `Values` become app settings (a variable already set wins); Azurite
is started (loopback, free ports, in memory) unless AzureWebJobsStorage already names other
storage, and every setting holding `UseDevelopmentStorage=true` then points at it. The app is
imported only after that, as the host imports it after loading settings. SIGINT or SIGTERM stop
everything, Azurite included; the exit code is 0 then, 2 for a configuration problem.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from devhost.azurite import AzuriteError, run_azurite
from devhost.discovery import load_app
from devhost.host import DevHost
from devhost.hostconfig import load_host_json
from devhost.settings import DEFAULT_HTTP_PORT, apply_values, read_local_settings
from shared.errors import ConfigError

log = logging.getLogger("calsync.devhost")
_DEV_STORAGE = "usedevelopmentstorage=true"
_STORAGE_SETTING = "AzureWebJobsStorage"  # the host's own (mixed-case) setting name


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    p.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, help="port (default Host.LocalHttpPort or 7071; 0: any)")
    p.add_argument("--settings", default="local.settings.json", help="local settings file")
    p.add_argument("--host-json", default="host.json", help="host.json with the queue options")
    p.add_argument("--no-azurite", action="store_true", help="never start Azurite")
    p.add_argument("--cert", help="PEM certificate: serve https")
    p.add_argument("--key", help="PEM private key for --cert")
    return p


@contextlib.contextmanager
def _storage(no_azurite: bool) -> Iterator[str]:
    """Start Azurite when the settings ask for development storage (or for nothing)."""
    current = os.environ.get(_STORAGE_SETTING, "").strip()
    if no_azurite or (current and current.lower() != _DEV_STORAGE):
        yield "as configured" if current else "none (AzureWebJobsStorage is not set)"
        return
    with run_azurite() as conn:
        for name, value in list(os.environ.items()):
            if value.strip().lower() == _DEV_STORAGE:
                os.environ[name] = conn
        os.environ.setdefault(_STORAGE_SETTING, conn)
        queue_port = conn.split("QueueEndpoint=http://", 1)[1].split("/", 1)[0]
        yield f"Azurite (queues at {queue_port})"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if bool(args.cert) != bool(args.key):
        print("devhost: give both --cert and --key to serve https", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # one line per storage call otherwise
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        local = read_local_settings(Path(args.settings))
        apply_values(local.values)
        options = load_host_json(Path(args.host_json))
        port = args.port if args.port is not None else local.local_http_port or DEFAULT_HTTP_PORT
        with _storage(args.no_azurite) as storage:
            sys.path.insert(0, os.getcwd())  # the app module lives in the project root
            app = load_app(args.app)
            host = DevHost(
                app,
                os.environ,
                host=args.host,
                port=port,
                options=options,
                certfile=args.cert,
                keyfile=args.key,
                access_log=True,
            )
            with host:
                base = f"{host.url}/{options.route_prefix}".rstrip("/")
                listing = "".join(f"\n    {spec.describe(base)}" for spec in host.specs)
                print(f"Functions:{listing}", flush=True)
                print(f"calsync dev host listening on {host.url} (storage: {storage})", flush=True)
                stop.wait()
                print("devhost: stopping", flush=True)
    except (ConfigError, AzuriteError) as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
