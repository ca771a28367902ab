"""Timer triggers: NCRONTAB (6 fields, seconds first) or TimeSpan schedules, fired like the host.

Rule: a schedule is six fields `{second} {minute} {hour} {day} {month} {day-of-week}` (cronsim
evaluates it with seconds first) or a TimeSpan `hh:mm:ss` interval; anything else is refused at
start-up with an example. As in NCrontab, when both day and day-of-week are restricted both
must match. Times are UTC unless WEBSITE_TIME_ZONE names an IANA zone. Invocations of one timer
never overlap: the next occurrence is computed after the previous run ends, and occurrences
missed meanwhile are skipped. `run_on_startup` fires once when the host starts; `past_due` is
true when an invocation starts more than a second after its scheduled time.
Doc: https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.functions.timer import TimerRequest
from cronsim import CronSim, CronSimError

from devhost.discovery import FunctionSpec, resolve_setting_refs
from devhost.hostconfig import parse_timespan
from devhost.invoke import Invoker
from shared.errors import ConfigError

log = logging.getLogger("calsync.devhost")
PAST_DUE_AFTER = timedelta(seconds=1)


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime: ...


class CronSchedule:
    """A 6-field NCRONTAB expression; `next_after` is strictly later than its argument."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        example = "'0 */5 * * * *' (every 5 minutes) or '*/10 * * * * *' (every 10 seconds)"
        if len(fields) != 6:
            raise ConfigError(
                [
                    f"timer schedule {expression!r} has {len(fields)} fields; Functions needs 6, "
                    f"seconds first: e.g. {example}"
                ]
            )
        try:
            CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as exc:
            raise ConfigError(
                [f"timer schedule {expression!r} is not valid NCRONTAB: {exc}"]
            ) from None
        self.expression = expression
        # NCrontab requires day AND day-of-week when both are restricted (cron ORs them).
        self._both_days = fields[3] not in ("*", "?") and fields[5] not in ("*", "?")
        self._days = " ".join([*fields[:5], "*"])
        self._weekdays = " ".join([*fields[:3], "*", fields[4], fields[5]])

    def next_after(self, moment: datetime) -> datetime:
        if not self._both_days:
            return next(CronSim(self.expression, moment))
        candidate = moment
        for _ in range(10_000):
            candidate = next(CronSim(self._days, candidate))
            if next(CronSim(self._weekdays, candidate - timedelta(seconds=1))) == candidate:
                return candidate
        raise ConfigError([f"timer schedule {self.expression!r} never fires"])


class IntervalSchedule:
    """A TimeSpan schedule: every `interval` from when the host started."""

    def __init__(self, text: str) -> None:
        self.interval = timedelta(seconds=parse_timespan(text, "timer schedule"))
        if self.interval <= timedelta(0):
            raise ConfigError([f"timer schedule {text!r} must be a positive TimeSpan"])

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(text: str) -> Schedule:
    """A TimeSpan (`hh:mm:ss`) or a 6-field NCRONTAB expression."""
    return IntervalSchedule(text) if ":" in text else CronSchedule(text)


def time_zone(settings: Mapping[str, str]) -> tzinfo:
    """WEBSITE_TIME_ZONE as an IANA zone (Linux hosts accept those), else UTC."""
    name = settings.get("WEBSITE_TIME_ZONE", "").strip()
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            [f"WEBSITE_TIME_ZONE {name!r} is not an IANA time zone (e.g. Europe/Amsterdam)"]
        ) from None


def timer_disabled(name: str, settings: Mapping[str, str]) -> bool:
    """Whether app setting `AzureWebJobs.<name>.Disabled` is true: the host then never fires
    the timer on its schedule, while POST /admin/functions/<name> with the master key still
    runs it, as in Azure (learn.microsoft.com/azure/azure-functions/disable-function). Only
    timers honour it here."""
    return settings.get(f"AzureWebJobs.{name}.Disabled", "").strip().lower() in ("true", "1")


async def run_timer(
    spec: FunctionSpec,
    settings: Mapping[str, str],
    invoker: Invoker,
    stop: asyncio.Event,
) -> None:
    """Fire `spec` on its schedule until `stop` is set."""
    schedule = parse_schedule(resolve_setting_refs(spec.schedule or "", settings, spec.name))
    zone = time_zone(settings)
    last: datetime | None = None
    if spec.run_on_startup:
        now = datetime.now(zone)
        await _fire(spec, invoker, now, last, schedule.next_after(now), past_due=False)
        last = now
    while not stop.is_set():
        due = schedule.next_after(datetime.now(zone))
        # Wall clock and the loop's monotonic clock may disagree slightly: never fire early.
        while (remaining := (due - datetime.now(zone)).total_seconds()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), remaining)
            if stop.is_set():
                return
        late = datetime.now(zone) - due
        await _fire(spec, invoker, due, last, schedule.next_after(due), late > PAST_DUE_AFTER)
        last = due


async def _fire(
    spec: FunctionSpec,
    invoker: Invoker,
    due: datetime,
    last: datetime | None,
    following: datetime,
    past_due: bool,
) -> None:
    status = {
        "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
        "Next": following.isoformat(),
        "LastUpdated": datetime.now(UTC).isoformat(),
    }
    timer = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
    with contextlib.suppress(Exception):  # the invoker logged it; a timer keeps its schedule
        await invoker.invoke(spec, timer, f"Timer fired at {datetime.now(UTC).isoformat()}")
