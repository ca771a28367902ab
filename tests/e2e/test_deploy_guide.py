"""The deploy guide's permissions are enough, and no more is assumed: a stack whose app holds
exactly the Graph application permissions `docs/deploy.md` tells an administrator to grant
enrols a mailbox by UPN, subscribes it, and mirrors a change end to end."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.local.stack import Stack, local_stack
from tests.e2e.harness import at, enrol, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GUIDE = Path(__file__).parents[2] / "docs" / "deploy.md"
# Microsoft Graph's application permission (app role) ids, as Entra publishes them.
GRAPH_APP_ROLES = {
    "798ee544-9d2d-430c-a058-570e29e34338": "Calendars.Read",
    "ef54d2bf-783f-4e0f-bca1-3210c0444d99": "Calendars.ReadWrite",
    "97235f07-e226-4f63-ace3-39588e11d3a1": "User.ReadBasic.All",
    "df021288-bdef-4463-88db-98f22de89214": "User.Read.All",
}


def guide_permissions() -> list[str]:
    """The role ids the guide's `az ad app permission add` grants (comments excluded)."""
    step = GUIDE.read_text().split("## 1. Register the app", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(line.split("#", 1)[0] for line in step.splitlines())
    command = code[code.index("az ad app permission add") :].split("\n\n", 1)[0]
    return re.findall(r"([0-9a-f-]{36})=Role", command)


def test_the_guide_names_its_permissions_by_id_and_by_name() -> None:
    """Every role id the guide grants is a known Graph app role, named beside it in the guide."""
    ids = guide_permissions()
    assert ids, "no --api-permissions found in docs/deploy.md step 1"
    text = GUIDE.read_text()
    for role_id in ids:
        assert role_id in GRAPH_APP_ROLES, f"unknown Graph app role id {role_id}"
        assert f"`{GRAPH_APP_ROLES[role_id]}`" in text


@pytest.fixture(scope="module")
def guided() -> Iterator[Stack]:
    """A fresh stack whose app was consented exactly the guide's permissions (before any token
    was issued, so no token carries other roles)."""
    roles = [GRAPH_APP_ROLES[i] for i in guide_permissions()]
    with local_stack() as stack:
        client_id = stack.env["CLIENT_ID"]
        stack.sim.control.revoke_consent(stack.tenant_id, client_id)
        stack.sim.control.grant_consent(stack.tenant_id, client_id, roles)
        yield stack


def test_a_mailbox_syncs_with_exactly_the_guides_permissions(guided: Stack) -> None:
    """Enrol by UPN, subscription created, a new event mirrored through a notification."""
    mb = enrol(guided)
    status = mb.status()["status"]
    assert (status["state"], status["mode"], status["lastError"]) == ("subscribed", "webhook", "")
    mb.create({"subject": "Booked with least privilege", **at(1, 10)})
    mb.converged()
    wait_for(lambda: mb.status()["status"]["lastNotification"], what="a notification")
