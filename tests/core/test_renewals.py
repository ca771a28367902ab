"""Subscription lifetimes, renewal selection, per-tenant write pacing and reconciliation."""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.model import MailboxKey, SubscriptionRecord
from shared.core.renewals import (
    MAX_LIFETIME,
    MIN_LIFETIME,
    SubscriptionActions,
    WritePacer,
    is_duplicate_lifecycle,
    plan_expired,
    plan_expiry,
    plan_reauthorize,
    plan_reconcile,
    plan_renewals,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def sub(
    sid: str, expires_in: timedelta, *, user: str = "u1", tenant: str = "t1", **kw: object
) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=sid,
        tenant_id=tenant,
        user_id=user,
        resource=f"users/{user}/events",
        expiration=NOW + expires_in,
        client_state_digest="0" * 64,
        **kw,  # type: ignore[arg-type]
    )


def test_expiry_within_graph_limits_and_spread() -> None:
    """Default expiries fall in [now + 7d - 15min - 6h, now + 7d - 15min], under the maximum."""
    rng = random.Random(1)
    expiries = [plan_expiry(NOW, rng) for _ in range(2000)]
    top = NOW + timedelta(days=7) - timedelta(minutes=15)
    assert all(top - timedelta(hours=6) <= e <= top for e in expiries)
    assert max(expiries) - min(expiries) > timedelta(hours=5)  # actually spread out


@pytest.mark.parametrize(
    ("lifetime", "spread", "expected"),
    [
        (timedelta(days=30), timedelta(0), NOW + MAX_LIFETIME),
        (timedelta(minutes=5), timedelta(0), NOW + MIN_LIFETIME),
        (timedelta(hours=1), timedelta(hours=2), None),
    ],
)
def test_expiry_clamped(lifetime: timedelta, spread: timedelta, expected: datetime | None) -> None:
    """Asked lifetimes are clamped to Graph's 45-minute floor and 10,080-minute ceiling."""
    rng = random.Random(2)
    for _ in range(200):
        got = plan_expiry(NOW, rng, lifetime=lifetime, spread=spread)
        assert NOW + MIN_LIFETIME <= got <= NOW + MAX_LIFETIME
        if expected is not None:
            assert got == expected


def test_renewals_selected_and_ordered() -> None:
    """Subscriptions expiring within 2 days renew, soonest first; expired and later ones don't."""
    subs = [
        sub("later", timedelta(days=3)),
        sub("soon", timedelta(hours=1)),
        sub("expired", -timedelta(minutes=1)),
        sub("edge", timedelta(days=2)),
        sub("mid", timedelta(days=1)),
        sub("reauth-now", timedelta(hours=2), last_reauthorized=NOW - timedelta(minutes=9)),
        sub("reauth-old", timedelta(hours=3), last_reauthorized=NOW - timedelta(minutes=10)),
    ]
    plan = plan_renewals(subs, NOW, random.Random(3))
    assert [s.subscription_id for s, _ in plan] == ["soon", "reauth-old", "mid", "edge"]
    assert all(NOW + timedelta(days=6) < new < NOW + MAX_LIFETIME for _, new in plan)


def _max_in_window(times: list[datetime], width: timedelta) -> int:
    """The most writes in any closed window [t, t + width] (the worst case starts at a write)."""
    ordered = sorted(times)
    return max(bisect.bisect_right(ordered, t + width) - i for i, t in enumerate(ordered))


@pytest.mark.parametrize("waits", [True, False])
def test_pacer_keeps_every_20s_window_under_500(waits: bool) -> None:
    """1,000 writes of one tenant, waiting or asked at once: at most 450 in any 20 s window."""
    pacer = WritePacer()
    rng = random.Random(4)
    now, times = NOW, []
    for _ in range(1000):
        at = now + timedelta(seconds=pacer.delay("t1", now))
        times.append(at)
        if waits:
            now = at + timedelta(milliseconds=rng.randint(0, 30))
    assert _max_in_window(times, timedelta(seconds=20)) <= 450
    # Not over-throttled: 1,000 writes need just over two windows.
    assert max(times) - NOW < timedelta(seconds=45)


def test_pacer_first_burst_is_free_and_tenants_independent() -> None:
    """The first 450 writes go at once; a busy tenant never delays another."""
    pacer = WritePacer()
    assert all(pacer.delay("busy", NOW) == 0.0 for _ in range(450))
    assert pacer.delay("busy", NOW) == pytest.approx(20.001)
    assert all(pacer.delay("quiet", NOW) == 0.0 for _ in range(450))
    assert pacer.delay("busy", NOW + timedelta(seconds=30)) == 0.0


