"""`GET /applications(appId='...')` as the expiry watch calls it: the registration's secrets
(dates and a three-character hint, never a value) with Application.Read.All, 403 without it,
404 from a tenant that is not the app's home, 400 for an unknown $select."""

from __future__ import annotations

import uuid

import pytest
from simworld import World, make_world

from graphsim.testing import SimHandle

pytestmark = pytest.mark.integration
SELECT = {"$select": "passwordCredentials,keyCredentials"}


def _path(client_id: str) -> str:
    return f"applications(appId='{client_id}')"


def test_the_registration_lists_its_secrets_without_values(sim: SimHandle) -> None:
    """With Application.Read.All: each secret's end date and hint; secretText is null."""
    world = make_world(sim, roles=["Calendars.Read", "Application.Read.All"])
    sim.control.add_app_secret(world.client_id, "second-secret-value", {"in_s": 86_400})
    with world.graph() as graph:
        answer = graph.get(_path(world.client_id), params=SELECT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"@odata.context", "passwordCredentials", "keyCredentials"}
    hints = sorted((p["hint"], p["endDateTime"] is None) for p in body["passwordCredentials"])
    assert hints == [("sec", False), ("sec", True)]
    assert all(p["secretText"] is None for p in body["passwordCredentials"])
    assert world.secret not in answer.text
    assert "second-secret-value" not in answer.text
    assert body["keyCredentials"] == []


def test_without_the_permission_or_outside_the_home_tenant_it_is_refused(
    sim: SimHandle, world: World
) -> None:
    """Calendars only: 403 Authorization_RequestDenied. Another tenant's token, even with the
    permission: 404 Request_ResourceNotFound. An unknown $select: 400."""
    refused = world.graph().get(_path(world.client_id), params=SELECT)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    stranger = make_world(sim, roles=["Application.Read.All"])
    with stranger.graph() as other:
        elsewhere = other.get(_path(world.client_id), params=SELECT)
        assert elsewhere.status_code == 404
        assert elsewhere.json()["error"]["code"] == "Request_ResourceNotFound"
        missing = other.get(_path(str(uuid.uuid4())))
        assert missing.status_code == 404
        bad = other.get(_path(stranger.client_id), params={"$select": "password"})
        assert bad.status_code == 400
