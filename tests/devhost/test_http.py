"""The dev host's HTTP path, over real sockets: routes, methods, auth levels, bodies, errors."""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import trustme
from azure.data.tables import TableClient

from devhost import DevHost

from . import sample_app
from .conftest import FUNCTION_KEY, MASTER_KEY
from .helpers import table_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(devhost: DevHost) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=devhost.url, timeout=10, trust_env=False) as c:
        yield c


def test_route_params_query_and_url_reach_the_function(client: httpx.Client) -> None:
    """A GET on /api/anon/42?x=1 gives the function the int route param, query and full URL."""
    r = client.get("/api/anon/42", params={"x": "1"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["method"] == "GET"
    assert doc["route_params"] == {"item_id": "42"}
    assert doc["params"] == {"x": "1"}
    assert doc["url"] == f"{str(client.base_url).rstrip('/')}/api/anon/42?x=1"


def test_body_bytes_and_headers_pass_through_untouched(client: httpx.Client) -> None:
    """A non-JSON POST body arrives byte for byte; repeated headers are joined with ', '."""
    raw = b"not json {\xff"
    r = client.post(
        "/api/anon/7",
        content=raw,
        headers=[("content-type", "text/plain"), ("x-multi", "a"), ("x-multi", "b")],
    )
    assert r.status_code == 200
    doc = r.json()
    assert doc["body"].encode("latin-1") == raw
    assert doc["content_type"] == "text/plain"
    assert doc["x_multi"] == "a, b"


def test_unknown_route_is_404_with_a_problem_body(client: httpx.Client) -> None:
    """A path no function serves gets 404 and an application/problem+json body naming it."""
    r = client.get("/api/nothing/here")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404
    assert "/api/nothing/here" in r.json()["detail"]


def test_int_constraint_mismatch_is_404(client: httpx.Client) -> None:
    """`{item_id:int}` does not match a non-number, so /api/anon/abc is not served."""
    assert client.get("/api/anon/abc").status_code == 404


def test_wrong_method_is_405_with_allow(client: httpx.Client) -> None:
    """DELETE on a GET/POST route gets 405, an Allow header and a problem body."""
    r = client.delete("/api/anon/1")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"
    assert r.json()["title"] == "Method Not Allowed"


@pytest.mark.parametrize(
    ("path", "key", "header", "status"),
    [
        ("/api/keyed/a", None, False, 401),
        ("/api/keyed/a", "wrong", False, 401),
        ("/api/keyed/a", FUNCTION_KEY, False, 200),
        ("/api/keyed/a", FUNCTION_KEY, True, 200),
        ("/api/keyed/a", MASTER_KEY, True, 200),
        ("/api/admin/a", FUNCTION_KEY, True, 401),
        ("/api/admin/a", FUNCTION_KEY, False, 401),
        ("/api/admin/a", MASTER_KEY, False, 200),
        ("/api/admin/a", None, False, 401),
    ],
)
def test_auth_levels(
    client: httpx.Client, path: str, key: str | None, header: bool, status: int
) -> None:
    """function: function or master key, as code or x-functions-key; admin: master key only."""
    headers = {"x-functions-key": key} if key and header else {}
    params = {"code": key} if key and not header else {}
    r = client.get(path, headers=headers, params=params)
    assert r.status_code == status
    if status == 401:
        assert r.headers["content-type"] == "application/problem+json"
        assert FUNCTION_KEY not in r.text
        assert MASTER_KEY not in r.text


def test_catch_all_and_optional_parameters(client: httpx.Client) -> None:
    """{*path} takes the rest of the path (or nothing); {name?} may be absent."""
    assert client.put("/api/files/a/b/c.txt").json()["route_params"] == {"path": "a/b/c.txt"}
    assert client.get("/api/files").json()["route_params"] == {}
    assert client.get("/api/opt/bob").json()["route_params"] == {"name": "bob"}
    assert client.get("/api/opt").json()["route_params"] == {}
    assert client.get("/api/opt/a%20b%40c").json()["route_params"] == {"name": "a b@c"}


def test_literal_route_wins_over_parameter(client: httpx.Client) -> None:
    """/api/opt/special is served by the literal route, not by opt/{name?}."""
    r = client.get("/api/opt/special")
    assert r.text == "special"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-custom"] == "yes"


def test_async_function_gets_its_context(client: httpx.Client) -> None:
    """An async function is awaited and its `context` carries the declared function name."""
    doc = client.get("/api/async/1").json()
    assert doc["function_name"] == "async_context"
    assert len(doc["invocation_id"]) == 36


def test_function_that_raises_is_500_problem(client: httpx.Client) -> None:
    """An exception in the function becomes a 500 problem body naming the function."""
    r = client.get("/api/boom")
    assert r.status_code == 500
    assert r.json()["detail"] == "boom raised RuntimeError"


def test_https_with_a_given_certificate(azurite: str, tmp_path) -> None:
    """With a cert and key the dev host serves https that a client trusting the CA accepts."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    ca.cert_pem.write_to_path(ca_file)
    settings = {"AzureWebJobsStorage": azurite}
    app = _http_only_app()
    with DevHost(app, settings, certfile=str(cert_file), keyfile=str(key_file)) as host:
        assert host.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(ca_file))
        r = httpx.get(f"{host.url}/api/hello", verify=context, trust_env=False)
    assert r.status_code == 200
    assert json.loads(r.text) == {"hello": "https"}


def _tls(tmp_path, https: bool) -> tuple[dict[str, str], ssl.SSLContext | bool]:
    """DevHost certificate arguments and the client's `verify` for http or https."""
    if not https:
        return {}, False
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "c.pem")
    cert.private_key_pem.write_to_path(tmp_path / "k.pem")
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    return {"certfile": str(tmp_path / "c.pem"), "keyfile": str(tmp_path / "k.pem")}, verify


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_stop_is_prompt_while_a_keep_alive_client_stays_connected(
    azurite: str, tmp_path, caplog: pytest.LogCaptureFixture, https: bool
) -> None:
    """stop() returns within 2 s with an idle keep-alive connection open, logging no timeout."""
    tls, verify = _tls(tmp_path, https)
    host = DevHost(_http_only_app(), {"AzureWebJobsStorage": azurite}, **tls).start()
    try:
        with httpx.Client(verify=verify, trust_env=False, timeout=10) as client:
            r = client.get(f"{host.url}/api/hello")
            assert r.status_code == 200
            assert r.headers.get("connection", "keep-alive").lower() == "keep-alive"
            started = time.monotonic()
            host.stop()
            took = time.monotonic() - started
    finally:
        host.stop()
    assert took < 2, f"stop() took {took:.1f} s"
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == []


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_stop_lets_a_request_in_flight_on_a_keep_alive_connection_finish(
    azurite: str, tmp_path, caplog: pytest.LogCaptureFixture, https: bool
) -> None:
    """A request running when stop() is called still gets its whole answer; stop() stays prompt."""
    import azure.functions as func

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    entered = threading.Event()

    @app.route(route="slow", methods=["GET"])
    def slow(req: func.HttpRequest) -> func.HttpResponse:
        entered.set()
        time.sleep(0.5)  # the work in flight, not a synchronisation
        return func.HttpResponse("done")

    tls, verify = _tls(tmp_path, https)
    host = DevHost(app, {"AzureWebJobsStorage": azurite}, **tls).start()
    answers: list[httpx.Response] = []
    try:
        with httpx.Client(verify=verify, trust_env=False, timeout=10) as client:
            request = threading.Thread(
                target=lambda: answers.append(client.get(f"{host.url}/api/slow"))
            )
            request.start()
            assert entered.wait(10)
            started = time.monotonic()
            host.stop()
            took = time.monotonic() - started
            request.join(10)
    finally:
        host.stop()
    assert [(r.status_code, r.text, r.headers["connection"]) for r in answers] == [
        (200, "done", "close")
    ]
    assert took < 2, f"stop() took {took:.1f} s"
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == []


def _http_only_app():
    import azure.functions as func

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="hello", methods=["GET"])
    def hello(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse('{"hello": "https"}', mimetype="application/json")

    return app


def test_sample_app_is_the_one_served(devhost: DevHost) -> None:
    """The dev host serves exactly the functions the app declares, under their declared names."""
    assert [s.name for s in devhost.specs] == [
        "anon_item",
        "keyed",
        "admin_only",
        "files",
        "optional",
        "special",
        "async_context",
        "boom",
        "enqueue",
        "tick",
        "on_startup",
        "yearly",
        "work",
    ]


def test_admin_api_runs_a_timer_function_now(client: httpx.Client, azurite: str) -> None:
    """POST /admin/functions/<timer> with the master key runs it and answers 202 once it ran."""
    ticks = TableClient.from_connection_string(azurite, sample_app.TICKS)
    before = len(table_rows(ticks, "PartitionKey eq 'yearly'"))
    r = client.post(
        "/admin/functions/yearly", json={"input": ""}, headers={"x-functions-key": MASTER_KEY}
    )
    assert r.status_code == 202
    rows = table_rows(ticks, "PartitionKey eq 'yearly'")
    assert len(rows) == before + 1
    assert rows[-1]["past_due"] is False


def test_admin_api_gives_a_queue_function_its_input(client: httpx.Client, azurite: str) -> None:
    """A queue function run by the admin API gets `input` as its body; a failed run is still 202."""
    attempts = TableClient.from_connection_string(azurite, sample_app.ATTEMPTS)
    body = json.dumps({"admin": "run"})
    r = client.post("/admin/functions/WORK", json={"input": body}, params={"code": MASTER_KEY})
    assert r.status_code == 202
    assert [x["RowKey"] for x in table_rows(attempts, "RowKey eq '000'") if x["body"] == body]
    failing = client.post(
        "/admin/functions/work", json={"input": "not json"}, params={"code": MASTER_KEY}
    )
    assert failing.status_code == 202


@pytest.mark.parametrize(
    ("method", "name", "key", "body", "status"),
    [
        ("POST", "yearly", FUNCTION_KEY, {"input": ""}, 401),
        ("POST", "yearly", None, {"input": ""}, 401),
        ("GET", "yearly", MASTER_KEY, None, 405),
        ("POST", "nosuch", MASTER_KEY, {"input": ""}, 404),
        ("POST", "keyed", MASTER_KEY, {"input": ""}, 400),
        ("POST", "yearly", MASTER_KEY, {"input": 5}, 400),
    ],
)
def test_admin_api_refusals(
    client: httpx.Client, method: str, name: str, key: str | None, body: object, status: int
) -> None:
    """The admin API wants POST, the master key, a timer or queue function and a string input."""
    headers = {"x-functions-key": key} if key else {}
    r = client.request(method, f"/admin/functions/{name}", json=body, headers=headers)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
