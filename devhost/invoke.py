"""Call one declared function the way the Python worker does, and log it the way the host does.

Rule: async functions are awaited on the dev host's one event loop (as the worker runs them),
sync functions run in a thread pool sized like the worker's (PYTHON_THREADPOOL_THREAD_COUNT,
default min(32, cpus + 4)). The trigger value goes to the trigger's argument, a `func.Out` to
each output binding's argument, and a `func.Context` to a parameter named `context`. Queue
outputs are written only after the function succeeded, as the host does.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import azure.functions as func
from azure.functions._abc import RetryContext, TraceContext  # the worker implements these too

from devhost.discovery import FunctionSpec, QueueOutputSpec

log = logging.getLogger("calsync.devhost")
OutputSink = Callable[[QueueOutputSpec, Any], Awaitable[None]]


class _Out(func.Out[Any]):
    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class _TraceContext(TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class _Context(func.Context):
    """The `context` argument: invocation id and function name, as the worker gives them."""

    def __init__(self, invocation_id: str, function_name: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return os.getcwd()

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return threading.local

    @property
    def trace_context(self) -> TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> RetryContext:
        return _RetryContext()


class Invoker:
    """Runs user functions: one thread pool, host-style logs, outputs after success."""

    def __init__(self, *, threads: int | None = None, sink: OutputSink | None = None) -> None:
        count = threads or min(32, (os.cpu_count() or 1) + 4)
        self.pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="devhost-worker")
        self.sink = sink

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    async def invoke(self, spec: FunctionSpec, trigger_value: Any, reason: str) -> Any:
        """Call the function; return its return value; re-raise what it raised (logged)."""
        invocation_id = str(uuid.uuid4())
        outs = {o.arg_name: _Out() for o in spec.outputs if o.arg_name != "$return"}
        kwargs: dict[str, Any] = {spec.trigger_arg: trigger_value, **outs}
        if "context" in inspect.signature(spec.user_function).parameters:
            kwargs.setdefault("context", _Context(invocation_id, spec.name))
        log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
        started = time.perf_counter()
        try:
            if spec.is_async:
                result = await spec.user_function(**kwargs)
            else:
                call = functools.partial(spec.user_function, **kwargs)
                context = contextvars.copy_context()
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self.pool, context.run, call)
            for output in spec.outputs:
                value = result if output.arg_name == "$return" else outs[output.arg_name].get()
                if value is not None and self.sink is not None:
                    await self.sink(output, value)
        except Exception:
            log.exception(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                spec.name,
                invocation_id,
                (time.perf_counter() - started) * 1000,
            )
            raise
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
            spec.name,
            invocation_id,
            (time.perf_counter() - started) * 1000,
        )
        return result
