"""End to end through Graph's known faults: duplicates, reordering, drops healed by `missed`,
lifecycle events, 410 on the delta token, 429 storms. After each, the mirror equals Graph."""

from __future__ import annotations

import pytest

from devhost.local.stack import Stack
from tests.e2e.harness import at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _dropped(stack: Stack) -> int:
    return int(stack.sim.control.counters()["notifications"].get("items_dropped_silently", 0))


def test_duplicate_and_reordered_notifications(stack: Stack) -> None:
    """Every notification sent twice and batches reordered: the mirror still converges."""
    mb = enrol(stack)
    stack.sim.control.knobs(duplicate_rate=1.0, reorder=True)
    ids = [mb.create({"subject": f"Slot {n}", **at(1, 8 + n)}) for n in range(5)]
    mb.update(ids[0], {"subject": "Slot 0 (renamed)"})
    mb.delete(ids[1])
    mb.converged()
    assert stack.sim.control.counters()["notifications"].get("items_duplicated", 0) > 0


def test_dropped_notification_is_healed_by_missed(stack: Stack) -> None:
    """A silently dropped notification leaves the mirror stale until `missed` triggers a resync."""
    mb = enrol(stack)
    mb.converged()
    before = _dropped(stack)
    stack.sim.control.knobs(drop_rate=1.0, send_missed_on_drop=False)
    eid = mb.create({"subject": "Never notified", **at(1, 15)})
    wait_for(lambda: _dropped(stack) > before, what="the simulator to drop the notification")
    assert eid not in mb.mirror()
    stack.sim.control.knobs(drop_rate=0.0, send_missed_on_drop=True)
    sub = mb.status()["status"]["subscriptionId"]
    assert stack.sim.control.lifecycle(sub, "missed")
    mb.converged()


def test_subscription_removed_is_recreated_then_resynced(stack: Stack) -> None:
    """subscriptionRemoved: a new subscription replaces the removed one and changes flow again."""
    mb = enrol(stack)
    old = mb.status()["status"]["subscriptionId"]
    assert stack.sim.control.lifecycle(old, "subscriptionRemoved")
    new = wait_for(
        lambda: (s := mb.status()["status"]["subscriptionId"]) != old and s,
        what="a new subscription",
    )
    live = {s["id"] for s in stack.sim.control.subscriptions()}
    assert new in live
    assert old not in live
    mb.create({"subject": "After recreation", **at(2, 10)})
    mb.converged()


def test_reauthorization_required_is_answered(stack: Stack) -> None:
    """reauthorizationRequired: the app calls /reauthorize and resyncs the mailbox."""
    mb = enrol(stack)
    sub = mb.status()["status"]["subscriptionId"]

    def reauthorized() -> int:
        by_endpoint = stack.sim.control.counters()["requests_by_endpoint"]
        return sum(v for k, v in by_endpoint.items() if "reauthorize" in k)

    before = reauthorized()
    assert stack.sim.control.lifecycle(sub, "reauthorizationRequired")
    wait_for(lambda: reauthorized() > before, what="a reauthorize call")
    mb.create({"subject": "After reauthorization", **at(2, 11)})
    mb.converged()


def test_expired_delta_token_resyncs_and_finds_deletions_in_the_gap(stack: Stack) -> None:
    """410 SyncStateNotFound: a full resync with a diff removes what was deleted meanwhile."""
    mb = enrol(stack)
    gone = mb.create({"subject": "Deleted in the gap", **at(1, 7)})
    mb.converged()
    before = _dropped(stack)
    stack.sim.control.knobs(drop_rate=1.0, send_missed_on_drop=False)
    mb.delete(gone)
    wait_for(lambda: _dropped(stack) > before, what="the deletion's notification to be dropped")
    assert gone in mb.mirror()
    assert stack.sim.control.expire_delta(mb.upn) >= 1
    stack.sim.control.knobs(drop_rate=0.0, send_missed_on_drop=True)
    mb.create({"subject": "Trigger", **at(1, 8)})
    mb.converged()
    assert gone not in mb.mirror()


def test_two_410s_in_a_row_are_retried_until_the_mirror_converges(stack: Stack) -> None:
    """410 on the stored link, then 410 in the fallback full resync: the round is re-queued
    (status: retryAt, retryReason) and converges with no other change to trigger it."""
    mb = enrol(stack)
    gone = mb.create({"subject": "Deleted between two 410s", **at(1, 7)})
    mb.converged()
    delta = f"users/{mb.user_id}/calendarView/delta"
    stack.sim.control.fault(410, count=2, path_contains=delta)
    mb.delete(gone)
    wait_for(lambda: mb.status()["status"]["retryReason"], what="a scheduled retry")
    mb.converged(timeout=30)
    assert gone not in mb.mirror()
    assert mb.status()["status"]["retryReason"] == ""


def test_throttling_storm_is_ridden_out(stack: Stack) -> None:
    """Six 429s in a row with Retry-After: each sync re-queues after the delay and converges."""
    mb = enrol(stack)
    before = stack.sim.control.counters()["requests_by_status"].get("429", 0)
    stack.sim.control.fault(
        429, count=6, path_contains=f"users/{mb.user_id}/calendarView/delta", retry_after_s=0.5
    )
    for n in range(8):
        mb.create({"subject": f"Storm {n}", **at(3, 8 + n)})
    mb.converged(timeout=60)
    wait_for(
        lambda: stack.sim.control.counters()["requests_by_status"].get("429", 0) >= before + 6,
        timeout=60,
        what="all six 429s answered",
    )
    mb.converged(timeout=60)
    # A round re-queued by the last 429 may still be due: its success clears the error.
    wait_for(lambda: mb.status()["status"]["lastError"] == "", timeout=60, what="no last error")
