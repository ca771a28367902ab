"""The one way into the mirror: Graph's view of some events (delta items, or the event a write
returned) planned against what the mirror holds, written together with its change events, and
handed to the feed's delivery targets.

Every change of the mirror goes through here, whoever found it (a delta round, a full round's
diff, a write's answer), so the rules of core.reconcile (idempotent, last occurrence wins, one
change planned once) and of the feed (one change event per change, written in the same Table
transaction as the change: a crash can neither lose one nor make one for a change that did not
land) hold for all of them. When a transaction meets a partition that changed meanwhile, the
page is planned again from a fresh read (at most PLAN_ATTEMPTS times).

The page's stored versions and our own writes' versions (the `writes` table: the echo marks)
are read side by side, for every id of the page. The iCalUId index is written side by side
with the mirror's transactions (another table: they need not wait for each other). A plan
that then fails to land may leave index rows ahead of the mirror; the index is only a hint
(its lookups check the mirror and drop such rows), and the page planned again writes it again.

Those change rows are the feed itself (services.feed): after the transaction the write only
queues the delivery work items (webhooks, the `calendar-changes` queue); a crash before that is
caught up by the delivery sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, MutableMapping, Sequence
from concurrent.futures import Future

from shared.adapters.pools import io_pool
from shared.compose import Services
from shared.core.entity import join_properties
from shared.core.feed import ChangeEvent, event_json
from shared.core.graph import series_master_get
from shared.core.model import DeltaItem, MailboxKey, MirrorEvent, PlannedChange, StoredVersion
from shared.core.reconcile import PagePlan, deletion, plan_page
from shared.core.state import MailboxRecord
from shared.core.window import plan_window
from shared.errors import GraphError, NotFoundError, StateConflict
from shared.services import feed, icaluid_index

log = logging.getLogger("calsync.mirror")

PLAN_ATTEMPTS = 8


def apply_items(
    svc: Services,
    mailbox: MailboxRecord,
    items: Sequence[DeltaItem],
    stored: Mapping[str, StoredVersion] | None = None,
    *,
    origin: tuple[str, str] | None = None,
) -> tuple[PagePlan, list[ChangeEvent]]:
    """Plan `items` against the mirror (`stored` id -> version when the caller holds it, else
    read for these ids), write the plan with its change events, and dispatch them. `origin`:
    (write key, writer) of the calsync write these items are the answer of, carried by every
    change event they make (so the feed can keep a writer's own changes from it)."""
    key = mailbox.key
    ids = [item.event_id for item in items]
    for attempt in range(1, PLAN_ATTEMPTS + 1):
        written_read: Future[dict[str, tuple[str, str, str]]] | None = None
        if stored is None:
            # Our own writes' versions (another table) are read side by side with the
            # mirror's, for every id of the page: which ones changed is known only after.
            if origin is None and svc.writes is not None and ids:
                written_read = io_pool().submit(svc.writes.written_versions, key, ids)
            stored = svc.state.stored_versions(key, ids)
        user = plan_window(svc.now(), mailbox.options)  # what lies outside is kept hidden
        plan = plan_page(items, stored, mailbox.options, user)
        ours = written_read.result() if written_read is not None else None
        # The iCalUId index (another table) is written side by side with the mirror's
        # transactions; see the module docstring. Hidden changes too: the margin is indexed,
        # the lookup hides it.
        index = io_pool().submit(_index, svc, key, plan, stored) if plan.changes else None
        try:
            written = svc.state.apply_changes(
                key,
                plan.upserts,
                plan.changes,
                at=svc.now(),
                mailbox_ref=mailbox.options.reference,
                origin=origin,
                origins=echoes(svc, key, plan.changes, ours) if origin is None else None,
            )
        except StateConflict:
            if index is not None:
                index.result()
            if attempt == PLAN_ATTEMPTS:
                raise
            log.info("mirror of %s changed meanwhile: planning the page again", key.user_id)
            # Writers that collided would collide again at once: a short jittered pause first.
            time.sleep(svc.rng.uniform(0, 0.05 * attempt))
            stored = None
            continue
        if index is not None:
            index.result()
        break
    for event_id, why in plan.skipped:
        log.warning("event %s of %s not mirrored: %s", event_id, key.user_id, why)
    if written:
        feed.dispatch(svc, key, written)
    return plan, written


def echoes(
    svc: Services,
    key: MailboxKey,
    changes: Sequence[PlannedChange],
    written: Mapping[str, tuple[str, str, str]] | None = None,
) -> dict[str, tuple[str, str]]:
    """event id -> (write key, writer) of the changes a round found that are calsync's own
    writes: the version Graph gave (its changeKey) is the one a write recorded ("" for a write
    that removed the event). A round that read Graph right after a write, before the write
    mirrored its answer, finds the write's version first; marked, it reaches no subscriber
    that excludes the writer as someone else's change. `written`: the written versions
    already read for (at least) these changes' ids, else they are read here."""
    if svc.writes is None or not changes:
        return {}
    if written is None:
        written = svc.writes.written_versions(key, [c.event_id for c in changes])
    return {
        c.event_id: (write_key, writer)
        for c in changes
        if (found := written.get(c.event_id)) is not None
        for change_key, write_key, writer in [found]
        if writer and change_key == ("" if c.type == "deleted" else c.change_key)
    }


def _index(
    svc: Services, key: MailboxKey, plan: PagePlan, stored: Mapping[str, StoredVersion]
) -> None:
    """Note the plan's changes in the iCalUId index: an event only when it is new or its
    iCalUId changed, and the deletions; `stored`: the versions the plan was made against."""
    indexed = {
        c.event_id
        for c in plan.changes
        if c.changed_fields is None or "iCalUId" in c.changed_fields
    }
    before = {i: v.ical_uid for i, v in stored.items() if v.ical_uid}
    icaluid_index.note_changes(
        svc, key, [ev for ev in plan.upserts if ev.event_id in indexed], plan.deletes, before
    )


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
        mailbox.key,
        (),
        changes,
        at=svc.now(),
        mailbox_ref=mailbox.options.reference,
        origins=echoes(svc, mailbox.key, changes),
    )
    before = {c.event_id: c.ical_uid for c in changes if c.ical_uid}
    icaluid_index.note_changes(svc, mailbox.key, (), [c.event_id for c in written], before)
    if written:
        feed.dispatch(svc, mailbox.key, written)
    return written


