"""The dev host: HTTP, timer and queue triggers of one FunctionApp, on one event loop.

Rule: one asyncio loop (in a thread of its own, so tests and the CLI can start and stop it)
runs the uvicorn server, every timer and every queue listener; async functions are awaited on
it and sync ones run in the worker-style thread pool, as in the Python worker. Everything that
can be wrong with the app's declarations or settings is found in `start()`, before anything
runs. `stop()` stops polling and serving, lets running invocations finish, and returns at
once after that: idle keep-alive connections are dropped, not waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
from collections.abc import Coroutine, Mapping
from types import TracebackType
from typing import Any

import azure.functions as func
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from devhost.discovery import FunctionSpec, discover, resolve_setting_refs
from devhost.hostconfig import HostOptions
from devhost.http import HttpFront
from devhost.invoke import Invoker
from devhost.queues import QueueListener, QueueSender
from devhost.timers import parse_schedule, run_timer, time_zone, timer_disabled
from shared.errors import ConfigError

log = logging.getLogger("calsync.devhost")
_CODE_RE = re.compile(r"([?&]code=)[^&\s\"]*", re.IGNORECASE)


class _RedactKeys(logging.Filter):
    """uvicorn's access log writes the full path and query: a function key sent as `?code=`
    would be logged in clear. This replaces its value with `***`, keeping the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _CODE_RE.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _CODE_RE.sub(r"\1***", record.msg)
        return True


_ACCESS_FILTER = _RedactKeys()


class DevHost:
    """Serve `app` on http(s)://host:port (port 0: the OS picks one; see `url`)."""

    def __init__(
        self,
        app: func.FunctionApp,
        settings: Mapping[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: HostOptions | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        access_log: bool = False,
    ) -> None:
        self.settings = settings
        self.options = options or HostOptions()
        self.specs: list[FunctionSpec] = discover(app)
        # The timers fired on their schedules: not those disabled by AzureWebJobs.<name>.Disabled.
        self.scheduled = [
            spec.name
            for spec in self.specs
            if spec.trigger_type == "timerTrigger"
            and not spec.unsupported
            and not timer_disabled(spec.name, settings)
        ]
        self._bind = (host, port)
        self._tls = (certfile, keyfile)
        self._access_log = access_log
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> DevHost:
        """Check everything, bind the port, start serving; return once requests are accepted."""
        threads = self.settings.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
        invoker = Invoker(
            threads=int(threads) if threads.isdigit() else None,
            sink=QueueSender(self.settings, self.options.queues),
        )
        front = HttpFront(self.specs, invoker, self.settings, self.options.route_prefix)
        time_zone(self.settings)  # fail now on a bad WEBSITE_TIME_ZONE
        for spec in self.specs:
            if spec.trigger_type == "timerTrigger" and not spec.unsupported:
                parse_schedule(resolve_setting_refs(spec.schedule or "", self.settings, spec.name))
        listeners = [
            QueueListener(spec, self.settings, self.options.queues, invoker)
            for spec in self.specs
            if spec.trigger_type == "queueTrigger" and not spec.unsupported
        ]
        try:
            sock = socket.create_server(self._bind)
        except OSError as exc:
            where = f"{self._bind[0]}:{self._bind[1]}"
            raise ConfigError(
                [f"cannot listen on {where} ({exc.strerror}); use another port"]
            ) from None
        host, port = sock.getsockname()[:2]
        scheme = "https" if self._tls[0] else "http"
        self.url = f"{scheme}://{host}:{port}"
        config = uvicorn.Config(
            front,
            lifespan="off",
            log_config=None,
            access_log=self._access_log,
            ssl_certfile=self._tls[0],
            ssl_keyfile=self._tls[1],
            http=_PromptShutdownH11,
            timeout_graceful_shutdown=10,  # for invocations still running, not for idle clients
        )
        server = uvicorn.Server(config)
        access = logging.getLogger("uvicorn.access")
        if _ACCESS_FILTER not in access.filters:
            access.addFilter(_ACCESS_FILTER)
        self._thread = threading.Thread(
            target=self._run, args=(server, sock, listeners, invoker), name="devhost", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout) or self._failure is not None:
            self.stop()
            raise RuntimeError(f"the dev host did not start: {self._failure!r}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving and polling; wait for running invocations; idempotent."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> DevHost:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(
        self,
        server: uvicorn.Server,
        sock: socket.socket,
        listeners: list[QueueListener],
        invoker: Invoker,
    ) -> None:
        try:
            asyncio.run(self._main(server, sock, listeners, invoker))
        except BaseException as exc:  # reported by start(), or logged if it happens later
            self._failure = exc
            log.exception("the dev host stopped on an error")
        finally:
            invoker.close()
            sock.close()
            self._ready.set()

    async def _main(
        self,
        server: uvicorn.Server,
        sock: socket.socket,
        listeners: list[QueueListener],
        invoker: Invoker,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # uvicorn offers no start event; the deadline is start()'s
            if serving.done():
                serving.result()  # raises why it could not serve
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        workers = [asyncio.create_task(_logged(listener.run(stop))) for listener in listeners]
        workers += [
            asyncio.create_task(_logged(run_timer(spec, self.settings, invoker, stop)))
            for spec in self.specs
            if spec.name in self.scheduled
        ]
        self._ready.set()
        await stop.wait()
        server.should_exit = True
        await asyncio.gather(serving, *workers)


class _PromptShutdownH11(H11Protocol):
    """uvicorn's h11 protocol, except that shutdown never waits on a client that is idle.

    uvicorn closes each connection at shutdown (a busy one after its response) and waits for it
    to be gone. Over TLS a close waits for the client's close_notify (asyncio's
    ssl_shutdown_timeout, 30 s), which an idle keep-alive client never sends, so every stop()
    sat out the graceful-shutdown timeout. So an idle connection is aborted; a busy one finishes
    its response, which says `Connection: close` (RFC 9112 section 9.6) so that the client
    closes its side at once. One already closing is not closed twice: asyncio's TLS transport
    forgets its connection then and could no longer be aborted.
    """

    def shutdown(self) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.default_headers = [*cycle.default_headers, (b"connection", b"close")]
        if not self.transport.is_closing():
            super().shutdown()  # closes if idle, else ends keep-alive after the response in flight
        if self.transport.is_closing() and not self.transport.get_write_buffer_size():
            self.transport.abort()


async def _logged(work: Coroutine[Any, Any, None]) -> None:
    """Run a listener or timer; a bug in one is logged instead of passing silently."""
    try:
        await work
    except Exception:
        log.exception("a trigger loop of the dev host failed")
