"""MailboxRecord.health: the one-line health never says ok for a mailbox that is not synced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core.model import MailboxKey
from shared.core.state import MailboxRecord

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY = MailboxKey("t1", "u1")
_HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("enabled", "status", "expected"),
    [
        (False, {}, "disabled"),
        (
            True,
            {
                "state": "subscribed",
                "mode": "webhook",
                "subscription_id": "s1",
                "subscription_expiry": NOW + _HOUR,
            },
            "ok (webhook)",
        ),
        (
            True,
            {
                "state": "subscribed",
                "mode": "webhook",
                "subscription_id": "s1",
                "subscription_expiry": NOW - timedelta(days=1),
            },
            "error: subscription_expired: subscription s1 expired at 2026-11-20T12:00:00Z; "
            "it is being recreated",
        ),
        (
            True,
            {
                "state": "subscribed",
                "mode": "webhook",
                "subscription_id": "s1",
                "subscription_expiry": NOW,
            },
            "error: subscription_expired: subscription s1 expired at 2026-11-21T12:00:00Z; "
            "it is being recreated",
        ),
        (
            True,
            {
                "state": "subscribed",
                "mode": "webhook",
                "subscription_id": "s1",
                "subscription_expiry": NOW - _HOUR,
                "last_error": "boom",
                "last_error_code": "X",
            },
            "error: X: boom",  # the round's own error comes first
        ),
        (
            True,
            {"state": "poll_chosen", "mode": "poll", "mode_reason": "poll mode chosen"},
            "ok (poll mode: poll mode chosen)",
        ),
        (
            True,
            {"state": "poll_chosen", "mode": "poll", "last_sync_result": "failed"},
            "error: failed: the last round failed",  # failed, even with no error on record
        ),
        (
            True,
            {
                "state": "credential_invalid",
                "mode": "poll",
                "last_error": "rejected",
                "last_error_code": "7000215",
            },
            "error: 7000215: rejected",
        ),
    ],
)
def test_health_line(enabled: bool, status: dict[str, object], expected: str) -> None:
    """ok only when synced: an expired subscription or a failed round is an error."""
    record = MailboxRecord(KEY, "u1@example.com", enabled=enabled).with_status(**status)
    assert record.health(NOW) == expected
