"""The tenant feed's cursor and page rules, table-driven, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core import tenant_feed as tf
from shared.core.feed import ChangeEvent
from shared.errors import InputError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TENANT = "11111111-2222-3333-4444-555555555555"


def _c(user: str, sequence: int, seconds: float = 0.0) -> ChangeEvent:
    return ChangeEvent(
        f"{user}-{sequence}",
        sequence,
        "created",
        TENANT,
        user,
        f"e{sequence}",
        T0 + timedelta(seconds=seconds),
    )


@pytest.mark.parametrize(
    "positions",
    [{}, {"u1": 0}, {"u1": 5, "u2": 300, "u3": 2**40}, {f"u{n}": n * 1000 for n in range(50)}],
)
def test_a_cursor_gives_back_its_positions(positions: dict[str, int]) -> None:
    """Encoded then decoded, a cursor holds each mailbox's position under its digest."""
    cursor = tf.encode_cursor(TENANT, positions)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    decoded = tf.decode_cursor(cursor, TENANT)
    assert decoded == {tf.mailbox_digest(u): s for u, s in positions.items()}
    assert tf.encode_cursor(TENANT, dict(reversed(positions.items()))) == cursor  # stable text


def test_a_cursor_is_about_fifteen_characters_per_mailbox() -> None:
    """Positions of 100 mailboxes with sequences below 2^14 fit in 1,500 characters."""
    cursor = tf.encode_cursor(TENANT, {f"user-{n}": 10_000 + n for n in range(100)})
    assert len(cursor) <= 1_500


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not a cursor"),
        ("!!!", "not base64url"),
        ("AAAA", "not a cursor"),
        (tf.encode_cursor("another-tenant", {"u": 1}), "another tenant"),
        (tf.encode_cursor(TENANT, {"u": 200})[:-1], "damaged"),
    ],
)
def test_what_is_no_cursor_of_this_tenant_is_refused_naming_after(text: str, why: str) -> None:
    """Garbage, another tenant's cursor and a cut one are InputErrors starting with `after`."""
    with pytest.raises(InputError, match=why) as caught:
        tf.decode_cursor(text, TENANT)
    assert caught.value.message.startswith("after:")


@pytest.mark.parametrize(("text", "ok"), [(None, 100), ("1", 1), ("1000", 1000)])
def test_limits_in_range(text: str | None, ok: int) -> None:
    """No limit is 100; 1 to 1000 are taken as given."""
    assert tf.parse_limit(text) == ok


@pytest.mark.parametrize("text", ["0", "1001", "-1", "ten", "1e3"])
def test_limits_out_of_range_name_limit(text: str) -> None:
    """Anything else is an InputError naming limit."""
    with pytest.raises(InputError, match=r"^limit="):
        tf.parse_limit(text)


@pytest.mark.parametrize(
    ("sequences", "position", "given", "hole"),
    [
        ([], -1, [], False),
        ([0, 1, 2], -1, [0, 1, 2], False),
        ([4, 5, 6], 4, [5, 6], False),  # the position's own row comes back first: skipped
        ([9, 10], 4, [9, 10], False),  # the position's row is gone (retention): oldest kept on
        ([4, 5, 7, 8], 4, [5], True),  # 6 not relayed yet: wait for it, never skip it
        ([4, 6], 4, [], True),
        ([4], 4, [], False),
    ],
)
def test_a_run_never_skips_a_change(
    sequences: list[int], position: int, given: list[int], hole: bool
) -> None:
    """Rows read from the position on become the changes to give, stopping at a hole."""
    run, stopped = tf.run_after([_c("u", s) for s in sequences], position)
    assert ([c.sequence for c in run], stopped) == (given, hole)


def test_a_page_interleaves_by_time_and_keeps_each_mailbox_in_order() -> None:
    """Two mailboxes merged by occurredAt; a mailbox whose clock ran behind keeps its own
    order; the limit cuts the page and the positions say where each mailbox stands."""
    runs = {
        "a": [_c("a", 1, 0), _c("a", 2, 10), _c("a", 3, 5)],
        "b": [_c("b", 7, 3), _c("b", 8, 20)],
    }
    page = tf.plan_page(runs, {"a": 0, "b": 6, "c": 4}, 4)
    assert [(c.user_id, c.sequence) for c in page.changes] == [
        ("a", 1),
        ("b", 7),
        ("a", 2),
        ("a", 3),
    ]
    assert page.positions == {"a": 3, "b": 7, "c": 4}
    assert page.more is True
    rest = tf.plan_page({"a": [], "b": [_c("b", 8, 20)]}, page.positions, 4)
    assert ([c.sequence for c in rest.changes], rest.more) == ([8], False)


def test_a_run_cut_by_the_read_size_says_more() -> None:
    """All of a truncated mailbox's run given: more may follow it, so `more` is true."""
    page = tf.plan_page({"a": [_c("a", 0)]}, {}, 10, truncated=frozenset({"a"}))
    assert page.more is True


def test_a_mailbox_read_short_ends_the_page_where_it_runs_out() -> None:
    """Mailbox a was read short (two changes of more): the page stops after its second, even
    with room left, since a's third might come before b's later one."""
    runs = {
        "a": [_c("a", 1, 0), _c("a", 2, 10)],
        "b": [_c("b", 5, 3), _c("b", 6, 4), _c("b", 7, 20)],
    }
    page = tf.plan_page(runs, {}, 100, truncated=frozenset({"a"}))
    assert [(c.user_id, c.sequence) for c in page.changes] == [
        ("a", 1),
        ("b", 5),
        ("b", 6),
        ("a", 2),
    ]
    assert page.positions == {"a": 2, "b": 6}
    assert page.more is True


@pytest.mark.parametrize(
    ("limit", "mailboxes", "size"),
    [(100, 1, 100), (100, 10, 20), (100, 100, 8), (1000, 100, 20), (5, 1, 5), (5, 100, 5)],
)
def test_each_mailbox_is_read_for_its_share_of_the_page(
    limit: int, mailboxes: int, size: int
) -> None:
    """Twice its share, at least eight, never more than the page."""
    assert tf.run_size(limit, mailboxes) == size
