"""The plan of a sync request: fold, defer or run (which passes), and a simulation losing none."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from statistics import median

import pytest

from shared.core.intake import ArrivalGate
from shared.core.model import MailboxKey, MailboxOptions, SyncRequest, Trigger, Window
from shared.core.rounds import (
    DEBOUNCE_SECONDS,
    Decision,
    Defer,
    Fold,
    GiveUp,
    Pass,
    Requeue,
    Run,
    lease_due,
    plan_recovery,
    plan_round,
    renewed_lease,
    round_status,
    stamp_request,
    takeover_after,
)
from shared.core.state import CursorRecord
from shared.core.window import plan_window
from shared.errors import (
    CalsyncError,
    DeltaExpired,
    EntraUnreachable,
    GraphProtocolError,
    GraphServerError,
    GraphUnreachable,
    Throttled,
    TokenError,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY = MailboxKey("t", "u")
LEASE_30 = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def request(
    seconds: float, *, full: bool = False, trigger: Trigger = Trigger.NOTIFICATION
) -> SyncRequest:
    return SyncRequest("t", "u", trigger, full, stamp_request(at(seconds)))


def cursor(
    completed: float | None = None,
    full_completed: float | None = None,
    lease: float | None = None,
    *,
    owner: str = "other",
    delta_link: str = "https://graph/delta?token=1",
    window: Window | None = None,
) -> CursorRecord:
    return CursorRecord(
        KEY,
        delta_link=delta_link,
        window=window if window is not None else plan_window(T0, MailboxOptions()),
        lease_owner=owner if lease is not None else "",
        lease_until=None if lease is None else at(lease),
        round_started=None if completed is None else at(completed),
        round_completed=None if completed is None else at(completed),
        full_completed=None if full_completed is None else at(full_completed),
    )


def plan(req: SyncRequest, cur: CursorRecord, now: float) -> Decision:
    return plan_round(req, cur, MailboxOptions(), now=at(now))


def ran(decision: Decision) -> bool:
    return isinstance(decision, Run)


@pytest.mark.parametrize(
    ("req", "completed", "full_completed", "lease", "now", "expected"),
    [
        (request(10), None, None, None, 11, "run"),
        (request(10), 10.6, None, None, 11, Fold()),
        (request(10), 10.5, None, None, 11, "run"),  # within the skew margin: not proof
        (request(10), 10.2, None, None, 11, "run"),
        (request(10), 9.0, None, None, 11, "run"),
        (request(10), 9.0, None, 13, 11, Defer(2.25)),
        (request(10), 9.0, None, 60, 11, Defer(5.25)),
        (request(10), 9.0, None, 11, 11, "run"),  # a lease ending now is over
        (request(10), 9.0, None, 10, 11, "run"),  # an expired lease is free
        (request(10), 12.0, None, 60, 13, Fold()),  # proof beats a new running round
        (request(10, full=True), 12.0, None, None, 13, "run"),
        (request(10, full=True), 12.0, 9.0, None, 13, "run"),
        (request(10, full=True), 12.0, 12.0, None, 13, Fold()),
        (request(10, full=True), 12.0, 12.0, 60, 13, Fold()),
        (request(10, full=True), 12.0, 9.0, 60, 13, Defer(5.25)),
    ],
)
def test_decisions(
    req: SyncRequest,
    completed: float | None,
    full_completed: float | None,
    lease: float | None,
    now: float,
    expected: Decision | str,
) -> None:
    """Fold only on a completed round begun over 0.5 s after the request; defer on a live lease."""
    decision = plan(req, cursor(completed, full_completed, lease), now)
    if expected == "run":
        assert isinstance(decision, Run)
        assert decision.lease_until == at(now) + LEASE_30
    else:
        assert decision == expected


def test_own_live_lease_defers_too() -> None:
    """A live lease defers whoever holds it: two workers of one host never overlap either."""
    assert plan(request(10), cursor(9.0, lease=12, owner="me"), 11) == Defer(1.25)


def test_a_started_round_never_folds() -> None:
    """A round that began after the request but has not completed proves nothing."""
    cur = replace(cursor(5), round_started=at(20))
    assert ran(plan(request(10), cur, 21))


@pytest.mark.parametrize("stamp", ["", "yesterday", "2026-13-01T00:00:00Z"])
def test_unreadable_request_time_never_folds(stamp: str) -> None:
    """Without a readable requested_at a request runs, whatever the cursor says."""
    req = SyncRequest("t", "u", Trigger.POLL, False, stamp)
    assert ran(plan(req, cursor(99), 100))


TODAY = plan_window(T0, MailboxOptions())
YESTERDAY = plan_window(T0 - timedelta(days=1), MailboxOptions())


@pytest.mark.parametrize(
    ("req", "cur", "passes"),
    [
        (request(0), cursor(), (Pass(TODAY, full=False),)),
        (request(0, full=True), cursor(), (Pass(TODAY, full=True),)),
        (request(0), cursor(delta_link=""), (Pass(TODAY, full=True),)),  # first sync
        (request(0), cursor(window=YESTERDAY), (Pass(TODAY, full=True),)),  # the day rolled
        (
            request(0, trigger=Trigger.SAFETY_NET),
            cursor(),
            (Pass(TODAY, full=False), Pass(TODAY, full=True, count_drift=True)),
        ),
        (
            request(0, trigger=Trigger.SAFETY_NET),
            cursor(window=YESTERDAY),
            (
                Pass(YESTERDAY, full=False),
                Pass(YESTERDAY, full=True, count_drift=True),
                Pass(TODAY, full=True),
            ),
        ),
        (request(0, trigger=Trigger.SAFETY_NET), cursor(delta_link=""), (Pass(TODAY, full=True),)),
    ],
)
def test_passes(req: SyncRequest, cur: CursorRecord, passes: tuple[Pass, ...]) -> None:
    """Incremental when the cursor is good; full on first sync, request or a rolled window; the
    safety net checks drift on the old window before rolling it."""
    decision = plan(req, cur, 1)
    assert isinstance(decision, Run)
    assert decision.passes == passes
    assert decision.window == TODAY
    assert decision.full == passes[-1].full
    assert decision.on_expired == Pass(TODAY, full=True)  # a 410 lists today's window


def test_options_change_the_window() -> None:
    """A cursor whose window was planned with other weeks back/ahead is stale: full pass."""
    options = MailboxOptions(weeks_back=1, weeks_ahead=2)
    decision = plan_round(request(0), cursor(), options, now=at(1))
    assert isinstance(decision, Run)
    assert decision.passes == (Pass(plan_window(at(1), options), full=True),)


# --- Simulation: several workers, a queue with visibility delays, skewed clocks, crashes. ---

Planner = Callable[..., Decision]
OPTIONS = MailboxOptions()
LEASE = timedelta(seconds=10)
VISIBILITY = 30.0  # a message taken and not deleted reappears after this (queue semantics)
STEP = 0.05


@dataclass
class Message:
    request: SyncRequest
    change_time: float  # real time of the change (or lifecycle event) it reports
    visible_at: float


@dataclass
class Job:
    message: Message
    real_start: float
    stamp: datetime
    full: bool
    read_version: int
    finish: float
    crash: bool


@dataclass
class Report:
    violations: list[str]
    requests: int = 0
    rounds: int = 0
    round_starts: list[float] = field(default_factory=list)  # real starts of completed rounds
    changes: list[float] = field(default_factory=list)
    folds: int = 0
    retries: int = 0
    crashes: int = 0
    quiet_at: float = 0.0
    mirrored: list[tuple[float, int]] = field(default_factory=list)  # (finish, version read)

    def latencies(self) -> list[float]:
        """Each change's time from happening to the end of the first round that read it."""
        return [
            min(end for end, read in self.mirrored if read > n) - c
            for n, c in enumerate(self.changes)
        ]


