"""End to end through the dev host: the change feed delivered to real HTTPS receivers on
loopback, registered with the CLI, verified with the standardwebhooks library; a receiver down
for an hour on the shared virtual clock gets everything once it is back, in order; a slow
receiver never holds up another subscriber; the admin API refuses bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from devhost.local.stack import FUNCTION_KEY, Stack, local_stack
from shared.adapters.feed_tables import ChangeLog
from shared.adapters.storage import StorageClients
from shared.core.model import MailboxKey
from shared.settings import StorageSettings
from tests.e2e.harness import at, enrol, wait_for
from tests.receiver import Receiver, run_receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    base = [sys.executable, "-m", "calsync_cli", "--url", stack.hosts[0].url]
    base += ["--key", FUNCTION_KEY, "--ca", stack.sim.ca_pem_path]
    return subprocess.run([*base, *args], capture_output=True, text=True, check=False)


def _subscribe(stack: Stack, receiver: Receiver, mailbox: str) -> tuple[str, str]:
    done = _cli(stack, "webhooks", "add", receiver.url, "--mailbox", mailbox, "-o", "json")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    return created["id"], created["secret"]


def _pair(stack: Stack, sub_id: str) -> dict[str, Any]:
    with stack.admin() as api:
        found = api.get(f"/webhooks/{sub_id}")
        found.raise_for_status()
        pairs = found.json()["deliveries"]
    return pairs[0] if pairs else {}


def test_the_feed_reaches_receivers_signed_in_order_through_an_outage() -> None:
    """Created, updated and deleted reach the receiver verified, exactly the mirror's changes
    once each; a slow second subscriber only times out on its own; down for an hour, the
    receiver gets the rest once the clock has moved and the sweep ran; a range replayed with the
    CLI comes again with the same id; bad input is refused."""
    with (
        local_stack(env={"WEBHOOK_TIMEOUT_SECONDS": "2"}) as stack,
        run_receiver(cert=(stack.sim.host_cert_path, stack.sim.host_key_path)) as receiver,
        run_receiver(cert=(stack.sim.host_cert_path, stack.sim.host_key_path)) as slow,
    ):
        mb = enrol(stack)
        slow.mode, slow.slow_seconds = "slow", 6.0
        sub_id, secret = _subscribe(stack, receiver, mb.user_id)
        slow_id, _ = _subscribe(stack, slow, mb.user_id)
        listed = _cli(stack, "webhooks", "list")
        assert sub_id in listed.stdout
        assert secret not in listed.stdout

        event_id = mb.create({"subject": "Boiler check", **at(1, 9)})
        mb.converged()
        mb.update(event_id, {"subject": "Boiler check (moved)"})
        mb.converged()
        mb.delete(event_id)
        mb.converged()
        got = wait_for(
            lambda: (b := receiver.verified(secret)) and len(b) >= 3 and b,
            timeout=60,
            what="three deliveries",
        )
        feed = ChangeLog(StorageClients(StorageSettings(connection_string=stack.storage)))
        key = MailboxKey(stack.tenant_id, mb.user_id)
        assert [b["id"] for b in got] == [c.change_id for c in feed.read_after(key)]
        assert [b["type"] for b in got] == ["created", "updated", "deleted"]
        assert got[2]["event"] is None
        assert "timed out" in (_pair(stack, slow_id).get("lastError") or "")

        receiver.mode = "down"
        later = mb.create({"subject": "While the receiver is down", **at(2, 9)})
        mb.converged()
        wait_for(lambda: _pair(stack, sub_id).get("attempt", 0) >= 1, timeout=60, what="a retry")
        stack.advance(3600)
        receiver.mode = "ok"
        stack.run_function("sweep_deliveries")
        got = wait_for(
            lambda: (b := receiver.verified(secret)) and len(b) >= 4 and b,
            timeout=60,
            what="the delivery after the outage",
        )
        assert got[3]["eventId"] == later
        assert len({b["id"] for b in got}) == len(got) == 4
        assert [b["sequence"] for b in got] == sorted(b["sequence"] for b in got)

        replayed = _cli(
            stack,
            "webhooks",
            "replay",
            sub_id,
            "--tenant",
            stack.tenant_id,
            "--mailbox",
            mb.user_id,
            "--from",
            got[0]["sequence"],
            "--to",
            got[0]["sequence"],
            "-o",
            "json",
        )
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["armed"] == 1
        again = wait_for(
            lambda: (b := receiver.verified(secret)) and len(b) >= 5 and b,
            timeout=60,
            what="the replayed change",
        )
        assert again[4]["id"] == got[0]["id"]  # the same change, the same id
        shown = _cli(stack, "webhooks", "show", sub_id)
        assert shown.returncode == 0, shown.stderr
        assert mb.user_id in shown.stdout

        with stack.admin() as api:
            plain = api.post("/webhooks", json={"url": "http://hooks.example.com/in"})
            assert plain.status_code == 400
            assert "https" in plain.json()["detail"]
            bad = api.post("/webhooks", json={"url": receiver.url, "filter": {"types": ["x"]}})
            assert bad.status_code == 400
            assert "filter.types" in bad.json()["detail"]
            assert api.get("/webhooks/nope").status_code == 404
            assert api.post("/webhooks/nope/replay", json={}).status_code == 404
        removed = _cli(stack, "webhooks", "remove", slow_id, "--yes", "-o", "json")
        assert removed.returncode == 0, removed.stderr
