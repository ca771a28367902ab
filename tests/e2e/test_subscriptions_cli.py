"""Subscriptions and the live log from the CLI against the dev host: `calsync subscriptions
list` (compared with Graph's own list), `subscriptions renew` (asks first, renews now),
`calsync logs --follow` (new records as they come, none twice), and Entra's token requests
in the operations log without a secret."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from devhost.local.stack import FUNCTION_KEY, Stack
from shared.core.times import parse_iso
from tests.e2e.harness import enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli(stack: Stack) -> list[str]:
    base = [sys.executable, "-m", "calsync_cli", "--url", stack.hosts[0].url]
    return [*base, "--key", FUNCTION_KEY, "--ca", stack.sim.ca_pem_path]


def calsync(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_cli(stack), *args], input=stdin, capture_output=True, text=True, check=False
    )


def test_subscriptions_list_compares_with_graph_and_renew_asks_first(stack: Stack) -> None:
    """A webhook mailbox's subscription is listed active and present in Graph with the same
    expiry; renew without --yes asks and a "no" changes nothing; with --yes it is renewed now
    and the list shows the renewal."""
    mb = enrol(stack)
    mine = ("--tenant", stack.tenant_id, "--mailbox", mb.upn)
    listed = calsync(stack, "subscriptions", "list", *mine, "--graph", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    (sub,) = found["value"]
    assert (sub["userId"], sub["upn"], sub["state"]) == (mb.user_id, mb.upn, "active")
    assert sub["inGraph"] is True
    assert parse_iso(sub["graphExpiresOn"]) == parse_iso(sub["expiresOn"])
    assert found["graphOnly"] == []
    assert found["graphErrors"] == {}
    kept = calsync(stack, "subscriptions", "renew", *mine, stdin="n\n")
    assert kept.returncode == 1
    after_no = json.loads(calsync(stack, "subscriptions", "list", *mine, "-o", "json").stdout)
    assert after_no["value"][0]["lastRenewed"] is None
    renewed = calsync(stack, "subscriptions", "renew", *mine, "--yes", "-o", "json")
    assert renewed.returncode == 0, renewed.stderr
    result = json.loads(renewed.stdout)
    assert (result["renewed"], result["failed"]) == (1, 0)
    assert result["value"][0]["subscriptionId"] == sub["subscriptionId"]
    table = calsync(stack, "subscriptions", "list", *mine)
    assert table.returncode == 0, table.stderr
    assert sub["subscriptionId"] in table.stdout
    again = json.loads(calsync(stack, "subscriptions", "list", *mine, "-o", "json").stdout)
    assert again["value"][0]["lastRenewed"] is not None
    assert again["value"][0]["expiresOn"] == result["value"][0]["expiresOn"]


def test_subscription_commands_validate_their_arguments(stack: Stack) -> None:
    """--mailbox without --tenant is refused by the CLI; an unknown tenant by the API (400)."""
    lone = calsync(stack, "subscriptions", "list", "--mailbox", "x@contoso.example")
    assert lone.returncode != 0
    assert "--tenant" in lone.stderr
    with stack.admin() as api:
        bad = api.get("/subscriptions", params={"tenant": "not-a-tenant"})
        assert bad.status_code == 400
        assert "tenant" in bad.json()["detail"]
        flag = api.get("/subscriptions", params={"graph": "maybe"})
        assert flag.status_code == 400
        assert "graph" in flag.json()["detail"]
        body = api.post("/subscriptions/renew", json=["x"])
        assert body.status_code == 400


def test_logs_follow_prints_new_records_once(stack: Stack) -> None:
    """`logs --follow` keeps polling: a resync started after it began shows up in its output,
    and no record is printed twice."""
    mb = enrol(stack)
    started = datetime.now(UTC)
    args = ["logs", "--tenant", stack.tenant_id, "--user", mb.user_id, "--follow"]
    args += ["--interval", "0.5", "--polls", "16", "-o", "json"]
    follower = subprocess.Popen(
        [*_cli(stack), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.5)
        with stack.admin() as api:
            assert api.post(f"/mailboxes/{stack.tenant_id}/{mb.user_id}/resync").status_code == 202
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len({json.dumps(r, sort_keys=True) for r in lines}) == len(lines)
    late = [r for r in lines if r.get("kind") == "delta" and parse_iso(r["at"]) >= started]
    assert late, out[-2000:]


def test_entra_token_requests_are_in_the_log_without_secrets(stack: Stack) -> None:
    """The app's token requests to Entra are outbound records (host and path, status,
    duration), with no secret, token or query."""

    def tokens() -> list[dict[str, Any]] | None:
        done = calsync(stack, "logs", "--tenant", stack.tenant_id, "--top", "1000", "-o", "json")
        assert done.returncode == 0, done.stderr
        rows = [r for r in json.loads(done.stdout)["value"] if r.get("kind") == "token"]
        return rows or None

    enrol(stack)
    rows = wait_for(tokens, timeout=20, what="a token request in the log")
    assert all(r["method"] == "POST" and r["direction"] == "out" for r in rows)
    assert all(r["path"].endswith(f"/{stack.tenant_id}/oauth2/v2.0/token") for r in rows)
    assert any(r["status"] == 200 for r in rows)
    text = json.dumps(rows)
    for secret in (stack.env["SECRET_GRAPH_CLIENT_SECRET"], "client_secret", "?", "Bearer"):
        assert secret not in text
