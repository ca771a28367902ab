"""The one way into the mirror: Graph's view of some events (delta items, or the event a write
returned) planned against what the mirror holds and written in batch transactions.

Every change of the mirror goes through `apply_items`, whoever found it (a delta round, a write's
answer), so the rules of core.reconcile (idempotent, last occurrence wins, one change planned
once) hold for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from shared.compose import Services
from shared.core.model import DeltaItem
from shared.core.reconcile import PagePlan, plan_page
from shared.core.state import MailboxRecord
from shared.services import icaluid_index

log = logging.getLogger("calsync.mirror")


def apply_items(
    svc: Services,
    mailbox: MailboxRecord,
    items: Sequence[DeltaItem],
    stored: Mapping[str, tuple[str, str]] | None = None,
) -> PagePlan:
    """Plan `items` against the mirror (`stored` id -> version when the caller holds it, else
    read for these ids) and write the plan; returns it."""
    key = mailbox.key
    if stored is None:
        stored = svc.state.stored_versions(key, [item.event_id for item in items])
    plan = plan_page(items, stored, mailbox.options)
    for event_id, why in plan.skipped:
        log.warning("event %s of %s not mirrored: %s", event_id, key.user_id, why)
    svc.state.apply_events(key, plan.upserts, plan.deletes)
    icaluid_index.note_changes(svc, key, plan.upserts, plan.deletes)
    return plan


def delete_ids(svc: Services, mailbox: MailboxRecord, event_ids: Sequence[str]) -> None:
    """Remove events the mirror holds but Graph no longer lists (a full round's diff)."""
    svc.state.apply_events(mailbox.key, (), event_ids)
