"""Table key encoding: reversible, Table-safe, case-preserving, bounded."""

from __future__ import annotations

import random

import pytest

from shared.core.keys import MAX_KEY_UTF16_UNITS, decode_key, encode_key
from shared.errors import InputError

FORBIDDEN = set("/\\#?") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}
# Characters a random value is drawn from: the dangerous ones, the escape characters, ordinary
# text, Graph's id alphabet, and code points beyond the BMP.
ALPHABET = (
    sorted(FORBIDDEN)
    + list("!%!%~'\"+=-_.AaZz09 ")
    + ["é", "ß", "中", "\u2028", "\ufffd", "😀", "\U0010ffff"]
)

GRAPH_ID = (
    "AAMkAGI2TG93AAA=/AQMkAGI2+TQ3ZC04YjZmLTQ0ZDEtOWVkOS1jYzk4NjU3ZjNjYWQARgAAA8xYz6/Cw2dBi-d"
)


def _random_value(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))


def test_round_trip_of_many_random_strings() -> None:
    """decode_key(encode_key(v)) == v for thousands of random strings."""
    rng = random.Random(20261121)
    for _ in range(5000):
        value = _random_value(rng)
        assert decode_key(encode_key(value)) == value


def test_encoded_keys_never_hold_forbidden_characters_or_percent() -> None:
    """No encoded key contains a character Table keys forbid, nor '%'."""
    rng = random.Random(7)
    for _ in range(5000):
        key = encode_key(_random_value(rng))
        assert not (set(key) & FORBIDDEN)
        assert "%" not in key


def test_encoding_is_injective() -> None:
    """Distinct values never share a key (so two events never collide in the mirror)."""
    rng = random.Random(11)
    seen: dict[str, str] = {}
    for _ in range(5000):
        value = _random_value(rng)
        key = encode_key(value)
        assert seen.setdefault(key, value) == value


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("", ""),
        ("abc", "abc"),
        ("AbC", "AbC"),
        ("a/b", "a!2Fb"),
        ("a\\b#c?d", "a!5Cb!23c!3Fd"),
        ("!", "!21"),
        ("%", "!25"),
        ("\t\n\x7f\x9f", "!09!0A!7F!9F"),
        ("+=", "+="),
        ("é😀", "é😀"),
    ],
)
def test_known_encodings(value: str, key: str) -> None:
    """Forbidden characters, '%' and the escape '!' become !XX; everything else is kept."""
    assert encode_key(value) == key
    assert decode_key(key) == value


def test_case_is_preserved_and_graph_ids_stay_distinct() -> None:
    """Graph ids differing only in case get different keys."""
    assert encode_key(GRAPH_ID) != encode_key(GRAPH_ID.lower())
    assert decode_key(encode_key(GRAPH_ID)) == GRAPH_ID


def test_key_limit_is_one_kib_of_utf16() -> None:
    """A key of 512 UTF-16 units is fine; one unit more is an InputError naming the limit."""
    assert len(encode_key("a" * MAX_KEY_UTF16_UNITS)) == MAX_KEY_UTF16_UNITS
    with pytest.raises(InputError, match="1 KiB"):
        encode_key("a" * (MAX_KEY_UTF16_UNITS + 1))
    # Escaping triples a '/', and an astral character counts two units.
    with pytest.raises(InputError):
        encode_key("/" * 171)
    with pytest.raises(InputError):
        encode_key("😀" * 257)


@pytest.mark.parametrize("key", ["a/b", "a%b", "!", "!2", "!zz", "!2f", "!41", "a!!21", "x\x00"])
def test_decode_rejects_what_encode_never_produces(key: str) -> None:
    """Raw forbidden characters, stray or lower-case escapes and needless escapes are refused."""
    with pytest.raises(InputError, match="not an encoded Table key"):
        decode_key(key)


def test_lone_surrogates_are_refused() -> None:
    """A value that is not valid Unicode cannot become a key."""
    with pytest.raises(InputError, match="surrogate"):
        encode_key("a\ud800b")
