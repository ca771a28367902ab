"""`GET /api/events?iCalUId=&tenant=` on the dev host: a meeting and an attendee's copy in two
enrolled mailboxes are both found by the meeting's iCalUId, with an ETag; bad input is a 400
naming the parameter and an unknown tenant a 404."""

from __future__ import annotations

import pytest

from devhost.local.stack import Stack
from tests.e2e.harness import at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_one_meeting_is_found_in_both_mailboxes_by_its_ical_uid(stack: Stack) -> None:
    """Both events come back (each with its mailbox and its own id); the ETag repeats as 304."""
    organizer, attendee = enrol(stack), enrol(stack)
    control = stack.sim.control
    meeting = control.create_event(organizer.upn, {"subject": "Shared review", **at(2, 10)})
    copy = control.invite(attendee.upn, organizer.upn, meeting["id"])
    params = {"iCalUId": meeting["iCalUId"], "tenant": stack.tenant_id}
    with stack.admin() as api:

        def both() -> dict[str, str] | None:
            answer = api.get("/events", params=params)
            assert answer.status_code == 200, answer.text
            found = {v["userId"]: v["id"] for v in answer.json()["value"]}
            return found if len(found) == 2 else None

        found = wait_for(both, timeout=30, what="both copies of the meeting in the mirror")
        assert found == {organizer.user_id: meeting["id"], attendee.user_id: copy["id"]}
        first = api.get("/events", params=params)
        again = api.get("/events", params=params, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304


def test_bad_input_names_the_parameter_and_an_unknown_tenant_is_404(stack: Stack) -> None:
    """No iCalUId or no tenant: 400 naming it; a tenant not configured: 404."""
    with stack.admin() as api:
        missing = api.get("/events", params={"tenant": stack.tenant_id})
        assert missing.status_code == 400
        assert "iCalUId" in missing.json()["detail"]
        no_tenant = api.get("/events", params={"iCalUId": "x"})
        assert no_tenant.status_code == 400
        assert "tenant" in no_tenant.json()["detail"]
        unknown = api.get(
            "/events", params={"iCalUId": "x", "tenant": "00000000-0000-0000-0000-000000000000"}
        )
        assert unknown.status_code == 404
