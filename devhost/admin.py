"""The host's admin endpoint for running a non-HTTP function now: POST /admin/functions/<name>.

Rule, as in the Functions host: the master key is required (x-functions-key header or `code`),
the JSON body's `input` string becomes the trigger value (a timer gets a TimerRequest that is not
past due; a queue trigger gets a message built from `input`, never enqueued), and the answer is
202 Accepted even if the function fails (its failure is in the log). HTTP functions are called
on their route instead. Unlike the host, which answers at once, the dev host answers once the run
has finished, so a test needs no polling to see its effects.
Doc: https://learn.microsoft.com/azure/azure-functions/functions-manually-run-non-http
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.functions.queue import QueueMessage as TriggerMessage
from azure.functions.timer import TimerRequest

from devhost.discovery import FunctionSpec

ADMIN_PATH = re.compile(r"^/admin/functions/(?P<name>[^/]+)/?$", re.IGNORECASE)


def trigger_value(spec: FunctionSpec, text: str) -> Any:
    """The trigger argument the host builds from an admin request's `input`."""
    if spec.trigger_type == "timerTrigger":
        return TimerRequest(past_due=False, schedule_status={}, schedule={"AdjustForDST": True})
    now = datetime.now(UTC)
    return TriggerMessage(  # type: ignore[no-untyped-call]  # untyped in the library
        id=str(uuid.uuid4()),
        body=text.encode(),
        dequeue_count=0,  # built from the input, never dequeued
        insertion_time=now,
        expiration_time=now + timedelta(days=7),
        time_next_visible=now,
        pop_receipt="",
    )


def admin_input(body: bytes) -> str | None:
    """The `input` string of an admin request body (empty body: ""), or None if malformed."""
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return None
    text = doc.get("input", "") if isinstance(doc, dict) else None
    return text if isinstance(text, str) else None