def version_of(ev: MirrorEvent) -> StoredVersion:
    """The version a planned upsert leaves in the mirror (for a round's in-memory mirror)."""
    return StoredVersion(
        ev.change_key,
        ev.content_hash,
        ev.digests,
        str(ev.feed.get("seriesMasterId") or ""),
        str(ev.feed.get("iCalUId") or ""),
        str(ev.feed.get("type") or ""),
        "True" if ev.properties.get("hidden") else "",
    )


def slide(svc: Services, mailbox: MailboxRecord) -> list[ChangeEvent]:
    """Slide the user's window over the mirror (no Graph request): the hidden events now inside
    it reach the feed as created, the shown ones now outside it as deleted (their rows stay,
    hidden, until the delta window drops them)."""
    key, options = mailbox.key, mailbox.options
    for attempt in range(1, PLAN_ATTEMPTS + 1):
        user = plan_window(svc.now(), options)
        inside, outside = svc.state.window_flips(key, user.start, user.end)
        changes: list[PlannedChange] = []
        for row in inside:
            props = join_properties(row)
            changes.append(
                PlannedChange(
                    "created",
                    str(props.get("event_id") or ""),
                    change_key=str(props.get("change_key") or ""),
                    series_master_id=str(props.get("series_master_id") or ""),
                    ical_uid=str(props.get("ical_uid") or ""),
                    event=event_json(props, options.time_zone),
                )
            )
        for row in outside:
            changes.append(
                PlannedChange(
                    "deleted",
                    str(row.get("event_id") or ""),
                    change_key=str(row.get("change_key") or ""),
                    series_master_id=str(row.get("series_master_id") or ""),
                    ical_uid=str(row.get("ical_uid") or ""),
                    keep_row=True,
                )
            )
        if not changes:
            return []
        try:
            written = svc.state.apply_changes(
                key, (), changes, at=svc.now(), mailbox_ref=options.reference
            )
        except StateConflict:
            if attempt == PLAN_ATTEMPTS:
                raise
            time.sleep(svc.rng.uniform(0, 0.05 * attempt))
            continue
        if written:
            feed.dispatch(svc, key, written)
        return written
    return []


def refresh_masters(
    svc: Services,
    mailbox: MailboxRecord,
    masters: set[str],
    mirror: dict[str, StoredVersion] | None,
    *,
    origin: tuple[str, str] | None = None,
) -> tuple[int, int, int]:
    """Bring the series masters whose instances changed up to date: fetched from Graph while
    the mirror holds one of their instances, deleted when it holds none or Graph has no such
    series (404). Returns (upserts, deletes, ids new to the mirror)."""
    key = mailbox.key
    upserts = deletes = added = 0
    for master_id in sorted(masters):
        if mirror is not None:
            held = any(v.series_master_id == master_id for v in mirror.values())
        else:
            held = svc.state.has_instances(key, master_id)
        item = DeltaItem(master_id, removed="deleted")
        if held:
            request = series_master_get(key, master_id, body_type=mailbox.options.body_type)
            try:
                event = svc.graph.send(request)
            except NotFoundError:
                pass  # the series is gone: its master goes too
            except GraphError as exc:
                if exc.status != 404:
                    raise
            else:
                if isinstance(event, dict) and event.get("type") == "seriesMaster":
                    item = DeltaItem(master_id, event)
        if mirror is not None:
            before = mirror.get(master_id)
        else:
            before = svc.state.stored_versions(key, [master_id]).get(master_id)
        stored = {master_id: before} if before is not None else {}
        plan, _ = apply_items(svc, mailbox, [item], stored, origin=origin)
        added += len(plan.upserts) if before is None else 0
        if mirror is not None:
            for ev in plan.upserts:
                mirror[ev.event_id] = version_of(ev)
            for gone in plan.deletes:
                mirror.pop(gone, None)
        upserts, deletes = upserts + len(plan.upserts), deletes + len(plan.deletes)
    return upserts, deletes, added
