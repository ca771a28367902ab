"""The subscription-write budget shared by hosts: slots, tokens per slot, blocks, and the bound
it keeps on any 20 s window even with hosts' clocks a slot apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core.renewals import SlotBudget
from shared.errors import InputError


def test_the_default_budget() -> None:
    """5 s slots of 75 writes, reserved 25 at a time."""
    budget = SlotBudget()
    assert (budget.slot_seconds, budget.per_slot, budget.block) == (5.0, 75, 25)


@pytest.mark.parametrize(
    ("used", "wanted", "granted"),
    [(0, 25, 25), (60, 25, 15), (75, 25, 0), (80, 25, 0), (0, 3, 3), (0, 100, 25)],
)
def test_grant(used: int, wanted: int, granted: int) -> None:
    """A reservation gets up to its wish and the block, never past the slot's tokens."""
    assert SlotBudget().grant(used, wanted) == granted


def test_slots_follow_the_clock() -> None:
    """A slot number is the Unix time over the slot length; its start is that number times it."""
    budget = SlotBudget()
    now = datetime(2026, 12, 1, 17, 0, 2, tzinfo=UTC)
    slot = budget.slot_of(now)
    assert budget.slot_start(slot) <= now.timestamp() < budget.slot_start(slot + 1)
    assert budget.slot_of(now + timedelta(seconds=5)) == slot + 1


def test_any_window_holds_at_most_the_limit_with_skewed_hosts() -> None:
    """Every slot spent in full by two hosts whose clocks are almost a slot apart: no 20 s
    window (sampled every 0.1 s) holds more than 450 writes."""
    budget = SlotBudget()
    writes: list[float] = []
    for slot in range(40):
        start = budget.slot_start(slot)
        share = budget.per_slot // 2
        writes += [start + 0.001] * share  # host A, on time, writes at its slot's start
        writes += [start + 4.999 + budget.slot_seconds * 0.99] * (budget.per_slot - share)  # B late
    for tenth in range(1800):
        lo = tenth / 10
        assert sum(1 for w in writes if lo <= w < lo + 20) <= 450


def test_a_budget_too_small_for_its_slots_is_refused() -> None:
    """A limit that leaves a slot no token is an InputError."""
    with pytest.raises(InputError):
        SlotBudget(limit=5)
