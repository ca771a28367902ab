"""Free/busy by getSchedule's rule (busiest item per slot), a mailbox's "now", and ETags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.etags import none_match, strong_etag
from shared.core.freebusy import (
    availability_view,
    busiest,
    now_of,
    parse_interval,
    schedule_items,
)
from shared.errors import InputError

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _item(eid: str, start_min: int, end_min: int, show_as: str, **extra: Any) -> dict[str, Any]:
    def at(m: int) -> str:
        return (T0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z")

    return {"id": eid, "start": at(start_min), "end": at(end_min), "showAs": show_as, **extra}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "free"),
        (["free", "workingElsewhere"], "workingElsewhere"),
        (["workingElsewhere", "tentative"], "tentative"),
        (["tentative", "busy"], "busy"),
        (["busy", "oof", "tentative"], "oof"),
        (["unknown", "nonsense"], "free"),
    ],
)
def test_busiest_ranks_oof_busy_tentative_elsewhere_free(
    statuses: list[str], expected: str
) -> None:
    """Busiest is oof > busy > tentative > workingElsewhere > free, not the larger digit."""
    assert busiest(statuses) == expected


@pytest.mark.parametrize(
    ("items", "minutes", "interval", "view"),
    [
        ([], 120, 30, "0000"),
        ([_item("a", 0, 30, "busy")], 120, 30, "2000"),
        ([_item("a", 15, 45, "tentative")], 120, 30, "1100"),
        # working elsewhere (4) loses to tentative (1) although 4 > 1
        ([_item("a", 0, 60, "workingElsewhere"), _item("b", 30, 60, "tentative")], 60, 30, "41"),
        ([_item("a", 0, 120, "busy"), _item("b", 30, 60, "oof")], 120, 30, "2322"),
        ([_item("a", -60, 10, "busy")], 60, 30, "20"),  # starts before the range
        ([_item("a", 50, 200, "oof")], 60, 30, "03"),  # ends after it
        ([_item("a", 30, 30, "busy")], 60, 30, "02"),  # zero length marks its slot
        ([_item("a", 0, 60, "busy", isCancelled=True)], 60, 30, "00"),
        ([_item("a", 0, 10, "busy")], 45, 30, "20"),  # the last slot is cut at the end
        ([_item("a", 0, 10, "busy")], 1440, 1440, "2"),
    ],
)
def test_availability_view(items: list[Any], minutes: int, interval: int, view: str) -> None:
    """One digit per interval: the busiest item overlapping it."""
    end = T0 + timedelta(minutes=minutes)
    assert availability_view(items, T0, end, interval) == view


@pytest.mark.parametrize(
    ("text", "value"), [(None, 30), ("", 30), ("5", 5), ("1440", 1440), ("60", 60)]
)
def test_interval(text: str | None, value: int) -> None:
    """interval defaults to 30 minutes; 5 to 1440 pass."""
    assert parse_interval(text) == value


@pytest.mark.parametrize("text", ["4", "1441", "x", "30.5", "-30"])
def test_bad_interval_names_it(text: str) -> None:
    """Outside 5-1440 or not a whole number: InputError naming interval."""
    with pytest.raises(InputError, match=r"^interval="):
        parse_interval(text)


def test_private_schedule_items_hide_what_they_are() -> None:
    """Like getSchedule: a private item has no subject or location; cancelled ones are left out."""
    items = [
        _item("p", 0, 30, "busy", sensitivity="private", subject="x", location="y"),
        _item("n", 0, 30, "tentative", sensitivity="normal", subject="Standup", location="R1"),
        _item("c", 0, 30, "busy", isCancelled=True),
    ]
    out = schedule_items(items)
    assert [(i["id"], i["isPrivate"], "subject" in i) for i in out] == [
        ("p", True, False),
        ("n", False, True),
    ]


@pytest.mark.parametrize(
    ("items", "minute", "status", "current", "nxt"),
    [
        ([], 0, "free", None, None),
        ([_item("a", 0, 30, "busy"), _item("b", 60, 90, "tentative")], 10, "busy", "a", "b"),
        ([_item("a", 0, 30, "busy")], 30, "free", None, None),  # end is exclusive
        ([_item("a", 0, 120, "tentative"), _item("b", 0, 30, "oof")], 10, "oof", "b", None),
        ([_item("a", 0, 120, "free"), _item("b", 5, 10, "busy")], 0, "free", "a", "b"),
        ([_item("late", 900, 960, "busy")], 0, "free", None, None),  # after today's end
        ([_item("a", -30, 60, "busy", isCancelled=True)], 0, "free", None, None),
    ],
)
def test_now(
    items: list[Any], minute: int, status: str, current: str | None, nxt: str | None
) -> None:
    """Status is the busiest event covering now; current is that event; next starts later today."""
    day_end = T0 + timedelta(hours=12)
    got = now_of(items, T0 + timedelta(minutes=minute), day_end)
    assert got["status"] == status
    assert (got["current"] or {}).get("id") == current
    assert (got["next"] or {}).get("id") == nxt


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ("*", True),
        ('"{tag}"', True),
        ('W/"{tag}"', True),
        ('"other", "{tag}"', True),
        ('"other"', False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    """If-None-Match matches the strong ETag of the bytes (weak comparison, lists, *)."""
    etag = strong_etag(b'{"a":1}')
    tag = etag.strip('"')
    assert none_match(header.format(tag=tag) if header else header, etag) is matches


def test_etag_is_over_the_bytes() -> None:
    """Same bytes, same strong ETag; one byte different, another."""
    assert strong_etag(b"x") == strong_etag(b"x") != strong_etag(b"y")
    assert strong_etag(b"x").startswith('"')
    assert len(strong_etag(b"x")) == 34
