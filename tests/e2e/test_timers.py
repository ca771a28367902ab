"""End to end through the timers: orphan subscriptions are deleted, the daily roll shows events
that enter the window from its margin, and the safety net corrects (and reports) drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devhost.local.stack import local_stack
from shared.adapters.storage import StorageClients
from shared.adapters.tables import TableState
from shared.core.model import MailboxKey
from shared.core.times import iso_utc
from shared.settings import StorageSettings
from tests.e2e.harness import at, enrol, graph_token, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_orphans_drift_and_the_daily_roll() -> None:
    """One stack, three timer behaviours (its own stack: the test moves the clock)."""
    with local_stack(env={"SAFETY_NET_DAYS": "3"}) as stack:
        mb = enrol(stack, {"weeksAhead": 1})
        known = mb.status()["status"]["subscriptionId"]

        # An orphan: a subscription to our URL, for a mailbox that is not enrolled (left over
        # after a lost table, say); Graph allows one per resource and app, so it is another user.
        stray = "stray@contoso.example"
        stray_id = stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": stray}])[
            "users"
        ][stray]
        with httpx.Client(verify=stack.sim.ssl_context()) as client:
            created = client.post(
                f"{stack.sim.graph_base_url}/subscriptions",
                headers={"Authorization": f"Bearer {graph_token(stack)}"},
                json={
                    "changeType": "created,updated,deleted",
                    "notificationUrl": stack.env["PUBLIC_BASE_URL"] + "/api/notifications",
                    "resource": f"users/{stray_id}/events",
                    "clientState": "stray",
                    "expirationDateTime": iso_utc(datetime.now(UTC) + timedelta(days=2)),
                },
            )
        assert created.status_code == 201, created.text
        orphan = created.json()["id"]
        stack.run_function("renew_subscriptions")
        live = {s["id"] for s in stack.sim.control.subscriptions()}
        assert orphan not in live
        assert known in live

        # Drift: a row lost from the mirror behind the app's back is put back by the safety net.
        victim = mb.create({"subject": "Will drift", **at(1, 9)})
        mb.converged()
        state = TableState(StorageClients(StorageSettings(connection_string=stack.storage)))
        state.apply_events(MailboxKey(stack.tenant_id, mb.user_id), (), [victim])
        assert victim not in mb.mirror()

        # The daily roll: an event beyond the 1-week window (in its margin: mirrored, hidden)
        # enters it after 3 days; the safety net (due every 3 days here) corrects the drift.
        later = mb.create({"subject": "Enters the window", **at(9, 9)})
        key = MailboxKey(stack.tenant_id, mb.user_id)
        wait_for(lambda: later in state.stored_versions(key), timeout=30, what="margin mirrored")
        assert later not in mb.mirror()  # outside the user's window: not shown
        stack.advance(3 * 86400)
        stack.run_function("daily_roll")
        wait_for(
            lambda: later in mb.mirror() and victim in mb.mirror(),
            timeout=60,
            what="the roll-forward and the drift correction",
        )
        mb.converged()
        log = stack.hosts[0].log_path.read_text()
        assert "corrected 1 drifted events" in log