def graph_deliveries(rng: random.Random, change: float) -> list[float]:
    """When Graph delivers the notifications of one change: 1-3 copies, each 0.05-2.5 s after
    it (Graph sends a change's notifications apart, and duplicates them)."""
    return [change + rng.uniform(0.05, 2.5) for _ in range(rng.randint(1, 3))]


def mixed_scenario(rng: random.Random) -> tuple[list[float], list[float]]:
    """40 changes, half in a 3 s burst, half spread over 25 s; 3 full resyncs asked."""
    changes = sorted(
        rng.uniform(0, 3) if rng.random() < 0.5 else rng.uniform(0, 25) for _ in range(40)
    )
    return changes, sorted(rng.uniform(0, 25) for _ in range(3))


def burst_scenario(rng: random.Random) -> tuple[list[float], list[float]]:
    """30 bursts of 1-3 changes within 0.5 s (a person saving an edit), 15-25 s apart."""
    changes, start = [], 0.0
    for _ in range(30):
        changes += [start + rng.uniform(0, 0.5) for _ in range(rng.randint(1, 3))]
        start += rng.uniform(15, 25)
    return sorted(changes), []


def simulate(
    seed: int,
    planner: Planner = plan_round,
    *,
    scenario: Callable[[random.Random], tuple[list[float], list[float]]] = mixed_scenario,
    debounce: float = DEBOUNCE_SECONDS,
    crash_rate: float = 0.1,
    leading: bool = False,
) -> Report:
    """Run one randomized scenario; report what happened and the violations found. `leading`:
    the intake's ArrivalGate sets each notification's delay (else every one waits `debounce`)."""
    rng = random.Random(seed)
    gate = ArrivalGate(quiet=debounce, debounce=debounce)
    changes, fulls = scenario(rng)
    notes = [(d, c, False) for c in changes for d in graph_deliveries(rng, c)]
    notes += [(f + rng.uniform(0.05, 1.0), f, True) for f in fulls]
    notes.sort()
    skews = [rng.uniform(-0.2, 0.2) for _ in range(4)]
    jobs: list[Job | None] = [None] * 4
    queue: list[Message] = []
    cursor: dict[str, object] = {"completed": None, "full": None, "owner": "", "until": None}
    rounds: list[tuple[float, bool]] = []  # (real start, full) of completed rounds
    mirror_version, t = 0, 0.0
    report = Report([], requests=len(notes), changes=changes)
    violations = report.violations

    def version(real: float) -> int:
        return sum(1 for c in changes if c <= real)

    while notes or queue or any(jobs):
        if t > 1000:
            violations.append(f"seed {seed}: not quiet after 1000 s ({len(queue)} queued)")
            return report
        while notes and notes[0][0] <= t:
            noted, changed, full = notes.pop(0)
            stamp = stamp_request(T0 + timedelta(seconds=noted + rng.uniform(-0.2, 0.2)))
            trigger = Trigger.LIFECYCLE if full else Trigger.NOTIFICATION
            req = SyncRequest("t", "u", trigger, full, stamp)
            delay = gate.delay("u", now=noted) if leading and not full else debounce
            queue.append(Message(req, changed, noted + delay))
        for w, job in enumerate(jobs):
            if job is not None and job.finish <= t:
                jobs[w] = None
                if job.crash:
                    report.crashes += 1
                    continue  # lease left to expire; the message reappears after VISIBILITY
                cursor.update(owner="", until=None, completed=job.stamp)
                if job.full:
                    cursor["full"] = job.stamp
                mirror_version = job.read_version
                rounds.append((job.real_start, job.full))
                report.mirrored.append((t, job.read_version))
                report.rounds += 1
                report.round_starts.append(job.real_start)
                queue.remove(job.message)
        for w in range(4):
            visible = [m for m in queue if m.visible_at <= t]
            if jobs[w] is not None or not visible:
                continue
            message = min(visible, key=lambda m: m.visible_at)
            message.visible_at = t + VISIBILITY
            now = T0 + timedelta(seconds=t + skews[w])
            decision = planner(
                message.request,
                CursorRecord(
                    KEY,
                    round_completed=cursor["completed"],  # type: ignore[arg-type]
                    full_completed=cursor["full"],  # type: ignore[arg-type]
                    lease_owner=str(cursor["owner"]),
                    lease_until=cursor["until"],  # type: ignore[arg-type]
                ),
                OPTIONS,
                now=now,
                lease=LEASE,
            )
            if isinstance(decision, Fold):
                full = message.request.full
                if not any(s > message.change_time and (f or not full) for s, f in rounds):
                    violations.append(
                        f"seed {seed}: change at {message.change_time:.2f} folded unseen"
                    )
                queue.remove(message)
                report.folds += 1
            elif isinstance(decision, Defer):
                message.visible_at = t + decision.after
                report.retries += 1
            else:
                cursor.update(owner=f"w{w}", until=decision.lease_until)
                duration = rng.uniform(0.2, 3.0)
                read = version(t + rng.uniform(0, duration))
                crash = rng.random() < crash_rate
                jobs[w] = Job(message, t, now, message.request.full, read, t + duration, crash)
        t += STEP
    if mirror_version != len(changes):
        violations.append(f"seed {seed}: mirror at version {mirror_version} of {len(changes)}")
    for f in fulls:
        if not any(s > f and full for s, full in rounds):
            violations.append(f"seed {seed}: full resync asked at {f:.2f} never ran")
    report.quiet_at = t
    return report


