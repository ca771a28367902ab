"""A real webhook receiver for tests: an HTTPS (or plain HTTP) server on loopback in a thread,
which records every request and answers as its `mode` says: "ok" (204), "down" (503), "gone"
(410), "garbage" (bytes that are no HTTP answer, then a closed connection) or "slow" (sleeps
`slow_seconds` before answering 204). A request is recorded when it arrives. `verified()`
checks each request with the standardwebhooks library, as a receiver in the field would."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float


@dataclass
class Receiver:
    url: str
    mode: str = "ok"
    slow_seconds: float = 3.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """The bodies of the requests answered 2xx, each verified (raises if one is not)."""
        hook = Webhook(secret)
        with self.lock:
            taken = [r for r in self.requests if r.headers.get("x-test-answered") == "2xx"]
        out = []
        for r in taken:
            body = hook.verify(r.body, r.headers)
            assert r.headers["webhook-id"] == body["id"]
            out.append(body)
        return out

    def attempts(self) -> int:
        with self.lock:
            return len(self.requests)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            mode = receiver.mode
            answered = "2xx" if mode in ("ok", "slow") else mode
            with receiver.lock:  # recorded on arrival, before any answer
                receiver.requests.append(
                    Received(body, headers | {"x-test-answered": answered}, time.monotonic())
                )
            if mode == "slow":
                time.sleep(receiver.slow_seconds)
            if mode == "garbage":
                self.wfile.write(b"\x00\xffnot http at all\r\n\r\n")
                self.close_connection = True
                return
            status = {"ok": 204, "slow": 204, "down": 503, "gone": 410}[mode]
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    return Handler


@contextmanager
def run_receiver(*, cert: tuple[str, str] | None = None, path: str = "/hook") -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (HTTPS with `cert` = (certificate, key) paths, else HTTP)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    scheme = "http"
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    receiver = Receiver(f"{scheme}://127.0.0.1:{server.server_port}{path}")
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, name="test-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def bodies_by_mailbox(bodies: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for body in bodies:
        out.setdefault(body["mailboxId"], []).append(body)
    return out
