"""Pure: one feed cursor for every mailbox of a tenant (`GET /api/tenants/{tenant}/changes`).

Why positions, not a time: a mailbox's sequences are gapless and the `changes` table shows a
prefix of them (the relay copies the outbox oldest first and drops a row only once it is
written), but there is no global order: two hosts relay two mailboxes at once, and a change a
crash left in the outbox is relayed minutes later with its old `occurredAt`. A cursor that is a
time would skip such a change; a cursor that is every mailbox's position never skips nor repeats
one, whatever order the relays write in.

Rules:
- The cursor is opaque: base64url of a version byte, the tenant's 4-byte digest and, for each
  mailbox that has given a change, the 8-byte digest of its user id and its last sequence
  (LEB128), sorted by digest, so the same positions are always the same text. About 11 bytes
  per mailbox (15 characters). A mailbox absent from it starts from its oldest kept change.
- A page merges each mailbox's next changes, each mailbox in sequence order, the mailboxes
  interleaved by (occurredAt, user id, sequence): the same cursor over the same rows gives the
  same page. Each mailbox is read only for its share of the page (`run_size`); a page ends
  where a mailbox read short runs out, so the interleaving never guesses past what was read.
- Each mailbox's run is read from its position on (the row at the position included): that row
  present, the run is what follows it without a hole; it gone (past the retention), the run
  starts at the oldest kept. A hole in a run (a change not relayed yet while a later one is)
  stops that mailbox's run there: the page waits for the missing change rather than skip it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.core.feed import ChangeEvent
from shared.errors import InputError

VERSION = 1
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MIN_RUN = 8  # changes read per mailbox and page, at least
_DIGEST = 8
_TENANT_DIGEST = 4
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


def mailbox_digest(label: str) -> bytes:
    """The cursor's name of one mailbox calendar (`MailboxKey.label`: user or user:handle)."""
    return hashlib.sha256(label.lower().encode()).digest()[:_DIGEST]


def _tenant_digest(tenant_id: str) -> bytes:
    return hashlib.sha256(tenant_id.lower().encode()).digest()[:_TENANT_DIGEST]


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def encode_cursor(tenant_id: str, positions: Mapping[str, int]) -> str:
    """The opaque cursor for these positions (user id -> last sequence given; -1 = none)."""
    entries = sorted((mailbox_digest(u), s) for u, s in positions.items() if s >= 0)
    raw = bytearray([VERSION]) + _tenant_digest(tenant_id)
    for digest, sequence in entries:
        raw += digest + _varint(sequence)
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def _bad(why: str) -> InputError:
    return InputError(f"after: {why}; pass the `next` of an earlier page, or none to start")


def decode_cursor(text: str, tenant_id: str) -> dict[bytes, int]:
    """The positions a cursor holds (mailbox digest -> last sequence); InputError naming
    `after` for anything that is not a cursor of this tenant's feed."""
    cleaned = text.strip()
    if not cleaned or len(cleaned) > 200_000:
        raise _bad("not a cursor of this feed")
    try:
        if not _ALPHABET.fullmatch(cleaned):
            raise ValueError(cleaned)
        raw = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise _bad("not a cursor of this feed (not base64url)") from None
    if len(raw) < 1 + _TENANT_DIGEST or raw[0] != VERSION:
        raise _bad("not a cursor of this feed")
    if raw[1 : 1 + _TENANT_DIGEST] != _tenant_digest(tenant_id):
        raise _bad("a cursor of another tenant's feed")
    out: dict[bytes, int] = {}
    at = 1 + _TENANT_DIGEST
    while at < len(raw):
        digest, at = raw[at : at + _DIGEST], at + _DIGEST
        number, shift = 0, 0
        while True:
            if len(digest) < _DIGEST or at >= len(raw) or shift > 63:
                raise _bad("a damaged cursor")
            byte = raw[at]
            at += 1
            number |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        out[bytes(digest)] = number
    return out


def parse_limit(text: str | None) -> int:
    """`limit` as a page size; InputError naming it."""
    if text is None or not text.strip():
        return DEFAULT_LIMIT
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise InputError(f"limit={value[:16]!r} must be a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def run_after(rows: Sequence[ChangeEvent], position: int) -> tuple[list[ChangeEvent], bool]:
    """The changes to give after `position`, from `rows` read from the position on (see the
    module docstring), and whether a hole stopped the run."""
    if not rows:
        return [], False
    start = 1 if position >= 0 and rows[0].sequence == position else 0
    run: list[ChangeEvent] = []
    expected = position + 1 if start else rows[0].sequence
    for change in rows[start:]:
        if change.sequence != expected:
            return run, True
        run.append(change)
        expected += 1
    return run, False


@dataclass(frozen=True)
class Page:
    changes: list[ChangeEvent]
    positions: dict[str, int]  # user id -> last sequence given, after this page
    more: bool


def plan_page(
    runs: Mapping[str, Sequence[ChangeEvent]],
    positions: Mapping[str, int],
    limit: int,
    *,
    truncated: frozenset[str] = frozenset(),
) -> Page:
    """The next `limit` changes of the mailboxes' runs (user id -> run, in sequence order),
    interleaved by (occurredAt, user id, sequence), and the positions after them. `truncated`:
    mailboxes whose run was cut by the read size (more may follow them): the page ends with
    the last change read of such a mailbox, since its next one might come before any other."""
    merged = heapq.merge(
        *(
            [((c.occurred_at, user, c.sequence), user, c) for c in run]
            for user, run in sorted(runs.items())
        )
    )
    page: list[ChangeEvent] = []
    after = {u: s for u, s in positions.items() if s >= 0}
    taken: dict[str, int] = {}
    for _, user, change in merged:
        if len(page) >= limit:
            break
        page.append(change)
        after[user] = change.sequence
        taken[user] = taken.get(user, 0) + 1
        if user in truncated and taken[user] == len(runs[user]):
            break  # what follows this mailbox is unread: nothing later can be placed yet
    more = any(taken.get(u, 0) < len(r) for u, r in runs.items()) or any(
        taken.get(u, 0) == len(runs.get(u, ())) for u in truncated
    )
    return Page(page, after, more)


def run_size(limit: int, mailboxes: int) -> int:
    """How many changes to read of each mailbox for a page of `limit`: enough for its share
    twice over (at least MIN_RUN), never more than the page. A mailbox read short bounds the
    page (see plan_page), so a busy mailbox among idle ones costs pages, never order."""
    if mailboxes <= 0:
        return limit
    return min(limit, max(MIN_RUN, -(-2 * limit // mailboxes)))
