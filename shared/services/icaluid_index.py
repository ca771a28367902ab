"""The iCalUId index: kept up to date after each mirror write (`note_changes`, called by
services.mirror), read by `GET /api/events?iCalUId=&tenant=` (`find`): the same meeting as the
mirrors of the tenant's enrolled mailboxes hold it.

Cost: a write reads nothing (what an event was indexed under is the mirror's version, which the
writer holds) and writes one row per new or re-keyed event, in batch transactions of 100 (one
partition); a lookup
is one range query in the tenant's partition plus one point read of the mirror per hit (the
mirror is the truth: a hit whose row is gone or now has another iCalUId is left out and its
index row removed). An index that fails to write never fails the round: the event is then found
again once its next change is indexed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError

from shared.compose import Services
from shared.core import agenda as ag
from shared.core import icaluid
from shared.core.keys import encode_key
from shared.core.model import MailboxKey, MirrorEvent
from shared.core.window import plan_window, row_is_shown
from shared.core.zones import iana_zone_name, resolve_zone
from shared.errors import CalsyncError, InputError, NotFoundError, StorageError

log = logging.getLogger("calsync.icaluid")
_META = {"PartitionKey", "RowKey", "Timestamp", "etag"}


def note_changes(
    svc: Services,
    key: MailboxKey,
    upserts: Sequence[MirrorEvent],
    deletes: Sequence[str],
    before: Mapping[str, str],
) -> None:
    """Bring the index in line with what the mirror just wrote for `key`; `before`: event id ->
    the iCalUId the mirror held for it before (the writer's stored versions)."""
    index = svc.icaluids
    if index is None or not (upserts or deletes):
        return
    pairs = [(ev.event_id, str(ev.properties.get("ical_uid") or "")) for ev in upserts]
    try:
        # Rows name the calendar by its label ("user" or "user:handle"): one per mirror.
        index.write(key.tenant_id, icaluid.plan_changes(key.label, pairs, deletes, before))
    except CalsyncError as exc:
        log.warning("iCalUId index not updated for %s: %s", key.user_id, exc.message)


def backfill(svc: Services, key: MailboxKey) -> int:
    """Index what the mirror holds for `key` now (one partition read of the mirror, writes in
    batches of 100): events mirrored before the index existed are never rewritten by a round
    while unchanged, so an operator's resync runs this once. Returns the pairs written."""
    index = svc.icaluids
    if index is None:
        return 0
    rows = svc.state.list_events(key, columns=("event_id", "ical_uid"))
    pairs = [(str(r["event_id"]), str(r.get("ical_uid") or "")) for r in rows if r.get("event_id")]
    plan = icaluid.plan_changes(key.label, pairs, (), {})
    try:
        index.write(key.tenant_id, plan)
    except CalsyncError as exc:
        log.warning("iCalUId index not filled for %s: %s", key.user_id, exc.message)
        return 0
    return len(plan.upserts) // 2


def find(svc: Services, tenant: str | None, ical_uid: str | None) -> dict[str, Any]:
    """The mirrored events with this iCalUId across the tenant's enrolled mailboxes."""
    wanted = icaluid.parse_ical_uid(ical_uid)
    if tenant is None or not tenant.strip():
        raise InputError("tenant is required: give the tenant id (?tenant=...)")
    known = {t.lower(): t for t in svc.settings.tenant_ids}
    tenant_id = known.get(tenant.strip().lower())
    if tenant_id is None:
        raise NotFoundError(f"tenant {tenant!r} is not one of TENANT_IDS")
    index = svc.icaluids
    if index is None:
        raise StorageError("the iCalUId index is not configured")
    hits = index.lookup(tenant_id, wanted)
    records = {}
    if hits:
        records = {r.key.label.lower(): r for r in svc.state.list_mailboxes(tenant_id)}
    value = []
    for user_id, event_id in hits:
        record = records.get(user_id)
        if record is None or not record.enabled:
            continue
        row = _mirrored(svc, record.key, event_id)
        if row is None or row.get("ical_uid") != wanted:
            index.drop(tenant_id, user_id, event_id, wanted)
            continue
        if not row_is_shown(row, plan_window(svc.now(), record.options)):
            continue  # in the window's margin: mirrored, not shown (core.window)
        zone_name = record.options.time_zone or "UTC"
        zone, name = resolve_zone(zone_name) or UTC, iana_zone_name(zone_name) or "UTC"
        item = ag.agenda_item(row, zone, name)
        shown = {"userId": record.key.user_id, "calendar": record.key.calendar_name}
        value.append(shown | {"upn": record.upn} | item)
    value.sort(key=lambda v: (v["userId"], v["start"], v["id"]))
    return {"tenantId": tenant_id, "iCalUId": wanted, "count": len(value), "value": value}


def _mirrored(svc: Services, key: MailboxKey, event_id: str) -> dict[str, Any] | None:
    """The mirror's row of one event, as stored, or None."""
    try:
        entity = svc.state.events.get_entity(key.partition, encode_key(event_id))
    except ResourceNotFoundError:
        return None
    except AzureError as exc:
        raise StorageError(f"reading a mirrored event: {type(exc).__name__}") from None
    return {k: v for k, v in entity.items() if k not in _META and v is not None}