def test_simulation_loses_no_request_and_folds_bursts() -> None:
    """With random bursts, skews and crashes, the mirror ends at Graph's state; folds are sound."""
    reports = [simulate(seed) for seed in range(12)]
    assert [v for r in reports for v in r.violations] == []
    assert sum(r.crashes for r in reports) > 0  # crashed rounds were part of the scenarios
    assert sum(r.retries for r in reports) > 0  # requests met running rounds
    # Bursts fold: far fewer rounds than requests.
    assert sum(r.rounds for r in reports) < sum(r.requests for r in reports) / 2


def test_simulation_bursts_cost_one_round() -> None:
    """Graph's spread deliveries (1-3 copies of each change over 2.5 s, 1-3 changes a burst):
    with the debounce, at least 95% of bursts cost one delta round, and none loses a change."""
    reports = [simulate(seed, scenario=burst_scenario, crash_rate=0.0) for seed in range(12)]
    assert [v for r in reports for v in r.violations] == []
    counts = [n for r in reports for n in rounds_per_burst(r)]
    assert len(counts) == 12 * 30
    assert min(counts) >= 1  # every burst was synced
    assert sum(1 for n in counts if n == 1) >= 0.95 * len(counts)
    # The simulation tells the debounces apart: a 1 s debounce costs most bursts two rounds.
    assert one_round_share(1.0) < 0.5


