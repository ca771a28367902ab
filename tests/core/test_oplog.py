"""The operations log's pure rules: redaction of paths and queries, keys that sort newest
first, query plans by mailbox, direction and time, and the retention bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.core import oplog
from shared.errors import InputError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BASE = "https://graph.example/v1.0"


@pytest.mark.parametrize(
    ("target", "stored"),
    [
        ("users/u1/calendarView/delta", "users/u1/calendarView/delta"),
        (
            f"{BASE}/users/u1/calendarView/delta?$deltatoken=SECRETTOKEN",
            "users/u1/calendarView/delta?$deltatoken=***",
        ),
        (
            f"{BASE}/users/u1/calendarView/delta?$skiptoken=abc&$top=10",
            "users/u1/calendarView/delta?$skiptoken=***&$top=10",
        ),
        (
            "users/u1/calendarView/delta?startDateTime=2026-11-01T00:00:00Z",
            "users/u1/calendarView/delta?startDateTime=2026-11-01T00:00:00Z",
        ),
        ("/api/log?code=functionkey123&top=5", "/api/log?code=***&top=***"),
        ("https://elsewhere.example/x/y?sig=abc", "/x/y?sig=***"),
        ("users/a?$select=id,mail", "users/a?$select=id,mail"),
    ],
)
def test_redact_target_keeps_paths_and_only_harmless_query_values(target: str, stored: str) -> None:
    """Paths are kept relative to Graph's base; every query value but SAFE_QUERY's is ***."""
    assert oplog.redact_target(target, BASE) == stored


def test_row_keys_sort_newest_first_and_partitions_name_the_mailbox_day() -> None:
    """A later record's RowKey sorts before an earlier one's; the PartitionKey is day+mailbox."""
    early, late = oplog.row_key(NOW, "a"), oplog.row_key(NOW + timedelta(microseconds=1), "a")
    assert late < early
    assert len(oplog.inverted_stamp(NOW)) == 17
    assert oplog.partition_key("T1", "U1", NOW) == "20261201_t1_u1"
    assert oplog.partition_key("t1", "", NOW) == "20261201_t1_-"


def test_outbound_record_takes_ids_and_retry_after_from_the_answer() -> None:
    """request-id, client-request-id and Retry-After come from the answer's headers, any case."""
    record = oplog.outbound(
        at=NOW,
        method="GET",
        url=f"{BASE}/users/u1/calendarView/delta?$deltatoken=x",
        base_url=BASE,
        tenant_id="t1",
        user_id="u1",
        kind="delta",
        status=429,
        duration_ms=12.345,
        headers={"Request-Id": "r-1", "Retry-After": "7"},
        client_request_id="c-1",
    )
    entity = oplog.to_entity(record, "s")
    assert (entity["request_id"], entity["client_request_id"]) == ("r-1", "c-1")
    assert (entity["retry_after"], entity["status"]) == ("7", 429)
    assert entity["path"] == "users/u1/calendarView/delta?$deltatoken=***"
    assert oplog.view(entity)["requestId"] == "r-1"


def test_inbound_records_one_per_mailbox_or_one_for_the_tenant() -> None:
    """A POST naming two mailboxes is logged in each one's partition; naming none, once."""
    two = oplog.inbound(
        at=NOW,
        kind="notifications",
        status=202,
        duration_ms=3,
        items=5,
        queued=2,
        ignored=3,
        mailboxes=(("t1", "u1"), ("t1", "u2")),
    )
    assert [(r.tenant_id, r.user_id) for r in two] == [("t1", "u1"), ("t1", "u2")]
    assert all(r.mailboxes == 2 and r.items == 5 and r.direction == "in" for r in two)
    none = oplog.inbound(
        at=NOW,
        kind="notifications",
        status=202,
        duration_ms=3,
        items=1,
        queued=0,
        ignored=1,
        mailboxes=(),
        tenants=("t1",),
    )
    assert [(r.tenant_id, r.user_id) for r in none] == [("t1", "")]


def test_a_mailbox_query_reads_one_partition_per_day_newest_first() -> None:
    """user+tenant over two days: two exact partitions, today first, bounded by RowKeys."""
    plan = oplog.plan_query(
        {"tenant": "T1", "user": "u1", "since": "2026-11-30T06:00:00Z"}, now=NOW
    )
    assert [d.low for d in plan.days] == ["20261201_t1_u1", "20261130_t1_u1"]
    assert all(d.high == d.low + "\x00" for d in plan.days)
    assert plan.days[0].row_low == oplog.inverted_stamp(NOW)
    assert (plan.top, plan.direction) == (oplog.DEFAULT_TOP, None)


def test_tenant_and_open_queries_are_prefix_ranges() -> None:
    """A tenant's day is a PartitionKey prefix range; without tenant, the whole day."""
    (day,) = oplog.plan_query({"tenant": "t1", "since": "2026-12-01T01:00:00Z"}, now=NOW).days
    assert (day.low, day.high) == ("20261201_t1_", "20261201_t1`")
    (day,) = oplog.plan_query({"since": "2026-12-01T01:00:00Z"}, now=NOW).days
    assert (day.low, day.high) == ("20261201_", "20261201`")


def test_queries_never_reach_past_the_retention() -> None:
    """since older than the retention is clamped: those days are gone."""
    plan = oplog.plan_query({"since": "2026-01-01T00:00:00Z"}, now=NOW, retention_days=7)
    assert len(plan.days) == 8
    assert plan.days[-1].low == "20261124_"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"user": "u1"}, "user"),
        ({"direction": "sideways"}, "direction"),
        ({"top": "0"}, "top"),
        ({"top": "5000"}, "top"),
        ({"top": "ten"}, "top"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-12-01T11:00:00Z", "until": "2026-12-01T10:00:00Z"}, "since"),
    ],
)
def test_bad_query_parameters_are_input_errors_naming_them(
    params: dict[str, str], named: str
) -> None:
    """Each bad parameter is a 400 whose message names it."""
    with pytest.raises(InputError, match=named):
        oplog.plan_query(params, now=NOW)


@pytest.mark.parametrize(
    ("days", "bound"), [(7, "20261124"), (1, "20261130"), (30, "20261101"), (0, "20261130")]
)
def test_prune_bound_keeps_the_retention_in_whole_days(days: int, bound: str) -> None:
    """Partitions below the bound are older than the retention (at least one day is kept)."""
    assert oplog.prune_bound(NOW, days) == bound
    assert bound < oplog.STATUS_PARTITION  # the status row is never pruned
