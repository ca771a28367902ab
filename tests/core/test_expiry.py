"""Credential expiry levels: ok, then warnings stepping at 30, 14, 7 and 1 days, expired."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.core.expiry import plan_expiry, plan_registration, should_warn
from shared.core.times import parse_iso

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("left", "level", "days", "threshold"),
    [
        (timedelta(days=90), "ok", 90, None),
        (timedelta(days=31), "ok", 31, None),
        (timedelta(days=30, hours=1), "warning", 30, 30),
        (timedelta(days=15), "warning", 15, 30),
        (timedelta(days=14), "warning", 14, 14),
        (timedelta(days=8), "warning", 8, 14),
        (timedelta(days=7), "warning", 7, 7),
        (timedelta(days=1, hours=5), "warning", 1, 1),
        (timedelta(hours=3), "warning", 0, 1),
        (timedelta(seconds=0), "expired", 0, 0),
        (-timedelta(days=2), "expired", -2, 0),
    ],
)
def test_levels_step_at_30_14_7_and_1_days(
    left: timedelta, level: str, days: int, threshold: int | None
) -> None:
    """Whole days left decide the level and the threshold reached."""
    expiry = plan_expiry("secret", "graph-client-secret", NOW + left, NOW)
    assert (expiry.level, expiry.days_left, expiry.threshold) == (level, days, threshold)
    assert "graph-client-secret" in expiry.detail


def test_unknown_and_managed_identity() -> None:
    """No expiry date: unknown; a managed identity has nothing that expires."""
    assert plan_expiry("secret", "s", None, NOW).level == "unknown"
    assert plan_expiry("managed_identity", "", None, NOW).level == "none"


@pytest.mark.parametrize(
    ("left", "last", "warn"),
    [
        (timedelta(days=10), None, True),
        (timedelta(days=10), date(2026, 12, 1), False),
        (timedelta(days=10), date(2026, 11, 30), True),
        (timedelta(days=60), None, False),
        (-timedelta(days=1), date(2026, 11, 30), True),
    ],
)
def test_one_warning_a_day(left: timedelta, last: date | None, warn: bool) -> None:
    """A near or past expiry warns once per day, never when ok."""
    expiry = plan_expiry("certificate", "c", NOW + left, NOW)
    assert should_warn(expiry, last, NOW.date()) is warn


REG_END = "2027-01-10T00:00:00Z"


@pytest.mark.parametrize(
    ("doc", "kind", "hint", "thumb", "status", "ends"),
    [
        (
            {"passwordCredentials": [{"hint": "abc", "endDateTime": REG_END}, {"hint": "xyz"}]},
            "secret",
            "abc",
            "",
            "read",
            REG_END,
        ),
        ({"passwordCredentials": [{"hint": "xyz"}]}, "secret", "abc", "", "unmatched", None),
        ({"passwordCredentials": [{"hint": "abc"}]}, "secret", "abc", "", "read", None),
        (
            {
                "keyCredentials": [
                    {"customKeyIdentifier": "q83vEjRWeJCrze8SNFZ4kKvN7xI", "endDateTime": REG_END}
                ]
            },
            "certificate",
            "",
            "ABCDEF1234567890ABCDEF1234567890ABCDEF12",
            "read",
            REG_END,
        ),
        (
            {"keyCredentials": [{"customKeyIdentifier": "AAAA", "endDateTime": REG_END}]},
            "certificate",
            "",
            "ABCDEF1234567890ABCDEF1234567890ABCDEF12",
            "unmatched",
            None,
        ),
        ([], "secret", "abc", "", "unreadable", None),
    ],
    ids=["secret", "no such secret", "never ends", "certificate", "other cert", "not an app"],
)
def test_the_registration_entry_in_use_is_found(
    doc: Any, kind: str, hint: str, thumb: str, status: str, ends: str | None
) -> None:
    """A secret is matched by Graph's hint, a certificate by its SHA-1 thumbprint (base64 in
    customKeyIdentifier); its end date is the reading; none matching is `unmatched`."""
    found = plan_registration(doc, kind, secret_hint=hint, thumbprint_hex=thumb)
    assert found.status == status
    assert found.expires_on == (parse_iso(ends) if ends else None)
