"""The change feed against the running stack: a change made in the simulator is read back
from the feed route page by page, a deletion as a deletion, and bad cursors are problems."""

from __future__ import annotations

from typing import Any

import pytest

from devhost.local.stack import Stack
from tests.e2e.harness import at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _changes(stack: Stack, path: str, **params: str) -> dict[str, Any]:
    with stack.admin() as api:
        answer = api.get(f"{path}/changes", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_feed_pages_created_updated_deleted_in_order(stack: Stack) -> None:
    """Create, move and delete one event: the feed lists the three changes in order, paged with
    `next`, carrying the mailbox's reference; a read past the end is an empty page."""
    mb = enrol(stack, {"reference": "desk-user-12"})
    event_id = mb.create({"subject": "Site visit", **at(3, 9)})
    mb.converged()
    mb.update(event_id, at(3, 11))
    mb.converged()
    mb.delete(event_id)
    mb.converged()

    def three() -> list[dict[str, Any]]:
        found = _changes(stack, mb.path, limit="1000")["value"]
        mine = [c for c in found if c["eventId"] == event_id]
        return mine if len(mine) == 3 else []

    created, updated, deleted = wait_for(three, what="three changes on the feed")
    assert [c["type"] for c in (created, updated, deleted)] == ["created", "updated", "deleted"]
    assert "start" in updated["changedFields"]
    assert deleted["event"] is None
    assert {c["mailboxRef"] for c in (created, updated, deleted)} == {"desk-user-12"}
    first = _changes(stack, mb.path, limit="1")
    assert (first["count"], first["more"]) == (1, True)
    rest = _changes(stack, mb.path, after=first["next"], limit="1000")
    assert [c["id"] for c in first["value"] + rest["value"]][-3:] == [
        created["id"],
        updated["id"],
        deleted["id"],
    ]
    end = _changes(stack, mb.path, after=rest["next"])
    assert (end["count"], end["next"], end["more"]) == (0, rest["next"], False)


@pytest.mark.parametrize(
    ("params", "names"),
    [({"after": "soon"}, "after="), ({"limit": "0"}, "limit="), ({"limit": "5000"}, "limit=")],
)
def test_bad_feed_cursors_are_problems(stack: Stack, params: dict[str, str], names: str) -> None:
    """A cursor that is not a sequence, or a limit outside 1..1000: 400 naming the parameter."""
    mb = enrol(stack)
    with stack.admin() as api:
        answer = api.get(f"{mb.path}/changes", params=params)
        unknown = api.get(f"/mailboxes/{stack.tenant_id}/nobody@nowhere.example/changes")
    assert answer.status_code == 400
    assert names in answer.json()["detail"]
    assert unknown.status_code == 404
