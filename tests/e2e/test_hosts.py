"""End to end with whole hosts: one down for 8 simulated days, and two hosts sharing one Azurite
(the mirror is right and no two delta rounds of one mailbox ever overlap)."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from devhost.local.stack import local_stack
from tests.e2e.harness import at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_ROUND = re.compile(r"round (begin|end) (\S+) by (\S+) at ([0-9.]+)")


def test_host_down_for_eight_days_recovers() -> None:
    """Subscription and delta token expire while the host is down; on restart the renewal run
    recreates the subscription, a full resync catches up, and notifications flow again."""
    with local_stack() as stack:
        mb = enrol(stack)
        old = mb.status()["status"]["subscriptionId"]
        stack.hosts[0].stop()
        stack.sim.control.knobs(delta_token_max_age_s=7 * 86400)
        stack.advance(8 * 86400)
        assert old not in {s["id"] for s in stack.sim.control.subscriptions()}
        missed = mb.create({"subject": "Booked while the host was down", **at(12, 9)})
        stack.restart_host(0)
        stack.run_function("renew_subscriptions")
        wait_for(
            lambda: (s := mb.status()["status"]["subscriptionId"]) not in ("", old) and s,
            what="a recreated subscription",
        )
        mb.converged()
        assert missed in mb.mirror()
        after = mb.create({"subject": "Booked after recovery", **at(13, 9)})
        mb.converged()
        assert after in mb.mirror()


def test_after_an_outage_healing_starts_within_a_minute_of_the_host_starting() -> None:
    """Host down 8 days: with no renewal run, the poll timer recreates the expired subscription
    within a minute of the restart; until then the status never says ok for it."""
    with local_stack() as stack:
        mb = enrol(stack)
        old = mb.status()["status"]["subscriptionId"]
        stack.hosts[0].stop()
        stack.sim.control.knobs(delta_token_max_age_s=7 * 86400)
        stack.advance(8 * 86400)
        missed = mb.create({"subject": "Booked while the host was down", **at(12, 9)})
        stack.restart_host(0)
        shown = mb.status()
        if shown["status"]["subscriptionId"] == old:  # not healed yet: must not look healthy
            assert shown["health"].startswith("error: subscription_expired"), shown["health"]
            with stack.admin() as api:
                listed = {m["userId"]: m["health"] for m in api.get("/mailboxes").json()["value"]}
            healed = mb.status()["status"]["subscriptionId"] != old
            assert healed or listed[mb.user_id].startswith("error: subscription_expired")
        wait_for(
            lambda: (s := mb.status()["status"]["subscriptionId"]) not in ("", old) and s,
            timeout=60,
            what="the expired subscription recreated by the poll timer",
        )
        assert mb.status()["health"] == "ok (webhook)"
        mb.converged()
        assert missed in mb.mirror()
        mb.create({"subject": "Booked after recovery", **at(13, 9)})
        mb.converged()


def test_two_hosts_share_the_work_without_overlapping_rounds() -> None:
    """Two hosts on one Azurite: every mailbox converges and no mailbox has overlapping rounds."""
    # One message per fetch, so that both hosts take part (the assertion below checks they did).
    one_at_a_time = {
        "version": "2.0",
        "extensions": {
            "queues": {
                "batchSize": 1,
                "newBatchThreshold": 0,
                "maxPollingInterval": "00:00:01",
                "visibilityTimeout": "00:00:01",
                "maxDequeueCount": 5,
            }
        },
    }
    with local_stack(hosts=2, host_json=one_at_a_time) as stack:
        mailboxes = [enrol(stack) for _ in range(4)]
        for burst in range(3):
            for mb in mailboxes:
                ids = [mb.create({"subject": f"B{burst}-{n}", **at(1 + n, 9)}) for n in range(6)]
                mb.update(ids[0], {"subject": f"B{burst}-0 renamed"})
                mb.delete(ids[1])
        for mb in mailboxes:
            mb.converged(timeout=60)
        rounds: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
        for host in stack.hosts:
            for kind, partition, owner, at_time in _ROUND.findall(host.log_path.read_text()):
                rounds[partition].append((float(at_time), kind, owner))
        owners = {owner for events in rounds.values() for _, _, owner in events}
        assert len(owners) >= 2, "both hosts should have run rounds"
        for partition, events in rounds.items():
            events.sort()
            holder = None
            for _, kind, owner in events:
                if kind == "begin":
                    assert holder is None, f"overlapping rounds on {partition}"
                    holder = owner
                else:
                    assert holder == owner, f"round end without its begin on {partition}"
                    holder = None


def test_a_host_killed_mid_round_is_taken_over_within_45_s() -> None:
    """A host killed in the middle of a 3,000-event full sync leaves a stale lease; the status
    shows the round in progress, the other host takes the round over within 45 s and completes
    the mirror."""
    with local_stack(hosts=2) as stack:
        mb = enrol(stack)
        stack.sim.control.knobs(drop_rate=1.0, send_missed_on_drop=False)
        start = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT06:00:00Z")
        stack.sim.control.bulk_events(mb.upn, 3000, start, step_minutes=60)
        stack.sim.control.knobs(drop_rate=0.0, send_missed_on_drop=True)
        delta = f"users/{mb.user_id}/calendarView/delta"
        stack.sim.control.fault(0, count=10_000, path_contains=delta, latency_ms=400)
        with stack.admin() as api:
            assert api.post(mb.path + "/resync").status_code < 300
        running = wait_for(
            lambda: (s := mb.status()["status"])["roundInProgressSince"] and s, what="a round"
        )
        assert running["leaseStale"] is False
        wait_for(lambda: len(mb.mirror()) >= 300, timeout=60, what="part of the mirror")
        begun = f"round begin {stack.tenant_id}_{mb.user_id} by {running['leaseOwner']} "
        [dead] = [h for h in stack.hosts if begun in h.log_path.read_text()]
        os.killpg(dead.process.pid, signal.SIGKILL)
        dead.process.wait(timeout=10)
        killed_at = time.monotonic()
        stack.hosts.sort(key=lambda h: h is dead)  # the admin API of the survivor
        assert len(mb.mirror()) < 3000
        stack.sim.control.clear_faults()

        [survivor] = [h for h in stack.hosts if h is not dead]
        resumed = f"round begin {stack.tenant_id}_{mb.user_id} by "
        rounds_before = survivor.log_path.read_text().count(resumed)

        def resumed_by_survivor() -> bool:
            return survivor.log_path.read_text().count(resumed) > rounds_before

        def taken_over() -> bool:
            status = mb.status()["status"]
            return bool(status["lastSync"] > running["roundInProgressSince"]) and (
                status["roundInProgressSince"] is None
            )

        # The takeover itself: the survivor begins the mailbox's round within 45 s of the kill
        # (the stale lease's 30 s and the takeover copy's delay); finishing the 3,000 events
        # then takes what the machine's storage takes. Waiting on the status, not on the
        # 3,000-event comparison: polling that would load the machine the survivor needs.
        wait_for(resumed_by_survivor, timeout=45, what="the other host to take the round over")
        assert time.monotonic() - killed_at < 45
        wait_for(taken_over, timeout=240, what="the other host to complete the round")
        mb.converged(timeout=30)
        done = mb.status()["status"]
        assert done["roundInProgressSince"] is None
        assert done["leaseOwner"] == ""
