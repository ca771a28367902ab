"""The change feed's relay and reads: change events written with the mirror (the outbox rows of
a mailbox's events partition) copied, in order, to the `changes` table and the
`calendar-changes` queue, then removed from the outbox.

The relay is at least once: a crash between the copy and the removal copies the same rows
again (same sequence, same change id), so readers and queue consumers deduplicate on the id.
"""

from __future__ import annotations

import logging

from shared.compose import Services
from shared.core.feed import ChangeEvent
from shared.core.model import MailboxKey
from shared.errors import CalsyncError
from shared.services import delivery

log = logging.getLogger("calsync.feed")

RELAY_BATCH = 500


def relay(svc: Services, key: MailboxKey) -> list[ChangeEvent]:
    """Move a mailbox's pending change events to the feed; returns them, oldest first."""
    changes = svc.changes
    if changes is None:
        raise CalsyncError("the change feed is not configured for these services")
    moved: list[ChangeEvent] = []
    while True:
        pending = svc.state.outbox(key, limit=RELAY_BATCH)
        if not pending:
            break
        batch = [change for _, change in pending]
        changes.put(batch)
        changes.publish(batch)
        svc.state.drop_outbox(key, [row_key for row_key, _ in pending])
        moved.extend(batch)
        if len(pending) < RELAY_BATCH:
            break
    delivery.dispatch(svc, key, moved)  # the webhook subscribers' work items
    return moved
