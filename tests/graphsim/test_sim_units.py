"""Pure parts of the simulator, without a server: knobs, windows, clock, retry-after, URLs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graphsim.knobs import Knobs
from graphsim.model.calendar.timezones import format_timestamp, parse_instant
from graphsim.runtime.clock import VirtualClock
from graphsim.runtime.throttle import SlidingWindow, retry_after_text
from graphsim.simulator import Urls


def test_knobs_defaults_are_the_documented_numbers() -> None:
    """Defaults are the documented numbers (throttling, subscriptions, batch, delivery)."""
    k = Knobs()
    assert (k.concurrent_per_mailbox, k.budget_requests, k.budget_window_s) == (4, 10_000, 600.0)
    assert (
        k.max_subscriptions_per_mailbox,
        k.subscription_min_minutes,
        k.subscription_max_minutes,
    ) == (
        1_000,
        45,
        10_080,
    )
    assert (k.batch_max_requests, k.batch_parallel_per_mailbox) == (20, 4)
    assert (k.slow_threshold_s, k.drop_threshold_s, k.slow_fraction, k.drop_fraction) == (
        3.0,
        10.0,
        0.10,
        0.15,
    )
    assert (
        k.subscription_writes_per_window,
        k.reauthorize_per_window,
        k.subscription_list_per_window,
    ) == (
        500,
        1_000,
        25,
    )
    assert k.retry_horizon_s == 4 * 3600


def test_knobs_update_is_all_or_nothing() -> None:
    """One bad value refuses the whole update and names the knob."""
    k = Knobs()
    problems = k.update({"budget_requests": 5, "reorder": "yes"})
    assert problems == ["knob 'reorder' takes true or false"]
    assert k.budget_requests == 10_000
    assert k.update({"budget_requests": 5, "latency_ms": 3}) == []
    assert (k.budget_requests, k.latency_ms) == (5, 3.0)


def test_sliding_window_admits_then_tells_the_wait() -> None:
    """A window admits `limit` calls, then says how long until the oldest leaves it."""
    window = SlidingWindow()
    assert [window.admit(100.0 + i, 3, 10.0) for i in range(3)] == [0.0, 0.0, 0.0]
    assert window.admit(105.0, 3, 10.0) == pytest.approx(5.0)
    assert window.admit(110.5, 3, 10.0) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"), [(2.0, "2"), (0.25, "0.3"), (1.04, "1.1"), (0.0, "0.1")]
)
def test_retry_after_is_seconds_possibly_fractional(seconds: float, text: str) -> None:
    """Retry-After is rounded up to a tenth of a second and never 0."""
    assert retry_after_text(seconds) == text


def test_clock_advance_wakes_sleepers() -> None:
    """A virtual sleep of an hour ends as soon as the clock is advanced past it."""
    clock = VirtualClock()

    async def scenario() -> float:
        started = time.monotonic()
        sleeper = asyncio.create_task(clock.sleep(3600))
        await asyncio.sleep(0.05)
        clock.advance(3601)
        await asyncio.wait_for(sleeper, timeout=5)
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 2


def test_clock_sleep_compresses_time() -> None:
    """With scale 1,000 a 100 s virtual wait takes about 0.1 s."""
    clock = VirtualClock()
    started = time.monotonic()
    asyncio.run(clock.sleep(100, scale=1000))
    assert 0.05 < time.monotonic() - started < 2


def test_iso_round_trip_with_seven_digits() -> None:
    """Graph's 7-digit fractions parse, and `format_timestamp` writes them."""
    moment = parse_instant("2026-11-21T09:30:00.1234567Z")
    assert moment == datetime(2026, 11, 21, 9, 30, 0, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-11-21T09:30:00.1234560Z"


def test_vault_resource_passes_the_sdk_domain_check() -> None:
    """The vault resource is a parent domain of the vault host, as vault.azure.net is."""
    from azure.keyvault.secrets._shared.challenge_auth_policy import _validate_challenge_resource

    urls = Urls("https://127.0.0.1:8443")
    assert urls.key_vault_resource == "https://0.0.1:8443"
    _validate_challenge_resource(
        urls.key_vault_resource + "/.default", urls.key_vault_url + "/secrets/x"
    )
    assert Path(__file__).exists()
