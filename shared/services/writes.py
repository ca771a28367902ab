"""The write API: create, update, delete and cancel events in an enrolled mailbox's calendar,
idempotently, and read your writes; through Graph, or EWS for a mailbox on Exchange Server
(the provider behind the port core.write_port, chosen by write_mirror.writer_for; EWS's
refusals come as Graph's do: a stale ChangeKey is WriteConflict, ErrorServerBusy is Throttled
with its BackOffMilliseconds).

A write is checked (core.writes) before any Graph call and stored as a record first (its id
from the caller's Idempotency-Key: a retry finds the same record and answers what it is now,
never a second event). Then Graph is called once:
- done: the mirror is updated from Graph's answer at once through services.mirror.apply_items
  (a series: its instances in the window), and the resulting (event id, changeKey) pairs are
  recorded as written by this write, so the change feed knows its own echo;
- 412 (the changeKey sent is stale): failed as a conflict; the current version is read,
  mirrored and handed back (HTTP 409);
- throttled or failing transiently: pending, queued on `calendar-writes` to be tried again
  after Graph's Retry-After (or a jittered backoff), at most core.writes.MAX_ATTEMPTS times;
  while a sync round's Retry-After holds the mailbox (the cursor's `throttled_until`), a write
  is not sent at all but queued until then (writes never move that hold: the cursor belongs
  to the round that holds its lease);
- anything else: failed with Graph's reason.
A create tried again first looks for the event its earlier try may have made (the origin
marker names the write), and a repeated `transactionId` that Graph refuses is resolved the
same way: one write, one event. An update tried again that meets a 412 is done if the event
carries its own marker; a delete or cancel tried again that meets a 404 is done.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from shared.compose import Services
from shared.core import writes as core
from shared.core.retry import plan_backoff
from shared.core.state import MailboxRecord
from shared.core.writes import WriteRecord
from shared.errors import (
    CalsyncError,
    GraphError,
    IdempotencyMismatch,
    InputError,
    NotFoundError,
    StorageError,
    Throttled,
    WriteConflict,
)
from shared.services import write_mirror
from shared.services.mailboxes import find

if TYPE_CHECKING:
    from shared.adapters.queues import WriteQueue
    from shared.adapters.write_tables import WriteStore

log = logging.getLogger("calsync.writes")
_WRITE_ID = re.compile(r"^[0-9a-f]{32}$")
# Longer than any one Graph call may take (the client's timeout is 30 s), so a write still in
# flight is never tried twice at once.
ABANDONED_SECONDS = 120


def _stores(svc: Services) -> tuple[WriteStore, WriteQueue]:
    if svc.writes is None or svc.write_queue is None:
        raise StorageError("the write store is not configured; writes cannot be recorded")
    return svc.writes, svc.write_queue


def run_write(
    svc: Services, tenant_id: str, user: str, body: Any, idempotency_key: str | None
) -> tuple[dict[str, Any], int]:
    """POST /api/mailboxes/{tenant}/{user}/writes: (the write's view, HTTP status), or the
    project error its failure means (WriteConflict carries the current version)."""
    mailbox = find(svc, tenant_id, user)
    if not mailbox.enabled:
        raise NotFoundError(f"mailbox {user!r} is not enrolled (removed); PUT it first")
    request = core.parse_write(body)
    key_text = core.check_idempotency_key(idempotency_key)
    store, _ = _stores(svc)
    record = core.new_record(mailbox.key, request, key_text, svc.now())
    if not store.create(record):
        existing = store.get(record.write_id)
        if existing is not None:
            if existing.request.digest() != request.digest():
                raise IdempotencyMismatch(
                    f"Idempotency-Key {key_text!r} was used for another write of this "
                    f"mailbox (write {existing.write_id}); use a new key for a new write"
                )
            if not _abandoned(existing, svc):
                return _answer(existing)
            record = existing  # its first try died before any outcome was stored: try again
        else:
            store.save(record)
    record, error = _execute(svc, mailbox, record)
    if error is not None:
        raise error
    return _answer(record)


def get_write(svc: Services, write_id: str) -> dict[str, Any]:
    """GET /api/writes/{id}: the write as it is now (pending, done or failed)."""
    store, _ = _stores(svc)
    record = store.get(write_id) if _WRITE_ID.match(write_id) else None
    if record is None:
        raise NotFoundError(f"no write {write_id!r}; a write's id is in its POST's answer")
    return core.view(record)


def run_write_message(svc: Services, body: bytes | str) -> str:
    """The queue trigger of `calendar-writes`: try a pending write again; returns what it did."""
    from shared.adapters.queues import decode_write_message

    store, queue = _stores(svc)
    write_id = decode_write_message(body)
    record = store.get(write_id)
    if record is None or record.status != "pending":
        return f"write {write_id}: nothing to do ({record.status if record else 'unknown'})"
    now = svc.now()
    if record.retry_at is not None and (record.retry_at - now).total_seconds() > 1:
        queue.put(write_id, delay=(record.retry_at - now).total_seconds())  # delivered early
        return f"write {write_id}: not yet, re-queued"
    mailbox = svc.state.find_mailbox(record.key)
    if mailbox is None or not mailbox.enabled:
        store.save(core.plan_failed(record, "not_found", "the mailbox is no longer enrolled", now))
        return f"write {write_id}: failed, mailbox gone"
    record, _ = _execute(svc, mailbox, record)
    return f"write {write_id}: {record.status}"


def _abandoned(record: WriteRecord, svc: Services) -> bool:
    """A pending write nobody is trying: never queued and older than ABANDONED_SECONDS (the
    process trying it stopped before storing its outcome), or queued but overdue by as much
    (its message was lost). Trying it again is safe: every action is idempotent by itself."""
    due = record.retry_at or record.updated
    overdue = (svc.now() - due).total_seconds() > ABANDONED_SECONDS
    return record.status == "pending" and overdue


def _answer(record: WriteRecord) -> tuple[dict[str, Any], int]:
    if record.status == "failed":
        raise _failure(record)
    if record.status == "pending":
        return core.view(record), 202
    return core.view(record), 201 if record.request.action == "create" else 200


def _failure(record: WriteRecord) -> CalsyncError:
    """The error a stored failed write answers with when it is asked for again."""
    message = f"write {record.write_id} failed: {record.error}"
    if record.error_code == WriteConflict.code:
        conflict = WriteConflict(message)
        conflict.current = dict(record.event) if record.event is not None else None
        return conflict
    if record.error_code == NotFoundError.code:
        return NotFoundError(message)
    if record.error_code == InputError.code:
        return InputError(message)
    return GraphError(message, status=None, graph_code=record.error_code)


def _execute(
    svc: Services, mailbox: MailboxRecord, record: WriteRecord
) -> tuple[WriteRecord, CalsyncError | None]:
    """Call Graph for `record` once and store the outcome; (record, error to answer)."""
    store, queue = _stores(svc)
    held, now = svc.state.get_cursor(mailbox.key).throttled_until, svc.now()
    if held is not None and held > now:  # the mailbox waits out a Retry-After: so does the write
        waiting = core.plan_held(record, held, now)
        store.save(waiting)
        queue.put(waiting.write_id, delay=(held - now).total_seconds())
        return waiting, None
    try:
        answer = _send(svc, mailbox, record)
    except WriteConflict as exc:
        exc.current = write_mirror.current_version(svc, mailbox, record.request.event_id)
        failed = core.plan_failed(record, exc.code, exc.message, svc.now(), exc.current)
        store.save(failed)
        return failed, exc
    except CalsyncError as exc:
        if not exc.transient:
            failed = core.plan_failed(record, exc.code, exc.message, svc.now())
            store.save(failed)
            return failed, exc
        retry_after = exc.retry_after if isinstance(exc, Throttled) and exc.retry_after else None
        delay = plan_backoff(record.attempts + 1, retry_after, svc.rng)
        later = core.plan_retry(record, exc.detail_code, exc.message, delay, svc.now())
        store.save(later)
        if later.status == "pending":
            queue.put(later.write_id, delay=delay)
            log.info("write %s queued: %s; retry in %.1f s", record.write_id, exc.code, delay)
            return later, None
        return later, exc
    done = core.plan_done(record, answer, svc.now())
    try:
        write_mirror.mirror_write(svc, mailbox, done, store)
    except CalsyncError as exc:  # the write stands; the next delta round heals the mirror
        log.warning("write %s done but not mirrored at once: %s", record.write_id, exc.message)
    store.save(done)
    return done, None


def _send(svc: Services, mailbox: MailboxRecord, record: WriteRecord) -> dict[str, Any] | None:
    """The one provider write of `record`; its answer (None after a delete or cancel)."""
    request = record.request
    writer = write_mirror.writer_for(svc, mailbox)
    if request.action == "create":
        if record.attempts:
            found = writer.find_origin(mailbox, record.origin)
            if found is not None:
                return found
        try:
            return writer.create(mailbox, record)
        except GraphError as exc:
            found = writer.find_origin(mailbox, record.origin) if exc.status == 409 else None
            if found is None:
                raise
            return found
    if request.action == "update":
        change_key = request.change_key or _mirrored_change_key(svc, mailbox, request.event_id)
        try:
            return writer.update(mailbox, record, change_key)
        except WriteConflict:
            # Tried again: the changeKey is stale if the earlier try got through (its answer
            # lost); the event then carries this write's own marker, and the write is done.
            current = (
                write_mirror.current_version(svc, mailbox, request.event_id)
                if record.attempts
                else None
            )
            if current is None or core.origin_of(current) != record.origin:
                raise
            return current
    try:
        if request.action == "delete":
            writer.delete(mailbox, request.event_id)
        else:
            writer.cancel(mailbox, request.event_id, request.comment)
    except NotFoundError:
        if not record.attempts:
            raise  # tried again, a 404 means the earlier try got through: done
    return None


def _mirrored_change_key(svc: Services, mailbox: MailboxRecord, event_id: str) -> str:
    """The mirror's changeKey of the event ("" when it is not mirrored, e.g. a series master:
    then the update is sent without If-Match, unless the caller gave a changeKey)."""
    return svc.state.stored_versions(mailbox.key, [event_id]).get(event_id, ("", ""))[0]