def test_simulation_leading_rounds_are_sooner_and_cost_at_most_two() -> None:
    """With the ArrivalGate (a quiet mailbox's first notification at once), no change is lost,
    a burst costs at most 3 rounds and mostly 2, and the median change reaches the mirror at
    least 2 s sooner than with the debounce alone."""
    leading = [
        simulate(s, scenario=burst_scenario, crash_rate=0.0, leading=True) for s in range(12)
    ]
    debounced = [simulate(s, scenario=burst_scenario, crash_rate=0.0) for s in range(12)]
    assert [v for r in leading for v in r.violations] == []
    counts = [n for r in leading for n in rounds_per_burst(r)]
    assert min(counts) >= 1
    assert max(counts) <= 3
    assert sum(1 for n in counts if n <= 2) >= 0.9 * len(counts)
    sooner = median([x for r in debounced for x in r.latencies()]) - median(
        [x for r in leading for x in r.latencies()]
    )
    assert sooner >= 2.0, f"leading rounds only {sooner:.2f} s sooner"


def test_simulation_with_leading_rounds_loses_nothing_in_crashes() -> None:
    """Random bursts, skews and crashes with the ArrivalGate: the mirror ends at Graph's state."""
    reports = [simulate(seed, leading=True) for seed in range(12)]
    assert [v for r in reports for v in r.violations] == []
    assert sum(r.crashes for r in reports) > 0


