"""W3C traceparent values: parsed by the spec's rules, made fresh or as a child of another."""

from __future__ import annotations

import random

import pytest

from shared.core.tracing import (
    TraceParent,
    child_of,
    new_traceparent,
    parse_traceparent,
    traceparent_problem,
)

GOOD = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (GOOD, TraceParent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 1)),
        (GOOD[:-2] + "00", TraceParent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", 0)),
        ("01" + GOOD[2:] + "-more", TraceParent(GOOD[3:35], GOOD[36:52], 1)),  # later version
        ("", None),
        ("ff" + GOOD[2:], None),  # version ff is invalid
        (GOOD + "-more", None),  # version 00 has exactly four fields
        (GOOD.upper(), None),  # lower-case hex only
        ("00-" + "0" * 32 + "-b7ad6b7169203331-01", None),  # all-zero trace id
        ("00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01", None),  # all-zero span id
        ("00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01", None),  # short trace id
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n", None),
    ],
)
def test_parse_follows_the_spec(value: str, expected: TraceParent | None) -> None:
    """Each value parses to its fields, or to None when the spec calls it invalid."""
    assert parse_traceparent(value) == expected


def test_new_and_child_round_trip() -> None:
    """A new traceparent is valid and sampled; a child keeps the trace id and flags with a new
    span id; an invalid parent starts a new trace instead."""
    rng = random.Random(1)
    root = new_traceparent(rng)
    assert parse_traceparent(str(root)) == root
    assert root.flags == 1
    child = child_of(str(root), rng)
    assert (child.trace_id, child.flags) == (root.trace_id, root.flags)
    assert child.span_id != root.span_id
    assert child_of("garbage", rng).trace_id not in (root.trace_id, "")


def test_problem_names_the_field() -> None:
    """Empty is fine (no trace); anything else invalid is named as the traceparent field."""
    assert traceparent_problem("") is None
    assert traceparent_problem(GOOD) is None
    assert (traceparent_problem("nope") or "").startswith("traceparent: not a W3C traceparent")
