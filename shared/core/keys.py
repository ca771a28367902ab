"""Pure: reversible encoding of arbitrary strings (Graph ids) into Azure Table keys.

Rule: `decode_key(encode_key(v)) == v` for every string `v`, case preserved, and an encoded key
never holds a character Table Storage forbids in PartitionKey/RowKey: '/', '\\', '#', '?' and the
control characters U+0000-U+001F and U+007F-U+009F. Keys are limited to 1 KiB; Table Storage
stores strings as UTF-16, so the limit is 512 UTF-16 code units
(learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model).

Escaping is percent-style with '!' as the escape character: a forbidden character becomes
'!' + two upper-case hex digits of its code point ('/' -> '!2F'), and '!' itself becomes '!21'.
'%' is escaped too ('!25'): keys holding '%' break some Table operations addressed by URL and
the Azurite emulator (Azure/Azurite#1377; "PartitionKey or RowKey containing the percent
character causes some Windows Azure Tables APIs to fail", Azure Storage team blog, 2012), which is
also why '%' is not the escape character. Every character to escape is below U+0100, so two hex
digits always suffice. A Graph event id (base64 with '/', '+', '=') grows by two characters
per '/' in it. A leading '~' becomes '!7E': keys from '~' up to U+00A0 (exclusive; U+007F to
U+009F are escaped, so no encoded key starts with one) are the store's own rows in a mailbox's
partition (its change sequence and change rows), never an encoded id.
"""

from __future__ import annotations

import re

from shared.core.entity import utf16_units
from shared.errors import InputError

MAX_KEY_UTF16_UNITS = 512  # 1 KiB of UTF-16
ESCAPE = "!"
RESERVED_PREFIX = "~"  # keys starting with it are the store's own rows (sequence, change rows)

_FORBIDDEN = frozenset("/\\#?") | {chr(c) for c in range(0x20)}
_FORBIDDEN |= {chr(c) for c in range(0x7F, 0xA0)}
_ESCAPED = _FORBIDDEN | {ESCAPE, "%"}
_ENCODE_TABLE = {ord(c): f"{ESCAPE}{ord(c):02X}" for c in _ESCAPED}
_ESCAPE_RE = re.compile(r"!([0-9A-F]{2})")


def _check_unicode(value: str, what: str) -> None:
    # A lone surrogate cannot be sent to Table Storage (it is not valid UTF-8 or UTF-16).
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise InputError(f"{what} holds a lone surrogate code point: pass valid Unicode text")


def encode_key(value: str) -> str:
    """Encode `value` into a Table-safe key; InputError when the key would exceed 1 KiB."""
    _check_unicode(value, "the value to encode as a Table key")
    key = value.translate(_ENCODE_TABLE)
    if key.startswith(RESERVED_PREFIX):
        key = f"{ESCAPE}{ord(RESERVED_PREFIX):02X}{key[1:]}"
    units = utf16_units(key)
    if units > MAX_KEY_UTF16_UNITS:
        raise InputError(
            f"the Table key for a value of {len(value)} characters would be {units} UTF-16 code "
            f"units, over the 1 KiB key limit ({MAX_KEY_UTF16_UNITS}): use a shorter identifier"
        )
    return key


def decode_key(key: str) -> str:
    """Reverse `encode_key`; InputError for a string `encode_key` cannot have produced."""
    _check_unicode(key, "the Table key to decode")
    bad = sorted({repr(ch) for ch in key if ch in _FORBIDDEN or ch == "%"})
    if bad:
        raise InputError(f"not an encoded Table key: it holds raw {', '.join(bad)}")

    def replace(match: re.Match[str]) -> str:
        ch = chr(int(match.group(1), 16))
        if ch == RESERVED_PREFIX and match.start() == 0:
            return ch
        if ch not in _ESCAPED:
            raise InputError(
                f"not an encoded Table key: {match.group(0)!r} escapes {ch!r}, "
                "which encode_key never escapes"
            )
        return ch

    decoded = _ESCAPE_RE.sub(replace, key)
    # Every '!' must have been consumed by a valid escape: compare counts to find a stray one.
    if key.count(ESCAPE) != len(_ESCAPE_RE.findall(key)):
        raise InputError(
            "not an encoded Table key: '!' must be followed by two upper-case hex digits"
        )
    return decoded