def test_simulation_catches_an_unsafe_fold_rule() -> None:
    """The simulation is sharp: folding on a round that began before the request loses changes."""

    def eager(req: SyncRequest, *args: object, **kw: object) -> Decision:
        shifted = replace(
            req,
            full=False,
            requested_at=stamp_request(
                datetime.fromisoformat(req.requested_at) - timedelta(seconds=2)
            ),
        )
        return plan_round(shifted, *args, **kw)  # type: ignore[arg-type]

    assert any(simulate(seed, eager).violations for seed in range(12))


# --- Graph's Retry-After holds the mailbox; a failed round is re-queued, never dropped. ---


@pytest.mark.parametrize(
    ("held", "lease", "now", "expected"),
    [
        (15.0, None, 11, Defer(4.0)),  # the whole remaining wait, not the lease's 5 s cap
        (11.4, None, 11, Defer(0.4)),
        (611.0, None, 11, Defer(600.0)),
        (11.0, None, 11, "run"),  # the wait is over
        (5.0, None, 11, "run"),
        (15.0, 60, 11, Defer(4.0)),  # throttled and leased: Graph's wait first
        (12.0, 60, 13, Defer(5.25)),  # wait over, lease still live
    ],
)
def test_throttled_mailbox_defers_every_request(
    held: float, lease: float | None, now: float, expected: Decision | str
) -> None:
    """While the cursor's throttled_until is ahead, every request defers for the rest of it."""
    cur = replace(cursor(9.0, lease=lease), throttled_until=at(held))
    decision = plan(request(10), cur, now)
    assert ran(decision) if expected == "run" else decision == expected


def test_a_throttled_mailbox_still_folds() -> None:
    """A request a completed round already covered folds without waiting for Graph."""
    cur = replace(cursor(12.0), throttled_until=at(60))
    assert plan(request(10), cur, 13) == Fold()


def _throttled(after: float) -> Throttled:
    return Throttled("slow down", status=429, graph_code="TooManyRequests", retry_after=after)


@pytest.mark.parametrize(
    ("error", "attempt", "after", "full", "held"),
    [
        (_throttled(4.0), 0, (4.0, 4.0), False, 4.0),
        (_throttled(0.0), 2, (0.0, 4.0), False, None),  # no Retry-After: jittered backoff
        (DeltaExpired("gone", status=410, graph_code="SyncStateNotFound"), 0, (1, 2), True, None),
        (GraphServerError("boom", status=500, graph_code="x"), 0, (1, 2), False, None),
        (GraphServerError("boom", status=500, graph_code="x"), 3, (8, 16), False, None),
        (
            GraphProtocolError("odd", status=None, graph_code="NoDeltaLink"),
            11,
            (1800, 3600),
            False,
            None,
        ),
        (GraphServerError("boom", status=500, graph_code="x"), 40, (1800, 3600), False, None),
        (GraphUnreachable("no route"), 0, (1, 2), False, None),
        (EntraUnreachable("no route"), 1, (2, 4), False, None),
    ],
)
def test_a_failed_round_is_requeued_with_backoff(
    error: CalsyncError,
    attempt: int,
    after: tuple[float, float],
    full: bool,
    held: float | None,
) -> None:
    """Every failure but a rejected credential re-queues the request with attempt + 1, after
    Graph's Retry-After (holding the mailbox) or 2 s doubling, capped at an hour; 410 → full."""
    req = replace(request(10), attempt=attempt)
    for seed in range(20):
        recovery = plan_recovery(error, req, now=at(20), rng=random.Random(seed))
        assert isinstance(recovery, Requeue)
        assert after[0] <= recovery.after <= after[1]
        assert recovery.request == replace(req, attempt=attempt + 1, full=full)
        assert recovery.throttled_until == (None if held is None else at(20 + held))
        assert recovery.reason.startswith(error.detail_code)


