"""Threads for storage calls one request issues side by side (independent reads of one
partition, another table's writes beside a partition's transaction): the Storage SDK's clients
are thread-safe, and each thread keeps within the clients' connection pool (10)."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

IO_THREADS = 4


@functools.cache
def io_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="calsync-storage")
