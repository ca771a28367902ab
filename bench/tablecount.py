"""A counting proxy in front of Azurite's Table endpoint: every Table request the dev hosts make
passes through it and is counted by table and kind, at the I/O boundary (bench code only).

    with TableCounter(stack.storage) as counter:
        stack.env["AzureWebJobsStorage"] = counter.connection_string
        stack.start_host()
        ...
        counter.snapshot()  # {"total": n, "by_table": {...}, "by_kind": {...}}

A batch transaction (`$batch`) is one request (one Table transaction), counted under the
tables its sub-requests name.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_TABLE_IN_PATH = re.compile(r"^/[^/]+/([A-Za-z][A-Za-z0-9]*)(?:\(|$|\?)")
_TABLE_IN_BATCH = re.compile(
    rb"(?:POST|PUT|PATCH|MERGE|DELETE|GET) https?://[^/\s]+/[^/\s]+/([A-Za-z][A-Za-z0-9]*)[(?\s]"
)
_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def _endpoint(connection_string: str) -> str:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return parts["TableEndpoint"]


class TableCounter:
    """The proxy: listens on a free loopback port, forwards to the real Table endpoint."""

    def __init__(self, connection_string: str) -> None:
        self.upstream = urlsplit(_endpoint(connection_string))
        self.connection_string_upstream = connection_string
        self.lock = threading.Lock()
        self.by_table: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.total = 0
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                counter.count(self.command, self.path, body)
                conn = http.client.HTTPConnection(
                    counter.upstream.hostname or "127.0.0.1", counter.upstream.port, timeout=60
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers["Host"] = counter.upstream.netloc
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for k, v in answer.getheaders():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_MERGE = _forward  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def connection_string(self) -> str:
        """The same account, its Table endpoint through the proxy."""
        endpoint = f"http://127.0.0.1:{self.port}{self.upstream.path}"
        return re.sub(
            r"TableEndpoint=[^;]*", f"TableEndpoint={endpoint}", self.connection_string_upstream
        )

    def count(self, method: str, path: str, body: bytes) -> None:
        if "$batch" in path:
            tables = sorted({m.decode() for m in _TABLE_IN_BATCH.findall(body)}) or ["?"]
            kind = "batch"
        else:
            match = _TABLE_IN_PATH.match(path)
            tables = [match.group(1) if match else "?"]
            point = "(" in path and "PartitionKey=" in path
            kind = f"{method} {'entity' if point else 'query' if method == 'GET' else 'table'}"
        with self.lock:
            self.total += 1
            self.by_kind[kind] += 1
            for table in tables:
                self.by_table[table] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": self.total,
                "by_table": dict(self.by_table),
                "by_kind": dict(self.by_kind),
            }

    def __enter__(self) -> TableCounter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """What was counted between two snapshots."""
    out: dict[str, Any] = {"total": after["total"] - before["total"]}
    for part in ("by_table", "by_kind"):
        out[part] = {
            k: v - before[part].get(k, 0)
            for k, v in after[part].items()
            if v - before[part].get(k, 0)
        }
    return out
