"""Read your writes: what a done write made, from Graph's answer into the mirror at once, and
the versions it wrote into the write records.

Rule: everything goes through services.mirror.apply_items (the one way into the mirror, where
the change feed hooks in). A single event is its answer; a write that touched a series (its
master, or one instance: Exchange then gives the master and every instance a new changeKey)
reads the series' instances in the window back and removes the mirrored ones Graph no longer
lists; a delete or cancel removes what it removed. The answer is rendered as delta renders it
(UTC, the mailbox's body type), so the next delta round finds these rows unchanged. Each
(event id, resulting changeKey) is recorded as written by the write ("" for a removal).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.compose import Services
from shared.core import writes as core
from shared.core.model import DeltaItem, Window
from shared.core.state import MailboxRecord
from shared.core.window import plan_window
from shared.core.write_port import CalendarWriter
from shared.core.writes import WriteRecord
from shared.errors import CalsyncError
from shared.services import mirror

if TYPE_CHECKING:
    from shared.adapters.write_tables import WriteStore

log = logging.getLogger("calsync.writes")


def _window(svc: Services, mailbox: MailboxRecord) -> Window:
    return svc.state.get_cursor(mailbox.key).window or plan_window(svc.now(), mailbox.options)


def writer_for(svc: Services, mailbox: MailboxRecord) -> CalendarWriter:
    """The mailbox's provider behind the write port: EWS for a tenant on Exchange Server
    (MAILBOX_PROVIDERS), else Graph."""
    ews = svc.settings.ews_for(mailbox.key.tenant_id)
    if ews is not None and svc.ews is not None:
        from shared.adapters.ews_writes import EwsWriter

        return EwsWriter(svc.ews, ews, lambda: _window(svc, mailbox))
    from shared.adapters.graph_writes import GraphWriter

    return GraphWriter(svc.graph)


def current_version(svc: Services, mailbox: MailboxRecord, event_id: str) -> dict[str, Any] | None:
    """The event as it is now (mirrored too), or None when it cannot be read."""
    try:
        event = writer_for(svc, mailbox).read(mailbox, event_id)
        if not core.is_series(event):
            mirror.apply_items(svc, mailbox, [DeltaItem(event["id"], event)])
    except CalsyncError as exc:
        log.warning("conflict on %s: the current version could not be read: %s", event_id, exc)
        return None
    return event


def _mirrored_series(svc: Services, mailbox: MailboxRecord) -> dict[str, str]:
    """Mirrored event id -> its series master id ("" for a single event): one partition query
    of two columns."""
    rows = svc.state.list_events(mailbox.key, columns=["event_id", "series_master_id"])
    return {str(r["event_id"]): str(r.get("series_master_id") or "") for r in rows}


def _series_items(
    svc: Services, mailbox: MailboxRecord, master_id: str, mirrored: Mapping[str, str]
) -> tuple[list[DeltaItem], list[tuple[str, str]]]:
    """The series' instances in the window as Graph has them now, and removals of the mirrored
    ones it no longer lists; with their (id, changeKey). Editing, cancelling or deleting one
    instance changes the master and every instance's changeKey (Exchange keeps exceptions on
    the master), so the whole series is read back, and the next delta round finds it as is."""
    writer = writer_for(svc, mailbox)
    instances = writer.instances(mailbox, master_id, _window(svc, mailbox))
    seen = {str(i["id"]) for i in instances}
    items = [DeltaItem(str(i["id"]), i) for i in instances]
    gone = [e for e, m in mirrored.items() if m == master_id and e not in seen]
    items += [DeltaItem(e, removed="deleted") for e in gone]
    versions = [(str(i["id"]), str(i.get("changeKey", ""))) for i in instances]
    return items, versions + [(e, "") for e in gone]


def _masters_touched(
    record: WriteRecord, event: Mapping[str, Any] | None, mirrored: Mapping[str, str]
) -> set[str]:
    """The series master a write changed: the series written, the series of the instance
    written, or (a delete) the series the deleted id was, or was an instance of."""
    if event is None:
        if mirrored.get(record.event_id):
            return {mirrored[record.event_id]}
        is_master = any(m == record.event_id for m in mirrored.values())
        return {record.event_id} if is_master else set()
    if core.is_series(event):
        return {str(event["id"])}
    if event.get("seriesMasterId"):
        return {str(event["seriesMasterId"])}
    return set()


def mirror_write(
    svc: Services, mailbox: MailboxRecord, record: WriteRecord, store: WriteStore
) -> None:
    """Mirror what the write made from Graph's answer, and record the versions it wrote: the
    event; a whole series when the write touched a series (its master or one instance); a
    removal ("" as changeKey) for what a delete or cancel removed."""
    event: Mapping[str, Any] | None = record.event
    mirrored = _mirrored_series(svc, mailbox)
    items: list[DeltaItem] = []
    versions: list[tuple[str, str]] = []
    if event is None:  # deleted or cancelled: the event, or every instance of a series
        master_id = mirrored.get(record.event_id, "")
        gone = [record.event_id, *(e for e, m in mirrored.items() if m == record.event_id)]
        items = [DeltaItem(event_id, removed="deleted") for event_id in gone]
        versions = [(event_id, "") for event_id in gone]
        if master_id:  # one instance of a series: the rest of it changed too
            more, written = _series_items(svc, mailbox, master_id, mirrored)
            items, versions = items + more, versions + written
    elif core.is_series(event):
        items, versions = _series_items(svc, mailbox, str(event["id"]), mirrored)
        versions.append((str(event["id"]), str(event.get("changeKey", ""))))
    elif event.get("seriesMasterId"):
        items, versions = _series_items(svc, mailbox, str(event["seriesMasterId"]), mirrored)
    else:
        items = [DeltaItem(str(event["id"]), dict(event))]
        versions = [(str(event["id"]), str(event.get("changeKey", "")))]
    # Recorded first: a round that reads Graph meanwhile finds these versions ours (the
    # mirror's `echoes`) instead of emitting them as someone else's changes.
    store.record_written(
        mailbox.key,
        versions,
        idempotency_key=record.idempotency_key,
        writer=record.request.writer,
        write_id=record.write_id,
    )
    origin = (record.idempotency_key or record.write_id, record.request.writer)
    mirror.apply_items(svc, mailbox, items, origin=origin)
    # The series' master changed with it (or went with its last instance): mirrored as Graph
    # has it now, as a delta round would after a change to its instances. (EWS mailboxes
    # mirror instances only.)
    masters = _masters_touched(record, event, mirrored)
    if masters and writer_for(svc, mailbox).mirrors_masters:
        mirror.refresh_masters(svc, mailbox, masters, None, origin=origin)
