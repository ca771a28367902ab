"""The iCalUId index's pure rules: its keys, the input it accepts, and the writes a mirror
change plans (new, changed, unchanged, deleted, and an iCalUId that changed)."""

from __future__ import annotations

import pytest

from shared.core import icaluid as ix
from shared.errors import InputError

UID = "040000008200E00074C5B7101A82E00800000000" + "AB" * 28


def test_forward_rows_of_one_ical_uid_fall_in_its_range_and_no_other() -> None:
    """Every forward row of an iCalUId sorts inside its range; another iCalUId's never does."""
    low, high = ix.forward_range(UID)
    for user, event in (("u1", "AAkAL/+="), ("U2", "x" * 200)):
        assert low <= ix.forward_row(UID, user, event) < high
        assert not low <= ix.forward_row(UID + "0", user, event) < high
    assert len(ix.forward_row("x" * 2000, "u", "e")) < 80


@pytest.mark.parametrize(
    ("value", "needle"),
    [(None, "iCalUId is required"), ("  ", "iCalUId is required"), ("x" * 2049, "2048")],
)
def test_bad_ical_uids_are_refused_naming_the_parameter(value: str | None, needle: str) -> None:
    """A missing, blank or over-long iCalUId is an InputError that names iCalUId."""
    with pytest.raises(InputError, match=needle):
        ix.parse_ical_uid(value)


def test_a_change_plans_exactly_the_rows_it_moves() -> None:
    """Upserts write their forward row (and drop the one of an iCalUId the mirror held before
    and that changed); a delete drops the forward row of what the mirror held; an id the mirror
    never held, deleted or without an iCalUId, writes nothing; an id deleted then upserted
    stays; no reverse rows."""
    before = {"changed": UID, "gone": UID, "back": UID}
    plan = ix.plan_changes(
        "U1",
        [("new", UID), ("changed", "other"), ("no-uid", ""), ("back", UID)],
        ["gone", "never", "back"],
        before,
    )
    assert sorted(rk for rk, _ in plan.upserts) == sorted(
        [
            ix.forward_row(UID, "u1", "new"),
            ix.forward_row("other", "u1", "changed"),
            ix.forward_row(UID, "u1", "back"),
        ]
    )
    assert sorted(plan.deletes) == sorted(
        [ix.forward_row(UID, "u1", "changed"), ix.forward_row(UID, "u1", "gone")]
    )
    assert dict(plan.upserts)[ix.forward_row(UID, "u1", "new")] == {
        "user_id": "u1",
        "event_id": "new",
        "ical_uid": UID,
    }
