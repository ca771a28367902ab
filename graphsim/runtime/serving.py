"""Serving a simulator over TLS on loopback, the part graphsim's and ewssim's processes share.

Rule: bind first (port 0 picks a free one; TCP_NODELAY on the listening socket, which accepted
connections inherit: without it a pre-bound socket serves each keep-alive answer ~40 ms late,
Nagle + delayed ACK), serve HTTPS with uvicorn (h11, one worker, no access log), and print
exactly ONE JSON line on stdout once it accepts connections: the process's ready line.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

import uvicorn

from graphsim.runtime.tls import TlsFiles


def bind_loopback(port: int) -> tuple[socket.socket, int]:
    """A listening-ready socket on 127.0.0.1 and the port it got."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    return sock, int(sock.getsockname()[1])


async def serve_tls(
    app: Any, sock: socket.socket, tls: TlsFiles, ready: dict[str, Any], *, name: str
) -> None:
    """Serve `app` on `sock` with the run's server certificate; print `ready` when serving."""
    config = uvicorn.Config(
        app,
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
            raise SystemExit(f"{name}: the server stopped before it was ready")
        await asyncio.sleep(0.01)
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    await task