def test_a_rejected_credential_gives_up_to_the_lifecycle() -> None:
    """Entra refusing the credential is the lifecycle's to probe: the request is dropped."""
    error = TokenError("rejected", aadsts=7000215)
    assert isinstance(plan_recovery(error, request(1), now=at(2), rng=random.Random(1)), GiveUp)


def rounds_per_burst(report: Report, gap: float = 10.0) -> list[int]:
    """Completed rounds begun from each burst's first change to the next burst's (bursts are
    the changes closer than `gap` together)."""
    starts = [c for n, c in enumerate(report.changes) if n == 0 or c - report.changes[n - 1] > gap]
    edges = [*starts, math.inf]
    return [
        sum(1 for r in report.round_starts if edges[n] <= r < edges[n + 1])
        for n in range(len(starts))
    ]


def one_round_share(debounce: float, seeds: range = range(12)) -> float:
    """The share of bursts (1-4 changes, each delivered 1-3 times) that cost exactly one round."""
    counts = [
        n
        for seed in seeds
        for n in rounds_per_burst(
            simulate(seed, scenario=burst_scenario, debounce=debounce, crash_rate=0.0)
        )
    ]
    return sum(1 for n in counts if n == 1) / len(counts)


def burst_figures(debounce: float, *, leading: bool, seeds: range) -> str:
    """Rounds per burst and change-to-mirror latency, for the module's figures."""
    reports = [
        simulate(s, scenario=burst_scenario, debounce=debounce, crash_rate=0.0, leading=leading)
        for s in seeds
    ]
    counts = [n for r in reports for n in rounds_per_burst(r)]
    late = sorted(x for r in reports for x in r.latencies())
    return (
        f"{'leading' if leading else 'debounce'} {debounce:.1f} s: "
        f"{sum(1 for n in counts if n == 1) / len(counts):.1%} of bursts in one round, "
        f"{sum(counts) / len(counts):.2f} rounds a burst, latency p50 {median(late):.2f} s, "
        f"p99 {late[int(0.99 * (len(late) - 1))]:.2f} s"
    )


if __name__ == "__main__":  # the figures: python -m tests.core.test_rounds
    for seconds in (1.0, 2.0, 2.5, 3.0, 3.5, 4.0):
        print(burst_figures(seconds, leading=False, seeds=range(40)))
    print(burst_figures(DEBOUNCE_SECONDS, leading=True, seeds=range(40)))


# --- A round's lease: short, renewed page by page, visible on the status. ---


def test_the_lease_is_short_and_renewed_from_now() -> None:
    """30 s from each renewal; a dead round's takeover copy looks just after it would end."""
    assert renewed_lease(at(100)) == at(130)
    assert takeover_after() == 32.0
    assert takeover_after(timedelta(seconds=10)) == 12.0


@pytest.mark.parametrize(
    ("until", "due"),
    [(None, True), (130, False), (116, False), (114.9, True), (100, True), (90, True)],
)
def test_the_lease_is_renewed_once_less_than_half_is_left(until: float | None, due: bool) -> None:
    """A page done at 100 renews a 30 s lease ending at `until` only below 15 s left."""
    end = None if until is None else at(0) + timedelta(seconds=until)
    assert lease_due(at(100), end) is due


@pytest.mark.parametrize(
    ("lease", "now", "expected"),
    [
        (None, 50, (None, "", None, False)),  # no round running
        (60, 50, (at(40), "other", at(60), False)),  # running, renewed
        (60, 60, (at(40), "other", at(60), True)),  # its holder stopped renewing: stale
        (45, 90, (at(40), "other", at(45), True)),
    ],
)
def test_round_status_shows_a_round_in_progress_and_a_stale_lease(
    lease: float | None, now: float, expected: tuple[object, ...]
) -> None:
    """The status says since when a round runs, whose it is, until when, and if it is stale."""
    cur = replace(cursor(10.0, lease=lease), round_started=at(40))
    shown = round_status(cur, at(now))
    assert tuple(shown.values()) == expected
    assert list(shown) == ["round_in_progress_since", "lease_owner", "lease_until", "lease_stale"]
