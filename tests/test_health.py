"""GET /api/health, called as the host calls it: healthy with storage, 503 naming problems."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import azure.functions as func
import pytest

import function_app
from graphsim.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from graphsim.testing import SimHandle, run_simulator

TENANT = "11111111-2222-3333-4444-555555555555"


def _call(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> tuple[int, dict[str, object]]:
    for name in (
        "TENANT_IDS",
        "CLIENT_ID",
        "AzureWebJobsStorage",
        "KEY_VAULT_URL",
        "AzureWebJobsStorage__accountName",
        "GRAPH_BASE_URL",
        "AUTHORITY_HOST",
        "CA_BUNDLE",
        "SECRET_GRAPH_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    request = func.HttpRequest("GET", "http://localhost/api/health", body=b"")
    response = function_app.health(request)
    return response.status_code, json.loads(response.get_body())


@pytest.fixture(autouse=True)
def _new_process() -> Iterator[None]:
    """Each test is a fresh process: the token check kept per settings starts empty (the
    secret is not a setting, so two tests' settings can be equal)."""
    from shared.services import health

    health._token_check.cache_clear()
    yield
    health._token_check.cache_clear()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed_demo=True) as handle:
        yield handle


def _sim_env(sim: SimHandle, azurite: str, secret: str) -> dict[str, str]:
    return {
        "TENANT_IDS": DEMO_TENANT_ID,
        "CLIENT_ID": DEMO_CLIENT_ID,
        "AzureWebJobsStorage": azurite,
        "GRAPH_BASE_URL": sim.graph_base_url,
        "AUTHORITY_HOST": sim.authority_host,
        "CA_BUNDLE": sim.ca_pem_path,
        "SECRET_GRAPH_CLIENT_SECRET": secret,
    }


@pytest.mark.integration
def test_healthy_with_reachable_storage(
    monkeypatch: pytest.MonkeyPatch, azurite: str, sim: SimHandle
) -> None:
    """Valid settings, a reachable Azurite and a token for the tenant: 200, version, storage
    ok, the tenant's token ok; no secret anywhere."""
    status, body = _call(monkeypatch, _sim_env(sim, azurite, DEMO_CLIENT_SECRET))
    assert status == 200, body
    assert body["status"] == "healthy"
    assert body["version"]
    assert body["storage"]["tables"] == body["storage"]["queues"] == "ok"  # type: ignore[index]
    assert body["credentials"] == {DEMO_TENANT_ID: {"ok": True}}
    text = json.dumps(body)
    assert DEMO_CLIENT_SECRET not in text
    assert "AccountKey" not in text


@pytest.mark.integration
def test_a_rejected_secret_is_reported_per_tenant_and_cached(
    monkeypatch: pytest.MonkeyPatch, azurite: str, sim: SimHandle
) -> None:
    """A wrong secret: degraded (still 200: notifications keep being queued), the tenant failed
    with AADSTS7000215 and nothing else; a second probe within a minute asks Entra nothing."""
    wrong = "a-wrong-secret-for-health-0123456789"

    def token_requests() -> int:
        by_endpoint = sim.control.counters()["requests_by_endpoint"]
        return sum(v for k, v in by_endpoint.items() if "token" in k)

    status, body = _call(monkeypatch, _sim_env(sim, azurite, wrong))
    assert status == 200, body
    assert body["status"] == "degraded"
    assert body["credentials"] == {DEMO_TENANT_ID: {"ok": False, "aadsts": 7000215}}
    assert wrong not in json.dumps(body)
    before = token_requests()
    assert before > 0
    again_status, again = _call(monkeypatch, _sim_env(sim, azurite, wrong))
    assert (again_status, again["status"], again["credentials"]) == (
        200,
        "degraded",
        body["credentials"],
    )
    assert token_requests() == before


def test_invalid_settings_are_named_with_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing settings: 503 listing each by name, so a readiness probe fails usefully."""
    status, body = _call(monkeypatch, {"CLIENT_ID": "nope"})
    assert status == 503
    problems = " ".join(body["settings"]["problems"])  # type: ignore[index]
    for name in ("TENANT_IDS", "CLIENT_ID", "AzureWebJobsStorage"):
        assert name in problems


def test_unreachable_storage_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage that does not answer: 503 with tables and queues marked unreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    status, body = _call(
        monkeypatch, {"TENANT_IDS": TENANT, "CLIENT_ID": TENANT, "AzureWebJobsStorage": dead}
    )
    assert status == 503
    assert str(body["storage"]["tables"]).startswith("unreachable")  # type: ignore[index]
