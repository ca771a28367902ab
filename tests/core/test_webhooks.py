"""The pure rules of webhook delivery: the retry schedule, the verdict on an answer, the URL and
filter checks, work items and replay ranges. Table-driven, no fixtures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.feed import ChangeEvent
from shared.core.webhooks import (
    JITTER,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    Coalescer,
    Filter,
    check_url,
    decode_work_item,
    judge,
    parse_filter,
    plan_replay_range,
    retry_delay,
)
from shared.errors import InputError

TENANT = "6f1c3a52-7d1e-4a3b-9c0e-2b8d4f6a1e90"
USER = "0b2f7c1e-5a4d-4e8f-9b3a-7c6d5e4f3a21"
DAY = 24 * 3600


def test_the_schedule_spans_more_than_a_day_even_at_its_shortest() -> None:
    """Every delay drawn at its low end still adds up to more than 24 hours."""
    shortest = sum(retry_delay(n, 0.0) or 0 for n in range(1, MAX_ATTEMPTS))
    assert shortest > DAY
    assert shortest == pytest.approx(sum(RETRY_DELAYS) * (1 - JITTER))


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [
        (1, 0.0, 5 * 0.8),
        (1, 0.5, 5.0),
        (2, 0.5, 15.0),
        (3, 0.999999, 45 * 1.2),
        (8, 0.5, 10935.0),
        (9, 0.5, 21600.0),
        (MAX_ATTEMPTS - 1, 0.5, 21600.0),
        (MAX_ATTEMPTS, 0.5, None),
        (MAX_ATTEMPTS + 3, 0.5, None),
        (1, 7.0, 5 * 1.2),  # a draw outside [0, 1) is clamped
    ],
)
def test_retry_delay(attempt: int, draw: float, expected: float | None) -> None:
    """Exponential delays with +/-20 % jitter, capped at 6 h; None after the last attempt."""
    got = retry_delay(attempt, draw)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-5)


def test_delays_grow_until_the_cap() -> None:
    """Each delay is at least the one before it (drawn at the middle)."""
    delays = [retry_delay(n, 0.5) or 0 for n in range(1, MAX_ATTEMPTS)]
    assert delays == sorted(delays)
    assert max(delays) == 21600


def test_attempts_count_from_one() -> None:
    """Attempt 0 is a programming error, not a schedule entry."""
    with pytest.raises(ValueError, match="count from 1"):
        retry_delay(0, 0.5)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (410, "gone"),
        (None, "retry"),
        (301, "retry"),
        (400, "retry"),
        (404, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_judge(status: int | None, verdict: str) -> None:
    """2xx delivered, 410 gone (disable), anything else (no answer too) retried."""
    assert judge(status) == verdict


@pytest.mark.parametrize(
    ("url", "allow", "ok"),
    [
        ("https://hooks.example.com/calsync", False, True),
        ("https://127.0.0.1:8443/in", False, True),
        ("https://localhost/in", False, True),
        ("http://127.0.0.1:8080/in", True, True),
        ("http://localhost:8080/in", True, True),
        ("http://[::1]:8080/in", True, True),
        ("http://127.0.0.1:8080/in", False, False),
        ("http://hooks.example.com/in", True, False),
        ("http://10.0.0.5/in", True, False),
        ("ftp://hooks.example.com/in", True, False),
        ("https://user:pw@hooks.example.com/in", False, False),
        ("https:///nohost", False, False),
        ("https://hooks.example.com:99999/", False, False),
        ("", False, False),
        (42, False, False),
        ("https://x.example/" + "a" * 2001, False, False),
    ],
)
def test_check_url(url: object, allow: bool, ok: bool) -> None:
    """https always; http only for loopback and only with the dev setting; no credentials."""
    if ok:
        assert check_url(url, allow_http_loopback=allow) == url
    else:
        with pytest.raises(InputError) as err:
            check_url(url, allow_http_loopback=allow)
        assert "url" in str(err.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("deleted", "filter"),
        ({"types": ["moved"]}, "filter.types"),
        ({"types": "created,moved"}, "filter.types"),
        ({"tenants": ["not-ours"]}, "filter.tenants"),
        ({"mailboxes": [1, 2]}, "filter.mailboxes"),
        ({"mailboxes": [""]}, "filter.mailboxes"),
        ({"colour": ["red"]}, "filter.colour"),
        ({"mailboxes": [f"u{i}" for i in range(101)]}, "filter.mailboxes"),
    ],
)
def test_a_bad_filter_names_its_field(body: object, field: str) -> None:
    """Each kind of bad filter is refused with the field's name in the message."""
    with pytest.raises(InputError) as err:
        parse_filter(body, [TENANT])
    assert field in str(err.value)


