"""Planning page writes (idempotent, last occurrence wins), full diffs, and Table batches."""

from __future__ import annotations

import random
from typing import Any

import pytest

from shared.core.events import normalize_event
from shared.core.model import DeltaItem, MailboxOptions
from shared.core.reconcile import PagePlan, batch_operations, plan_full_diff, plan_page
from shared.errors import InputError

OPTS = MailboxOptions()
Mirror = dict[str, tuple[str, str]]


def event(eid: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": eid,
        "changeKey": f"ck{version}",
        "subject": f"v{version}",
        "type": "singleInstance",
        "start": {"dateTime": "2026-11-21T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-21T10:00:00", "timeZone": "UTC"},
        **extra,
    }


def put(eid: str, version: int = 1, **extra: Any) -> DeltaItem:
    return DeltaItem(eid, event=event(eid, version, **extra))


def gone(eid: str) -> DeltaItem:
    return DeltaItem(eid, removed="deleted")


def stored_for(eid: str, version: int = 1) -> tuple[str, str]:
    mirrored = normalize_event(event(eid, version), OPTS)
    return (mirrored.change_key, mirrored.content_hash)


def apply(plan: PagePlan, mirror: Mirror) -> Mirror:
    out = dict(mirror)
    for ev in plan.upserts:
        out[ev.event_id] = (ev.change_key, ev.content_hash)
    for eid in plan.deletes:
        del out[eid]
    return out


def test_new_changed_and_unchanged_events() -> None:
    """Upsert new ids and changed ones; leave identical ones alone."""
    stored = {"same": stored_for("same"), "old": stored_for("old", 1)}
    plan = plan_page([put("new"), put("same"), put("old", 2)], stored, OPTS)
    assert [e.event_id for e in plan.upserts] == ["new", "old"]
    assert plan.deletes == ()


def test_content_change_without_new_change_key_is_upserted() -> None:
    """A different content hash alone (e.g. options changed to mask) triggers an upsert."""
    stored = {"e": stored_for("e")}
    masked = MailboxOptions(private="mask")
    plan = plan_page([put("e", sensitivity="private")], stored, masked)
    assert [e.event_id for e in plan.upserts] == ["e"]


def test_deletes_only_stored_ids() -> None:
    """A removal deletes only what the mirror holds."""
    plan = plan_page([gone("held"), gone("never")], {"held": stored_for("held")}, OPTS)
    assert plan.upserts == ()
    assert plan.deletes == ("held",)
    assert [(c.type, c.event_id) for c in plan.changes] == [("deleted", "held")]


@pytest.mark.parametrize(
    ("items", "upserts", "deletes"),
    [
        ([put("e", 1), put("e", 2)], [("e", "ck2")], []),
        ([put("e", 2), gone("e")], [], ["e"]),
        ([gone("e"), put("e", 3)], [("e", "ck3")], []),
        ([put("e", 2), put("e", 1)], [], []),  # the last occurrence equals what is stored
    ],
)
def test_last_occurrence_wins(
    items: list[DeltaItem], upserts: list[tuple[str, str]], deletes: list[str]
) -> None:
    """When an id repeats on a page, only its last occurrence counts."""
    plan = plan_page(items, {"e": stored_for("e", 1)}, OPTS)
    assert [(e.event_id, e.change_key) for e in plan.upserts] == upserts
    assert list(plan.deletes) == deletes


def test_series_masters_planned_and_bad_events_skipped() -> None:
    """A series master is planned like any event; one that cannot be normalised is reported,
    not fatal."""
    bad = DeltaItem("bad", event=event("bad", start={"dateTime": "x", "timeZone": "UTC"}))
    plan = plan_page([put("m", type="seriesMaster"), bad, put("ok")], {}, OPTS)
    assert [e.event_id for e in plan.upserts] == ["m", "ok"]
    assert [c.type for c in plan.changes] == ["created", "created"]
    assert [eid for eid, _ in plan.skipped] == ["bad"]
    assert "start.dateTime is not ISO 8601" in plan.skipped[0][1]


def test_applying_a_page_twice_changes_nothing() -> None:
    """Property: for random pages over a random mirror, a second application plans no writes."""
    rng = random.Random(42)
    ids = [f"id/{n}=" for n in range(12)]
    for _ in range(300):
        mirror: Mirror = {
            eid: stored_for(eid, rng.randint(1, 3)) for eid in ids if rng.random() < 0.5
        }
        items = [
            put(eid, rng.randint(1, 3)) if rng.random() < 0.7 else gone(eid)
            for eid in (rng.choice(ids) for _ in range(rng.randint(0, 20)))
        ]
        on_page = {i.event_id for i in items}
        first = apply(
            plan_page(items, {k: v for k, v in mirror.items() if k in on_page}, OPTS), mirror
        )
        replay = plan_page(items, {k: v for k, v in first.items() if k in on_page}, OPTS)
        assert replay == PagePlan(upserts=(), deletes=())
        # And the mirror now holds exactly the last word of the page for each id on it.
        last = {i.event_id: i for i in items}
        for eid, item in last.items():
            if item.removed:
                assert eid not in first
            else:
                assert first[eid] == stored_for(eid, int(item.event["changeKey"][2:]))  # type: ignore[index]


def test_plan_full_diff() -> None:
    """After a full resync, mirror ids the resync did not see are deleted, sorted."""
    assert plan_full_diff({"a", "b"}, {"a", "b", "z", "c"}) == ("c", "z")
    assert plan_full_diff(set(), set()) == ()
    assert plan_full_diff({"a", "new"}, {"a"}) == ()


def test_batches_respect_count_and_bytes_and_order() -> None:
    """Batches hold at most 100 operations and 4,000,000 bytes, in the original order."""
    rng = random.Random(3)
    ops = [(n, rng.choice([10, 1_000, 300_000, 1_000_000])) for n in range(1000)]
    batches = batch_operations(ops, size_of=lambda op: op[1])
    assert [op for batch in batches for op in batch] == ops
    assert all(1 <= len(b) <= 100 and sum(s for _, s in b) <= 4_000_000 for b in batches)
    small = batch_operations(list(range(250)), size_of=lambda _: 1)
    assert [len(b) for b in small] == [100, 100, 50]
    assert batch_operations([], size_of=lambda _: 1) == []


def test_batches_refuse_impossible_inputs() -> None:
    """An operation larger than a batch, or a batch size over 100, is an InputError."""
    with pytest.raises(InputError, match="operation 1 is"):
        batch_operations([1, 5_000_000], size_of=lambda n: n)
    with pytest.raises(InputError, match="max_ops"):
        batch_operations([1], size_of=lambda n: n, max_ops=101)
