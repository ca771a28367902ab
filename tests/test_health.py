"""GET /api/health, called as the host calls it: healthy with storage, 503 naming problems."""

from __future__ import annotations

import json
import socket

import azure.functions as func
import pytest

import function_app

TENANT = "11111111-2222-3333-4444-555555555555"


def _call(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> tuple[int, dict[str, object]]:
    for name in (
        "TENANT_IDS",
        "CLIENT_ID",
        "AzureWebJobsStorage",
        "KEY_VAULT_URL",
        "AzureWebJobsStorage__accountName",
        "GRAPH_BASE_URL",
        "CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    request = func.HttpRequest("GET", "http://localhost/api/health", body=b"")
    response = function_app.health(request)
    return response.status_code, json.loads(response.get_body())


@pytest.mark.integration
def test_healthy_with_reachable_storage(monkeypatch: pytest.MonkeyPatch, azurite: str) -> None:
    """Valid settings and a reachable Azurite: 200, version, storage ok; no secret anywhere."""
    status, body = _call(
        monkeypatch,
        {
            "TENANT_IDS": TENANT,
            "CLIENT_ID": TENANT,
            "AzureWebJobsStorage": azurite,
            "SECRET_GRAPH_CLIENT_SECRET": "hunter2-secret",
        },
    )
    assert status == 200, body
    assert body["status"] == "healthy"
    assert body["version"]
    assert body["storage"]["tables"] == body["storage"]["queues"] == "ok"  # type: ignore[index]
    text = json.dumps(body)
    assert "hunter2-secret" not in text
    assert "AccountKey" not in text


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
