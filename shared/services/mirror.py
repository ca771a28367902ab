"""The one way into the mirror: Graph's view of some events (delta items, or the event a write
returned) planned against what the mirror holds, written together with its change events, and
relayed to the change feed.

Every change of the mirror goes through here, whoever found it (a delta round, a full round's
diff, a write's answer), so the rules of core.reconcile (idempotent, last occurrence wins, one
change planned once) and of the feed (one change event per change, written in the same Table
transaction as the change: a crash can neither lose one nor make one for a change that did not
land) hold for all of them. When a transaction meets a partition that changed meanwhile, the
page is planned again from a fresh read (at most PLAN_ATTEMPTS times).

The relay (services.feed) then copies the outbox to the `changes` table and the
`calendar-changes` queue; it runs right after each write and again at the start of every round,
so changes a crash left in the outbox are relayed by the next round of the mailbox.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence

from shared.compose import Services
from shared.core.feed import ChangeEvent
from shared.core.model import DeltaItem, StoredVersion
from shared.core.reconcile import PagePlan, deletion, plan_page
from shared.core.state import MailboxRecord
from shared.errors import StateConflict
from shared.services import feed, icaluid_index

log = logging.getLogger("calsync.mirror")

PLAN_ATTEMPTS = 5


def apply_items(
    svc: Services,
    mailbox: MailboxRecord,
    items: Sequence[DeltaItem],
    stored: Mapping[str, StoredVersion] | None = None,
    *,
    origin: tuple[str, str] | None = None,
) -> tuple[PagePlan, list[ChangeEvent]]:
    """Plan `items` against the mirror (`stored` id -> version when the caller holds it, else
    read for these ids), write the plan with its change events, and relay them. `origin`:
    (write key, writer) of the calsync write these items are the answer of, carried by every
    change event they make (so the feed can keep a writer's own changes from it)."""
    key = mailbox.key
    ids = [item.event_id for item in items]
    for attempt in range(1, PLAN_ATTEMPTS + 1):
        if stored is None:
            stored = svc.state.stored_versions(key, ids)
        plan = plan_page(items, stored, mailbox.options)
        try:
            written = svc.state.apply_changes(
                key,
                plan.upserts,
                plan.changes,
                at=svc.now(),
                mailbox_ref=mailbox.options.reference,
                origin=origin,
            )
        except StateConflict:
            if attempt == PLAN_ATTEMPTS:
                raise
            log.info("mirror of %s changed meanwhile: planning the page again", key.user_id)
            stored = None
            continue
        break
    for event_id, why in plan.skipped:
        log.warning("event %s of %s not mirrored: %s", event_id, key.user_id, why)
    if written:
        # The index needs an event only when it is new or its iCalUId changed.
        indexed = {
            c.event_id
            for c in plan.changes
            if c.changed_fields is None or "iCalUId" in c.changed_fields
        }
        icaluid_index.note_changes(
            svc, key, [ev for ev in plan.upserts if ev.event_id in indexed], plan.deletes
        )
        feed.relay(svc, key)
    return plan, written


def delete_ids(
    svc: Services,
    mailbox: MailboxRecord,
    versions: MutableMapping[str, StoredVersion],
    ids: Sequence[str],
) -> list[ChangeEvent]:
    """Remove events the mirror holds but Graph no longer lists (a full round's diff), each
    with its deletion event; `versions` is the mirror as the round holds it."""
    changes = [deletion(i, versions.get(i)) for i in ids]
    written = svc.state.apply_changes(
        mailbox.key, (), changes, at=svc.now(), mailbox_ref=mailbox.options.reference
    )
    if written:
        feed.relay(svc, mailbox.key)
    return written