def _change(kind: str, tenant: str = TENANT, user: str = "u1") -> ChangeEvent:
    return ChangeEvent("c", 1, kind, tenant, user, "e", datetime(2026, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]


def test_exclude_writers_names_writers_or_every_one() -> None:
    """excludeWriters leaves out the changes of the writers it names (any case), "*" those of
    every writer; a change that no write made always passes."""
    made_by_crm = replace(_change("updated"), write_key="k", writer="CRM")
    assert not parse_filter({"excludeWriters": ["crm"]}, [TENANT]).matches(made_by_crm)
    assert parse_filter({"excludeWriters": ["helpdesk"]}, [TENANT]).matches(made_by_crm)
    every = parse_filter({"excludeWriters": "*"}, [TENANT])
    assert not every.matches(made_by_crm)
    assert every.matches(_change("updated"))


def test_filter_matching() -> None:
    """Empty parts match all; given ones narrow by tenant, mailbox (any case) and type."""
    everything = parse_filter(None, [TENANT])
    assert everything == Filter()
    assert everything.matches(_change("created"))
    only = parse_filter(
        {"tenants": [TENANT.upper()], "mailboxes": ["U1"], "types": "deleted"}, [TENANT]
    )
    assert only.matches(_change("deleted"))
    assert not only.matches(_change("created"))
    assert not only.matches(_change("deleted", user="u2"))
    assert only.matches_mailbox(TENANT, "u1")
    assert not only.matches_mailbox("other", "u1")


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"subscriber": "s", "tenantId": "t"},
        {"subscriber": "", "tenantId": "t", "mailboxId": "m"},
        {"subscriber": 3, "tenantId": "t", "mailboxId": "m"},
    ],
)
def test_a_bad_work_item_is_refused(data: object) -> None:
    """A queue message that is not a full work item is an InputError (poison, never run)."""
    with pytest.raises(InputError):
        decode_work_item(data)


def test_a_work_item_round_trips() -> None:
    """to_json and decode_work_item agree."""
    item = decode_work_item({"subscriber": "s", "tenantId": "t", "mailboxId": "m"})
    assert decode_work_item(item.to_json()) == item


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"tenantId": TENANT.upper(), "mailboxId": USER, "fromSequence": "3", "toSequence": "9"},
            (TENANT, USER, 3, 9),
        ),
        ({"tenantId": TENANT, "mailboxId": USER}, (TENANT, USER, 0, 10**20 - 1)),
    ],
)
def test_replay_range(data: dict[str, str], expected: tuple[str, str, int, int]) -> None:
    """A range replay names one mailbox and an inclusive range of sequences."""
    assert plan_replay_range(data) == expected


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"mailboxId": USER}, "tenantId"),
        ({"tenantId": "t/../x", "mailboxId": USER}, "tenantId"),
        ({"tenantId": TENANT}, "mailboxId"),
        ({"tenantId": TENANT, "mailboxId": USER, "fromSequence": "x"}, "fromSequence"),
        (
            {"tenantId": TENANT, "mailboxId": USER, "fromSequence": "5", "toSequence": "4"},
            "toSequence",
        ),
    ],
)
def test_a_bad_replay_range_names_its_field(data: dict[str, str], field: str) -> None:
    """Each bad range is refused naming the field."""
    with pytest.raises(InputError) as err:
        plan_replay_range(data)
    assert field in str(err.value)


def test_a_burst_of_writes_shares_two_work_items_per_pair() -> None:
    """The first write queues at once, the next within the window one delayed to its end (whole
    seconds), the writes while that one is invisible none; after the window, at once again;
    another pair is independent; a failed enqueue is forgotten."""
    c = Coalescer(window=1.0)
    pair, other = ("sub", "t_u"), ("sub", "t_v")
    assert c.plan(pair, 10.0) == 0.0
    assert c.plan(pair, 10.3) == 1.0
    assert c.plan(pair, 10.9) is None
    assert c.plan(pair, 11.2) is None
    assert c.plan(other, 10.5) == 0.0
    assert c.plan(pair, 11.4) == 0.0
    c.forget(pair)
    assert c.plan(pair, 11.5) == 0.0


def test_the_sweep_reads_a_mailbox_only_when_it_may_owe() -> None:
    """A partial sweep reads a mailbox with a round or notification in the last 15 minutes, or
    a pair retrying, waiting or leased; the first run of each hour is full."""
    from shared.core.webhooks import PairCursor, sweep_checks, sweep_is_full

    now = datetime(2026, 12, 1, 10, 7, tzinfo=UTC)
    rest = PairCursor("s", "t_u", delivered=4)
    assert sweep_checks((now - timedelta(minutes=14), None), [rest], now)
    assert sweep_checks((None, now - timedelta(minutes=1)), [], now)
    assert not sweep_checks((now - timedelta(minutes=16), None), [rest], now)
    assert not sweep_checks((None, None), [], now)
    assert sweep_checks((None, None), [PairCursor("s", "t_u", attempt=2)], now)
    assert sweep_checks((None, None), [PairCursor("s", "t_u", next_at=now)], now)
    assert sweep_checks((None, None), [PairCursor("s", "t_u", lease_owner="h")], now)
    assert sweep_is_full(now.replace(minute=0, second=20))
    assert not sweep_is_full(now)
