"""Event ids, changeKeys and iCalUIds shaped like Exchange's. Pure: no I/O.

Rule: ids are standard base64 (so '+', '/' and '=' occur, and case matters, as in real
Graph ids: resources/event "id ... Read-only"), built from bytes that say which mailbox
and which item they name. An occurrence id is its master's bytes plus the occurrence's
original start, so the same occurrence keeps the same id across every read, and any
occurrence id can be resolved back to (master, original start) without storing it.
A text that is not such an id is 400 ErrorInvalidIdMalformed; a well-formed id that names
nothing here is 404 ErrorItemNotFound (the store decides that).

Each item has two ids (https://learn.microsoft.com/graph/outlook-immutable-id): its immutable
id ("AAkAL...", what `Prefer: IdType="ImmutableId"` returns; the store keys items by it) is
made once and never changes while the item stays in its mailbox; its REST id ("AAMkA...", the
default) is made anew whenever the item moves to another folder. Both decode the same way;
`DecodedId.immutable` says which form a text is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from graphsim.errors import GraphRequestError

# Exchange REST ids start with these bytes ("AAMkA..." in base64), immutable ids with the
# second ("AAkAL...").
_PREFIX = b"\x00\x03\x24\x00"
_IMMUTABLE_PREFIX = b"\x00\x09\x00\x2e"
_ITEM_TAIL = b"\x46\x00\x00"
_RANDOM_LEN = 90  # 4 + 16 + 3 + 90 = 113 bytes -> 152 base64 characters ending in "="
_OCCURRENCE_MARK = b"\x10"
ITEM_LEN = len(_PREFIX) + 16 + len(_ITEM_TAIL) + _RANDOM_LEN
OCCURRENCE_LEN = ITEM_LEN + 1 + 8

# The Outlook Global Object Id class id that starts every iCalUId.
_GOID_CLASS = "040000008200E00074C5B7101A82E008"


def mailbox_digest(user_id: str) -> bytes:
    """16 bytes that tie an id to its mailbox (ids of another mailbox are 404 here)."""
    return hashlib.sha256(user_id.lower().encode()).digest()[:16]


def new_item_raw(digest: bytes, rng: random.Random) -> bytes:
    """Immutable-id bytes for a new single event or series master."""
    return _IMMUTABLE_PREFIX + digest + _ITEM_TAIL + rng.randbytes(_RANDOM_LEN)


def new_rest_raw(digest: bytes, rng: random.Random) -> bytes:
    """REST-id bytes for an item in its current folder (new ones on every move)."""
    return _PREFIX + digest + _ITEM_TAIL + rng.randbytes(_RANDOM_LEN)


def encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def occurrence_id(master_raw: bytes, original_start: datetime) -> str:
    """The stable id of one occurrence of a series (also the id of its exception)."""
    seconds = int(original_start.timestamp())
    return encode(master_raw + _OCCURRENCE_MARK + seconds.to_bytes(8, "big", signed=True))


@dataclass(frozen=True, slots=True)
class DecodedId:
    """What an id names: an item (single or master) or one occurrence of a master."""

    digest: bytes
    item_raw: bytes
    original_start: datetime | None  # set for occurrence and exception ids
    immutable: bool = True  # False for a REST id
    suffix: bytes = b""  # the occurrence part of the id's bytes (after the item's)


def decode(event_id: str) -> DecodedId:
    """Resolve an id's bytes; 400 ErrorInvalidIdMalformed when it cannot be one of ours."""
    try:
        raw = base64.b64decode(event_id.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, AttributeError, ValueError):
        raise _malformed(event_id) from None
    immutable = raw.startswith(_IMMUTABLE_PREFIX)
    if not (immutable or raw.startswith(_PREFIX)) or len(raw) not in (ITEM_LEN, OCCURRENCE_LEN):
        raise _malformed(event_id)
    digest = raw[len(_PREFIX) : len(_PREFIX) + 16]
    if len(raw) == ITEM_LEN:
        return DecodedId(digest, raw, None, immutable)
    if raw[ITEM_LEN : ITEM_LEN + 1] != _OCCURRENCE_MARK:
        raise _malformed(event_id)
    seconds = int.from_bytes(raw[ITEM_LEN + 1 :], "big", signed=True)
    try:
        start = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise _malformed(event_id) from None
    return DecodedId(digest, raw[:ITEM_LEN], start, immutable, raw[ITEM_LEN:])


def _malformed(event_id: object) -> GraphRequestError:
    shown = str(event_id)[:40]
    return GraphRequestError(
        400,
        "ErrorInvalidIdMalformed",
        f"Id is malformed: '{shown}...' is not an event id of this mailbox; use the id exactly as "
        "Graph returned it (case-sensitive, URL-encoded in paths).",
    )


def new_change_key(rng: random.Random) -> str:
    """A changeKey: 16 random bytes in base64 (Exchange's are of that shape)."""
    return encode(rng.randbytes(16))


def new_ical_uid(rng: random.Random) -> str:
    """A series or single's iCalUId: a Global Object Id with a zero date."""
    return _GOID_CLASS + "00000000" + "0" * 16 + "10000000" + rng.randbytes(16).hex().upper()


def occurrence_ical_uid(master_uid: str, original_local_date: datetime) -> str:
    """An occurrence's iCalUId: the master's with the occurrence's date in bytes 16-19, which is
    why Graph says iCalUId "is different for each occurrence in a recurring series"."""
    d = original_local_date
    stamp = f"{d.year:04X}{d.month:02X}{d.day:02X}"
    return master_uid[:32] + stamp + master_uid[40:]
