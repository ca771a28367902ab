"""Pure: fitting a flat property dict into Azure Table Storage's size limits, and back.

Rule (learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model):
a string property holds at most 64 KiB, i.e. 32,768 UTF-16 code units; an entity holds at most
1 MiB and 255 properties (252 besides PartitionKey, RowKey, Timestamp).
- `chunk_properties`: a string longer than CHUNK_UNITS (32,000 UTF-16 code units, a margin under
  32,768) is split, on code point boundaries, into `<name>`, `<name>__1`, `<name>__2`, ... with
  `<name>__parts` = the number of parts. Shorter strings are stored as they are, with no
  `__parts` property.
- `join_properties` reverses it; keys it does not know (PartitionKey, change_key, ...) pass through.
- `entity_size` estimates the stored size with the service's published formula:
  4 + 2*len(PartitionKey) + 2*len(RowKey) + per property 8 + 2*len(name) + the value's size
  (string 4 + 2 per UTF-16 unit, datetime/double/int64 8, int32 4, bool 1).
Stored entities must be written with Replace (not Merge) semantics, so parts left over from a
longer earlier value (`body__3`) disappear when the value shrinks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.errors import InputError

CHUNK_UNITS = 32_000
PARTS_SUFFIX = "__parts"
MAX_PROPERTIES = 252


def utf16_units(text: str) -> int:
    """The length of `text` in UTF-16 code units, as Table Storage counts it."""
    if text.isascii():
        return len(text)
    # Counted by code point, not by encoding: a lone surrogate (which cannot be encoded) is one.
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def cut_utf16(text: str, units: int) -> str:
    """The longest prefix of `text` within `units` UTF-16 code units (never splits a pair)."""
    if units <= 0:
        return ""
    if utf16_units(text) <= units:
        return text
    if text.isascii():
        return text[:units]
    data = text.encode("utf-16-le")[: 2 * units]
    # A cut between the halves of a surrogate pair leaves a high surrogate last: drop it.
    if 0xD8 <= data[-1] <= 0xDB:
        data = data[:-2]
    return data.decode("utf-16-le")


def split_utf16(text: str, units: int = CHUNK_UNITS) -> list[str]:
    """`text` in consecutive pieces of at most `units` (>= 2) UTF-16 code units each."""
    if units < 2:
        raise InputError(f"pieces need room for a surrogate pair (2 units), got {units}")
    parts: list[str] = []
    rest = text
    while True:
        head = cut_utf16(rest, units)
        parts.append(head)
        rest = rest[len(head) :]
        if not rest:
            return parts


def chunk_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """`props` with every over-long string split into numbered parts (see module docstring)."""
    out: dict[str, Any] = {}
    for name, value in props.items():
        if isinstance(value, str) and utf16_units(value) > CHUNK_UNITS:
            parts = split_utf16(value)
            out[name] = parts[0]
            for index, part in enumerate(parts[1:], start=1):
                out[f"{name}__{index}"] = part
            out[f"{name}{PARTS_SUFFIX}"] = len(parts)
        else:
            out[name] = value
    if len(out) > MAX_PROPERTIES:
        raise InputError(
            f"the entity would have {len(out)} properties, over Table Storage's {MAX_PROPERTIES}"
        )
    return out


def join_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """Reverse `chunk_properties`: each split string joined back under its own name."""
    out = dict(props)
    for key in [k for k in props if k.endswith(PARTS_SUFFIX)]:
        name = key[: -len(PARTS_SUFFIX)]
        count = props[key]
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InputError(f"stored property {key} must be a positive count, got {count!r}")
        names = [name] + [f"{name}__{i}" for i in range(1, count)]
        missing = [n for n in names if not isinstance(props.get(n), str)]
        if missing:
            raise InputError(
                f"stored property {name} has {count} parts but {', '.join(missing)} "
                "is missing or not text: the entity was written partially; resync the mailbox"
            )
        out[name] = "".join(props[n] for n in names)
        for extra in names[1:]:
            del out[extra]
        del out[key]
    return out


def value_size(value: Any) -> int:
    """Bytes one property value takes in the service's entity size formula."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float | datetime):
        return 8
    if isinstance(value, str):
        return 4 + 2 * utf16_units(value)
    if isinstance(value, bytes):
        return 4 + len(value)
    raise InputError(f"a Table property cannot hold a {type(value).__name__}")


def payload_size(entity: Mapping[str, Any]) -> int:
    """Bytes an entity may take in a batch request body (whose limit is 4 MiB, a different limit
    from the stored size above): its JSON, doubled to cover the SDK's `@odata.type` annotations
    and escapes. A safe upper bound, never an underestimate.
    https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions"""
    return 2 * len(json.dumps(entity, default=str))


def entity_size(props: Mapping[str, Any], *, partition_key: str = "", row_key: str = "") -> int:
    """Estimated stored size in bytes of an entity with these keys and properties."""
    size = 4 + 2 * utf16_units(partition_key) + 2 * utf16_units(row_key)
    for name, value in props.items():
        size += 8 + 2 * utf16_units(name) + value_size(value)
    return size
