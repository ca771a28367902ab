"""The mailbox lease decision: free, expired, renewed by its holder, or busy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core.lease import LeaseDecision, plan_lease
from shared.errors import InputError

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("holder", "until"),
    [
        (None, None),
        ("", None),
        ("other", NOW - timedelta(seconds=1)),
        ("other", NOW),  # a lease ending now is over
        ("other", None),
        ("me", NOW + timedelta(minutes=1)),  # the holder renews
        ("me", NOW - timedelta(minutes=1)),
    ],
)
def test_acquired(holder: str | None, until: datetime | None) -> None:
    """A free, expired or own lease is acquired until now + duration."""
    assert plan_lease("me", holder, until, NOW, FIVE) == LeaseDecision(True, NOW + FIVE)


def test_busy_with_remaining_seconds() -> None:
    """Another owner's live lease is busy, with the seconds it has left."""
    decision = plan_lease("me", "other", NOW + timedelta(seconds=42.5), NOW, FIVE)
    assert decision.busy
    assert not decision.acquired
    assert decision.remaining == 42.5
    assert decision.until == NOW + timedelta(seconds=42.5)


def test_bad_arguments() -> None:
    """An empty owner or a non-positive duration is an InputError."""
    with pytest.raises(InputError, match="owner"):
        plan_lease("", None, None, NOW, FIVE)
    with pytest.raises(InputError, match="positive"):
        plan_lease("me", None, None, NOW, timedelta(0))