def test_reconcile_plans_create_delete_recreate() -> None:
    """Missing → create; expired → recreate; undesired or duplicate → delete (keep the latest)."""
    desired = {MailboxKey("t1", u) for u in ("new", "ok", "dup", "stale")}
    actual = [
        sub("s-ok", timedelta(days=3), user="ok"),
        sub("s-dup-early", timedelta(days=1), user="dup"),
        sub("s-dup-late", timedelta(days=5), user="dup"),
        sub("s-dup-dead", -timedelta(days=1), user="dup"),
        sub("s-stale", -timedelta(minutes=5), user="stale"),
        sub("s-stale-older", -timedelta(days=2), user="stale"),
        sub("s-gone-user", timedelta(days=3), user="left"),
    ]
    actions = plan_reconcile(desired, actual, NOW)
    assert actions.create == (MailboxKey("t1", "new"),)
    assert [s.subscription_id for s in actions.recreate] == ["s-stale"]
    assert [s.subscription_id for s in actions.delete] == [
        "s-dup-dead",
        "s-dup-early",
        "s-gone-user",
        "s-stale-older",
    ]


def test_reconcile_of_a_settled_state_is_empty() -> None:
    """One live subscription per desired mailbox needs no action."""
    actual = [sub("a", timedelta(days=2), user="u1"), sub("b", timedelta(days=2), user="u2")]
    desired = {MailboxKey("t1", "u1"), MailboxKey("t1", "u2")}
    assert plan_reconcile(desired, actual, NOW) == SubscriptionActions((), (), ())


_MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("last_renewed", "expected"),
    [
        (None, True),  # never renewed (a new subscription: creation is no PATCH)
        (NOW - 9 * _MIN, False),  # renewed 9 minutes ago: that PATCH reauthorized it
        (NOW - 10 * _MIN + timedelta(seconds=1), False),
        (NOW - 10 * _MIN, True),  # exactly 10 minutes: allowed again
        (NOW - timedelta(days=3), True),
        (NOW + _MIN, False),  # renewed by a host whose clock runs ahead: still within
    ],
)
def test_reauthorize_not_within_ten_minutes_of_a_renewal(
    last_renewed: datetime | None, expected: bool
) -> None:
    """No POST /reauthorize within 10 minutes of a renewal PATCH of the same subscription."""
    record = sub("s", timedelta(days=3), last_renewed=last_renewed)
    assert plan_reauthorize(record, NOW) is expected


@pytest.mark.parametrize(
    ("last_event", "last_at", "event", "expected"),
    [
        ("", None, "reauthorizationRequired", False),  # nothing acted on yet
        (
            "reauthorizationRequired",
            NOW - 30 * timedelta(seconds=1),
            "reauthorizationRequired",
            True,
        ),
        (
            "reauthorizationRequired",
            NOW - 2 * _MIN + timedelta(seconds=1),
            "reauthorizationRequired",
            True,
        ),
        (
            "reauthorizationRequired",
            NOW - 2 * _MIN,
            "reauthorizationRequired",
            False,
        ),  # window over
        (
            "reauthorizationRequired",
            NOW - 30 * timedelta(seconds=1),
            "missed",
            False,
        ),  # other event
        ("missed", NOW - 30 * timedelta(seconds=1), "missed", True),
        ("missed", NOW + _MIN, "missed", True),  # stamped by a host whose clock runs ahead
        ("missed", None, "missed", False),  # no time on record: not a copy
        ("", NOW, "", False),  # no event name: never a copy
    ],
)
def test_lifecycle_copies_within_two_minutes(
    last_event: str, last_at: datetime | None, event: str, expected: bool
) -> None:
    """The same lifecycle event for the same subscription within 2 minutes is a copy."""
    record = sub("s", timedelta(days=3), last_lifecycle_event=last_event, last_lifecycle_at=last_at)
    assert is_duplicate_lifecycle(record, event, NOW) is expected


@pytest.mark.parametrize(
    ("subs", "expected"),
    [
        ([], []),
        ([sub("a", timedelta(days=1))], []),  # live
        ([sub("a", -timedelta(days=1))], ["a"]),  # expired a day ago (host down 8 days)
        ([sub("a", timedelta(0))], ["a"]),  # expiring this instant counts as gone
        ([sub("a", -timedelta(days=1)), sub("b", timedelta(days=2))], []),  # a live one exists
        ([sub("a", -timedelta(days=2)), sub("b", -timedelta(days=1))], ["b"]),  # newest only
        (
            [sub("a", -timedelta(hours=1), user="u2"), sub("b", -timedelta(hours=1), user="u1")],
            ["b", "a"],  # one per mailbox, by tenant and user
        ),
    ],
)
def test_expired_subscriptions_to_recreate(
    subs: list[SubscriptionRecord], expected: list[str]
) -> None:
    """Each mailbox whose newest subscription has expired gets that one recreated, once."""
    assert [s.subscription_id for s in plan_expired(subs, NOW)] == expected
