"""Backoff: Retry-After honoured, else exponential with full jitter under a 60 s cap."""

from __future__ import annotations

import math
import random

import pytest

from shared.core.retry import plan_backoff
from shared.errors import InputError


@pytest.mark.parametrize("retry_after", [0.0, 0.25, 3, 120.5])
def test_retry_after_honoured(retry_after: float) -> None:
    """When Graph gives Retry-After, that is the wait, fractions included."""
    assert plan_backoff(5, retry_after, random.Random(0)) == retry_after


@pytest.mark.parametrize("retry_after", [None, -1.0, math.nan, math.inf])
def test_unusable_retry_after_falls_back_to_backoff(retry_after: float | None) -> None:
    """Missing or nonsensical Retry-After values use the jittered backoff."""
    assert 0 <= plan_backoff(1, retry_after, random.Random(0)) <= 1.0


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (500, 60)]
)
def test_full_jitter_bounds(attempt: int, ceiling: float) -> None:
    """Waits are uniform over [0, min(60, 2**(attempt-1))] and actually use that range."""
    rng = random.Random(attempt)
    waits = [plan_backoff(attempt, None, rng) for _ in range(2000)]
    assert all(0 <= w <= ceiling for w in waits)
    assert max(waits) > 0.9 * ceiling
    assert min(waits) < 0.1 * ceiling


def test_attempt_starts_at_one() -> None:
    """attempt 0 or less is an InputError."""
    with pytest.raises(InputError, match="starts at 1"):
        plan_backoff(0, None, random.Random(0))
