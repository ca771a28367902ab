"""One in-process dev host serving the sample app against the session's Azurite.

Short host.json-like timings (visibility timeout 1 s, polling at most every 0.2 s, poison after
3 dequeues) are passed as options, so the queue tests take seconds, not minutes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost import DevHost, HostOptions, QueueOptions

from . import sample_app

FUNCTION_KEY = "function-key-for-tests"
MASTER_KEY = "master-key-for-tests"
QUEUE_OPTIONS = QueueOptions(
    batch_size=4,
    new_batch_threshold=2,
    max_polling_interval=0.2,
    visibility_timeout=1.0,
    max_dequeue_count=3,
    lease_seconds=30,
)


@pytest.fixture(scope="package")
def devhost(azurite: str) -> Iterator[DevHost]:
    """The sample app served on a free loopback port, with its timers and queue listener."""
    settings = {
        "AzureWebJobsStorage": azurite,
        "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
        "DEVHOST_MASTER_KEY": MASTER_KEY,
    }
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AzureWebJobsStorage", azurite)  # the sample app's own code reads it
        host = DevHost(sample_app.app, settings, options=HostOptions(queues=QUEUE_OPTIONS))
        with host:
            yield host
