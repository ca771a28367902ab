"""Timer schedules (pure, table-driven) and the dev host firing the sample app's timers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.data.tables import TableClient

from devhost import DevHost, HostOptions
from devhost.timers import (
    CronSchedule,
    IntervalSchedule,
    parse_schedule,
    time_zone,
    timer_disabled,
)
from shared.errors import ConfigError

from . import sample_app
from .conftest import MASTER_KEY, QUEUE_OPTIONS
from .helpers import table_rows, wait_until

T0 = datetime(2026, 3, 2, 10, 15, 30, 500000, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("* * * * * *", T0, datetime(2026, 3, 2, 10, 15, 31, tzinfo=UTC)),
        ("*/10 * * * * *", T0, datetime(2026, 3, 2, 10, 15, 40, tzinfo=UTC)),
        ("0 */5 * * * *", T0, datetime(2026, 3, 2, 10, 20, 0, tzinfo=UTC)),
        ("0 0 * * * *", T0, datetime(2026, 3, 2, 11, 0, 0, tzinfo=UTC)),
        ("30 15 10 * * *", T0, datetime(2026, 3, 3, 10, 15, 30, tzinfo=UTC)),
        ("0 30 9 * * 1-5", T0, datetime(2026, 3, 3, 9, 30, 0, tzinfo=UTC)),
        ("0 0 0 * * SUN", T0, datetime(2026, 3, 8, 0, 0, 0, tzinfo=UTC)),
        # Both day fields restricted: NCrontab wants both (the 13th that is a Friday).
        ("0 0 0 13 * 5", T0, datetime(2026, 3, 13, 0, 0, 0, tzinfo=UTC)),
        ("0 0 0 1 * 5", T0, datetime(2026, 5, 1, 0, 0, 0, tzinfo=UTC)),
        ("00:00:10", T0, T0 + timedelta(seconds=10)),
        ("01:30:00", T0, T0 + timedelta(hours=1, minutes=30)),
    ],
)
def test_next_occurrence(schedule: str, after: datetime, expected: datetime) -> None:
    """6-field NCRONTAB (seconds first) and TimeSpan schedules give the host's next occurrence."""
    assert parse_schedule(schedule).next_after(after) == expected


def test_schedule_kinds() -> None:
    """A colon means a TimeSpan interval; otherwise NCRONTAB."""
    assert isinstance(parse_schedule("00:05:00"), IntervalSchedule)
    assert isinstance(parse_schedule("0 */5 * * * *"), CronSchedule)


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("*/5 * * * *", "has 5 fields; Functions needs 6, seconds first"),
        ("61 * * * * *", "not valid NCRONTAB"),
        ("00:00:00", "positive TimeSpan"),
        ("25:00", "not a TimeSpan"),
    ],
)
def test_bad_schedules_are_refused_with_a_hint(schedule: str, words: str) -> None:
    """A 5-field cron, an out-of-range field or a bad TimeSpan is a ConfigError saying why."""
    with pytest.raises(ConfigError, match=words):
        parse_schedule(schedule)


def test_time_zone_setting() -> None:
    """WEBSITE_TIME_ZONE picks an IANA zone; unset is UTC; an unknown name is refused."""
    assert time_zone({}) is UTC
    assert str(time_zone({"WEBSITE_TIME_ZONE": "Europe/Amsterdam"})) == "Europe/Amsterdam"
    with pytest.raises(ConfigError, match="not an IANA time zone"):
        time_zone({"WEBSITE_TIME_ZONE": "W. Europe Standard Time"})


@pytest.mark.integration
def test_every_second_timer_fires_on_whole_seconds(devhost: DevHost, azurite: str) -> None:
    """The 6-field '* * * * * *' timer fires once per second, on the second, not past due."""
    ticks = TableClient.from_connection_string(azurite, sample_app.TICKS)
    started = datetime.now(UTC).timestamp()

    def recent() -> list[dict]:
        rows = table_rows(ticks, "PartitionKey eq 'tick'")
        fresh = sorted((r for r in rows if r["at"] >= started), key=lambda r: r["at"])
        return fresh if len(fresh) >= 4 else []

    rows = wait_until(recent, 10, "four timer firings")
    times = [r["at"] for r in rows]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.5 < g < 1.5 for g in gaps), gaps
    assert all(t % 1 < 0.5 for t in times), times  # fired just after a whole second
    assert not any(r["past_due"] for r in rows)


@pytest.mark.integration
def test_run_on_startup_fires_once_at_start(devhost: DevHost, azurite: str) -> None:
    """A yearly timer with run_on_startup=True ran exactly once when the host started."""
    ticks = TableClient.from_connection_string(azurite, sample_app.TICKS)
    rows = wait_until(
        lambda: table_rows(ticks, "PartitionKey eq 'startup'"), 10, "the startup firing"
    )
    assert len(rows) == 1


@pytest.mark.parametrize(
    ("value", "disabled"),
    [("true", True), ("True", True), ("1", True), ("false", False), ("", False), ("yes", False)],
)
def test_disabled_setting(value: str, disabled: bool) -> None:
    """AzureWebJobs.<name>.Disabled disables a timer when true (or 1), for that name only."""
    settings = {"AzureWebJobs.tick.Disabled": value}
    assert timer_disabled("tick", settings) is disabled
    assert timer_disabled("other", settings) is False


@pytest.mark.integration
def test_a_disabled_timer_is_not_scheduled_but_the_admin_api_runs_it(azurite: str) -> None:
    """A host with AzureWebJobs.on_startup.Disabled=true fires neither its startup run nor
    its schedule, keeps the other timers, and still runs it through POST /admin/functions."""
    settings = {
        "AzureWebJobsStorage": azurite,
        "DEVHOST_MASTER_KEY": MASTER_KEY,
        "AzureWebJobs.on_startup.Disabled": "true",
    }
    ticks = TableClient.from_connection_string(azurite, sample_app.TICKS)
    host = DevHost(sample_app.app, settings, options=HostOptions(queues=QUEUE_OPTIONS))
    assert "on_startup" not in host.scheduled
    assert {"tick", "yearly"} <= set(host.scheduled)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AzureWebJobsStorage", azurite)
        with host, httpx.Client(base_url=host.url, timeout=30) as client:
            before = len(table_rows(ticks, "PartitionKey eq 'startup'"))
            r = client.post(
                "/admin/functions/on_startup",
                json={"input": ""},
                headers={"x-functions-key": MASTER_KEY},
            )
            assert r.status_code == 202
            assert len(table_rows(ticks, "PartitionKey eq 'startup'")) == before + 1
