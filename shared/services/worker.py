"""The queue trigger's step: decode a sync request and run it. A message that is not a valid
request is logged and moved to the poison queue at once (retrying cannot fix it); nothing else
is lost: transient failures raise, so the host retries and poison-queues after maxDequeueCount."""

from __future__ import annotations

import logging

from shared.adapters.queues import decode_request
from shared.compose import Services
from shared.errors import InputError
from shared.services.sync import SyncOutcome, run_sync_request
from shared.telemetry import dims, trace_id_of

log = logging.getLogger("calsync.worker")


def run_queue_message(svc: Services, body: bytes, dequeue_count: int) -> SyncOutcome:
    try:
        request = decode_request(body)
    except InputError as exc:
        log.error("sync request moved to the poison queue: %s", exc.message)
        svc.queue.poison(body)  # the bytes as received, for whoever inspects it
        return SyncOutcome("poisoned")
    outcome = run_sync_request(svc, request)
    log.info(
        "sync %s/%s (%s, try %d): %s",
        request.tenant_id,
        request.user_id,
        request.trigger.value,
        dequeue_count,
        outcome.result,
        extra=dims(
            tenant_id=request.tenant_id,
            user_id=request.user_id,
            trigger=request.trigger.value,
            result=outcome.result,
            upserts=outcome.upserts,
            deletes=outcome.deletes,
            trace_id=trace_id_of(request.traceparent),
        ),
    )
    return outcome
