"""Every Graph request carries a fresh client-request-id GUID and `User-Agent: calsync/<ver>`,
and each call is handed to the observer (the operations log) with Graph's request-id; an
observer that fails never fails the call."""

from __future__ import annotations

import uuid

import httpx

from shared import __version__
from shared.adapters.graph_httpx import GraphClient
from shared.core import oplog
from shared.core.graph import delta_follow
from shared.core.model import MailboxKey

BASE = "https://graph.test/v1.0"
KEY = MailboxKey("t1", "u1")


class Tokens:
    def token(self, tenant_id: str, *, fresh: bool = False) -> str:
        return "the-token"


def test_headers_are_sent_and_the_call_observed() -> None:
    """Two calls: two different GUIDs; the record has request-id, Retry-After, no token."""
    seen: list[httpx.Request] = []
    records: list[oplog.LogRecord] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"value": []}, headers={"request-id": "rid-1"})

    client = GraphClient(
        httpx.Client(transport=httpx.MockTransport(answer)), BASE, Tokens(), observe=records.append
    )
    link = f"{BASE}/users/u1/calendarView/delta?$deltatoken=opaque-token-value"
    client.send(delta_follow(KEY, link, body_type="html"))
    client.send(delta_follow(KEY, link, body_type="html"))
    ids = [r.headers["client-request-id"] for r in seen]
    assert len(set(ids)) == 2
    assert all(str(uuid.UUID(i)) == i for i in ids)
    assert {r.headers["User-Agent"] for r in seen} == {f"calsync/{__version__}"}
    assert [r.client_request_id for r in records] == ids
    assert records[0].request_id == "rid-1"
    assert records[0].path == "users/u1/calendarView/delta?$deltatoken=***"
    assert (records[0].user_id, records[0].status) == ("u1", 200)


def test_a_failing_observer_never_fails_the_call() -> None:
    """The operations log raising is swallowed: the Graph answer still comes back."""

    def boom(record: oplog.LogRecord) -> None:
        raise RuntimeError("log down")

    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": True}))
    client = GraphClient(httpx.Client(transport=transport), BASE, Tokens(), observe=boom)
    assert client.send(delta_follow(KEY, f"{BASE}/users/u1/x", body_type="html")) == {"ok": True}
