"""Graph refuses missing, bad, expired, wrong-tenant and under-privileged tokens (Graph's shape)."""

from __future__ import annotations

import httpx
import pytest
from simworld import World, make_world, token_for

from graphsim.testing import SimHandle

pytestmark = pytest.mark.integration


def error_of(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return str(error["message"])


def calendar(world: World) -> str:
    return f"users/{world.user_id}/calendar"


def test_missing_token_is_401(world: World) -> None:
    """No Authorization header: 401 InvalidAuthenticationToken, "Access token is empty."."""
    response = httpx.get(
        f"{world.sim.graph_base_url}/{calendar(world)}", verify=world.sim.ssl_context()
    )
    assert error_of(response, 401, "InvalidAuthenticationToken") == "Access token is empty."


def test_garbage_token_is_401(world: World) -> None:
    """A token the simulator did not sign: 401."""
    error_of(
        world.graph("eyJhbGciOiJub25lIn0.e30.").get(calendar(world)),
        401,
        "InvalidAuthenticationToken",
    )


def test_key_vault_token_is_401_at_graph(world: World) -> None:
    """A token for another audience (the vault) is refused by Graph."""
    token = world.token(world.sim.key_vault_scope)
    message = error_of(world.graph(token).get(calendar(world)), 401, "InvalidAuthenticationToken")
    assert "audience" in message


def test_expired_token_is_401(world: World) -> None:
    """A token past exp on the virtual clock is 401 InvalidAuthenticationToken (expired)."""
    graph = world.graph()
    assert graph.get(calendar(world)).status_code == 200
    world.sim.control.advance(3600)
    message = error_of(graph.get(calendar(world)), 401, "InvalidAuthenticationToken")
    assert "expired" in message


def test_token_of_another_tenant_is_403(world: World, sim: SimHandle) -> None:
    """A valid token of tenant B reading a mailbox of tenant A: 403 ErrorAccessDenied."""
    other = make_world(sim)
    token = token_for(sim, other.tenant_id, other.client_id, other.secret)
    error_of(world.graph(token).get(calendar(world)), 403, "ErrorAccessDenied")


@pytest.mark.parametrize(
    ("roles", "method", "rest", "code"),
    [
        (["Calendars.Read"], "POST", "/events", "ErrorAccessDenied"),
        (["User.Read.All"], "GET", "/calendarView/delta", "ErrorAccessDenied"),
        (["Calendars.Read"], "GET", "", "Authorization_RequestDenied"),
    ],
)
def test_under_privileged_token_is_403(
    world: World, roles: list[str], method: str, rest: str, code: str
) -> None:
    """Writes need Calendars.ReadWrite, reads Calendars.Read, users a User.Read* role: else 403,
    in Exchange's words for mailbox data and the directory's for users."""
    client_id, secret = world.new_app(roles)
    graph = world.graph(token_for(world.sim, world.tenant_id, client_id, secret))
    response = graph.request(
        method, f"users/{world.user_id}{rest}", json={} if method == "POST" else None
    )
    error_of(response, 403, code)


def test_read_permission_suffices_for_reads(world: World) -> None:
    """Calendars.Read alone reads calendarView."""
    client_id, secret = world.new_app(["Calendars.Read"])
    graph = world.graph(token_for(world.sim, world.tenant_id, client_id, secret))
    response = graph.get(
        f"users/{world.user_id}/calendarView",
        params={"startDateTime": "2027-01-01T00:00:00Z", "endDateTime": "2027-01-02T00:00:00Z"},
    )
    assert response.status_code == 200
