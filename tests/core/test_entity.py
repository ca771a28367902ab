"""Fitting properties into Table limits: UTF-16 cuts, chunking and joining, entity size."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from shared.core.entity import (
    CHUNK_UNITS,
    chunk_properties,
    cut_utf16,
    entity_size,
    join_properties,
    split_utf16,
    utf16_units,
)
from shared.errors import InputError


@pytest.mark.parametrize(
    ("text", "units", "expected"),
    [
        ("abcdef", 3, "abc"),
        ("abc", 10, "abc"),
        ("a😀b", 2, "a"),  # the pair would be split: stop before it
        ("a😀b", 3, "a😀"),
        ("😀😀", 1, ""),
        ("é中x", 2, "é中"),
        ("abc", 0, ""),
    ],
)
def test_cut_utf16_never_splits_a_pair(text: str, units: int, expected: str) -> None:
    """The cut is the longest prefix within the unit budget, on a code point boundary."""
    assert cut_utf16(text, units) == expected


def test_split_random_texts_round_trip_within_limits() -> None:
    """Random mixed texts split into parts of at most the limit that join back exactly."""
    rng = random.Random(5)
    alphabet = ["a", "é", "中", "😀", "\U0001f9d1", " "]
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        limit = rng.randint(2, 50)
        parts = split_utf16(text, limit)
        assert "".join(parts) == text
        assert all(utf16_units(p) <= limit for p in parts)
        assert all(p for p in parts) or text == ""


def test_split_needs_room_for_a_pair() -> None:
    """Pieces under two units could never hold an astral character: refused, not looped."""
    with pytest.raises(InputError, match="surrogate pair"):
        split_utf16("😀", 1)


def test_short_strings_are_not_chunked() -> None:
    """Strings at the limit stay as they are, with no __parts property."""
    props = {"body": "x" * CHUNK_UNITS, "n": 1}
    assert chunk_properties(props) == props


def test_long_string_chunked_and_joined() -> None:
    """A string over the limit becomes body, body__1, ... and body__parts; join reverses it."""
    body = "".join(chr(0x41 + i % 26) for i in range(CHUNK_UNITS * 2 + 5))
    props = {"subject": "s", "body": body}
    chunked = chunk_properties(props)
    assert chunked["body__parts"] == 3
    assert [len(chunked[k]) for k in ("body", "body__1", "body__2")] == [32000, 32000, 5]
    assert join_properties(chunked | {"PartitionKey": "p"}) == props | {"PartitionKey": "p"}


def test_join_reports_a_missing_part() -> None:
    """A stored entity missing one of its parts is an InputError that says to resync."""
    with pytest.raises(InputError, match="body__1"):
        join_properties({"body": "a", "body__parts": 2})
    with pytest.raises(InputError, match="positive count"):
        join_properties({"body": "a", "body__parts": 0})


def test_entity_size_formula() -> None:
    """Size follows the service's formula: 4 + keys + per property 8 + name + value."""
    props = {"s": "ab", "i": 1, "b": True, "d": datetime(2026, 1, 1, tzinfo=UTC), "big": 2**40}
    expected = 4 + 2 * 2 + 2 * 3
    expected += (8 + 2 + 4 + 4) + (8 + 2 + 4) + (8 + 2 + 1) + (8 + 2 + 8) + (8 + 6 + 8)
    assert entity_size(props, partition_key="pk", row_key="row") == expected
    with pytest.raises(InputError, match="cannot hold a list"):
        entity_size({"x": []})


def test_utf16_units_counts_astral_as_two() -> None:
    """Table Storage counts UTF-16 code units, so astral characters weigh two."""
    assert (utf16_units("abc"), utf16_units("é"), utf16_units("😀")) == (3, 1, 2)
