"""Graph without sockets: every request builder, every answer `decipher` maps, the 401 policy,
the one page follower, and the error tree's `transient` and `detail_code`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core import graph as g
from shared.core import graph_types as t
from shared.core.graph import GraphAnswer, GraphRequest
from shared.core.model import MailboxKey, Window
from shared.core.paging import MAX_PAGES, iter_delta_pages, iter_pages, iter_subscriptions
from shared.errors import (
    CalsyncError,
    ConfigError,
    DeltaExpired,
    EntraUnreachable,
    GraphError,
    GraphProtocolError,
    GraphServerError,
    GraphUnreachable,
    InputError,
    NotFoundError,
    SecretError,
    StateConflict,
    StorageError,
    SubscriptionGone,
    Throttled,
    TokenError,
)

BASE = "https://graph.microsoft.com/v1.0"
KEY = MailboxKey("tenant-1", "user-1")
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
WINDOW = Window(datetime(2026, 10, 24, tzinfo=UTC), datetime(2027, 11, 20, tzinfo=UTC))
NEXT = f"{BASE}/users/user-1/calendarView/delta?$skiptoken=abc"
DELTA = f"{BASE}/users/user-1/calendarView/delta?$deltatoken=xyz"
IMMUTABLE = 'IdType="ImmutableId"'
PREFER_HTML = 'IdType="ImmutableId", odata.maxpagesize=100, outlook.timezone="UTC"'
PREFER_TEXT = (
    'IdType="ImmutableId", odata.maxpagesize=100, outlook.timezone="UTC", '
    'outlook.body-content-type="text"'
)
EXPIRY = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)

# ---- Builders ---------------------------------------------------------------------------------

BUILT: list[tuple[str, GraphRequest, dict[str, Any]]] = [
    (
        "delta start, html",
        g.delta_start(KEY, WINDOW, body_type="html"),
        {
            "method": "GET",
            "path": "users/user-1/calendarView/delta",
            "tenant_id": "tenant-1",
            "kind": "delta",
            "query": (
                ("startDateTime", "2026-10-24T00:00:00Z"),
                ("endDateTime", "2027-11-20T00:00:00Z"),
            ),
            "headers": (("Prefer", PREFER_HTML),),
            "body": None,
            "mailbox": "user-1",
        },
    ),
    (
        "delta start, text",
        g.delta_start(KEY, WINDOW, body_type="text"),
        {
            "method": "GET",
            "path": "users/user-1/calendarView/delta",
            "tenant_id": "tenant-1",
            "kind": "delta",
            "query": (
                ("startDateTime", "2026-10-24T00:00:00Z"),
                ("endDateTime", "2027-11-20T00:00:00Z"),
            ),
            "headers": (("Prefer", PREFER_TEXT),),
            "body": None,
            "mailbox": "user-1",
        },
    ),
    (
        "delta follow",
        g.delta_follow(KEY, DELTA, body_type="text"),
        {
            "method": "GET",
            "path": DELTA,
            "tenant_id": "tenant-1",
            "kind": "delta",
            "query": (),
            "headers": (("Prefer", PREFER_TEXT),),
            "body": None,
            "mailbox": "user-1",
        },
    ),
    (
        "subscription create",
        g.subscription_create(
            KEY,
            notification_url="https://app.example.net/api/notifications",
            lifecycle_url="https://app.example.net/api/lifecycle",
            expiration=EXPIRY,
            client_state="state-1",
        ),
        {
            "method": "POST",
            "path": "subscriptions",
            "tenant_id": "tenant-1",
            "kind": "subscription",
            "query": (),
            "headers": (("Prefer", IMMUTABLE),),
            "body": {
                "changeType": "created,updated,deleted",
                "notificationUrl": "https://app.example.net/api/notifications",
                "lifecycleNotificationUrl": "https://app.example.net/api/lifecycle",
                "resource": "users/user-1/events",
                "expirationDateTime": "2026-11-24T08:30:00Z",
                "clientState": "state-1",
                "latestSupportedTlsVersion": "v1_2",
            },
            "mailbox": "",
        },
    ),
    (
        "subscription renew",
        g.subscription_renew("tenant-1", "sub-1", EXPIRY),
        {
            "method": "PATCH",
            "path": "subscriptions/sub-1",
            "tenant_id": "tenant-1",
            "kind": "subscription",
            "query": (),
            "headers": (("Prefer", IMMUTABLE),),
            "body": {"expirationDateTime": "2026-11-24T08:30:00Z"},
            "mailbox": "",
        },
    ),
    (
        "subscription reauthorize",
        g.subscription_reauthorize("tenant-1", "sub-1"),
        {
            "method": "POST",
            "path": "subscriptions/sub-1/reauthorize",
            "tenant_id": "tenant-1",
            "kind": "subscription",
            "query": (),
            "headers": (("Prefer", IMMUTABLE),),
            "body": None,
            "mailbox": "",
        },
    ),
    (
        "subscription delete",
        g.subscription_delete("tenant-1", "sub-1"),
        {
            "method": "DELETE",
            "path": "subscriptions/sub-1",
            "tenant_id": "tenant-1",
            "kind": "subscription",
            "query": (),
            "headers": (("Prefer", IMMUTABLE),),
            "body": None,
            "mailbox": "",
        },
    ),
    (
        "subscription list",
        g.subscription_list("tenant-1"),
        {
            "method": "GET",
            "path": "subscriptions",
            "tenant_id": "tenant-1",
            "kind": "subscriptions",
            "query": (),
            "headers": (("Prefer", IMMUTABLE),),
            "body": None,
            "mailbox": "",
        },
    ),
    (
        "user lookup by UPN",
        g.user_lookup("tenant-1", "megan@fabrikam.example"),
        {
            "method": "GET",
            "path": "users/megan@fabrikam.example",
            "tenant_id": "tenant-1",
            "kind": "user",
            "query": (("$select", "id,userPrincipalName,mail"),),
            "headers": (("Prefer", IMMUTABLE),),
            "body": None,
            "mailbox": "",
        },
    ),
    (
        "user lookup, hostile UPN stays one segment",
        g.user_lookup("tenant-1", "o'brien/../x?$top=1#f%@fabrikam.example"),
        {
            "method": "GET",
            "path": "users/o%27brien%2F..%2Fx%3F%24top%3D1%23f%25@fabrikam.example",
            "tenant_id": "tenant-1",
            "kind": "user",
            "query": (("$select", "id,userPrincipalName,mail"),),
            "headers": (("Prefer", IMMUTABLE),),
            "body": None,
            "mailbox": "",
        },
    ),
]


@pytest.mark.parametrize(("name", "request_", "expected"), BUILT, ids=[b[0] for b in BUILT])
def test_builder_makes_the_exact_request(
    name: str, request_: GraphRequest, expected: dict[str, Any]
) -> None:
    """Each builder gives exactly the method, path, query, headers, body and sender facts."""
    got = {field: getattr(request_, field) for field in expected}
    assert got == expected
    assert not any(k.lower() == "authorization" for k, _ in request_.headers)


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("subscriptions", f"{BASE}/subscriptions"),
        ("/users/u", f"{BASE}/users/u"),
        (NEXT, NEXT),
        (
            "https://GRAPH.microsoft.com/v1.0/x?$skiptoken=1",
            "https://GRAPH.microsoft.com/v1.0/x?$skiptoken=1",
        ),
    ],
)
def test_url_joins_relative_paths_and_keeps_links(path: str, url: str) -> None:
    """A relative path is joined to the base (with or without its slash); a link is kept."""
    assert GraphRequest("GET", path, "t", "delta").url(BASE + "/") == url


@pytest.mark.parametrize(
    "link", ["https://evil.example/v1.0/x", "http://graph.microsoft.com/v1.0/x"]
)
def test_a_link_off_graphs_origin_is_not_followed(link: str) -> None:
    """A next/delta link to another origin raises instead of carrying our token there."""
    with pytest.raises(GraphProtocolError, match="not followed") as info:
        GraphRequest("GET", link, "t", "delta").url(BASE)
    assert not info.value.transient


def test_describe_never_shows_the_query() -> None:
    """Error messages name method and path, not the delta/skip token in the link's query."""
    assert g.delta_follow(KEY, DELTA, body_type="html").describe() == (
        "GET /v1.0/users/user-1/calendarView/delta"
    )
    assert g.subscription_list("t").describe() == "GET subscriptions"


@pytest.mark.parametrize(
    "headers",
    [(), (("Prefer", "odata.maxpagesize=5"),), (("If-Match", 'W/"ck"'),)],
    ids=["none", "other preference", "other header"],
)
def test_every_request_asks_for_immutable_ids(headers: tuple[tuple[str, str], ...]) -> None:
    """A request built with any headers has one Prefer, carrying IdType="ImmutableId" first."""
    request_ = GraphRequest("GET", "users/u/events/e", "t", "calendar", headers=headers)
    prefer = [v for k, v in request_.headers if k == "Prefer"]
    assert len(prefer) == 1
    assert prefer[0].startswith(IMMUTABLE)
    assert [h for h in request_.headers if h[0] != "Prefer"] == [
        h for h in headers if h[0] != "Prefer"
    ]


def test_follow_keeps_headers_and_sender_but_not_the_query() -> None:
    """Following a link from the first delta page is exactly the delta-follow request."""
    first = g.delta_start(KEY, WINDOW, body_type="text")
    assert first.follow(NEXT) == g.delta_follow(KEY, NEXT, body_type="text")


# ---- decipher ---------------------------------------------------------------------------------

USER = g.user_lookup("tenant-1", "megan@fabrikam.example")
SUB = g.subscription_renew("tenant-1", "sub-1", EXPIRY)
DELTA_REQ = g.delta_follow(KEY, DELTA, body_type="html")


def _error(code: str, message: str = "words") -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _decipher(
    request: GraphRequest, status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> Any:
    return g.decipher(request, status, headers or {}, body, now=NOW)


@pytest.mark.parametrize(
    ("status", "body", "result"),
    [
        (200, b'{"id": "x"}', {"id": "x"}),
        (201, b'{"id": "x"}', {"id": "x"}),
        (200, b"", None),
        (200, b"  \n", None),
        (204, b"", None),
        (204, b"ignored", None),
        (202, b"[1, 2]", [1, 2]),
    ],
)
def test_a_2xx_answer_is_its_json_or_none(status: int, body: bytes, result: Any) -> None:
    """2xx gives the parsed JSON; 204 or an empty body gives None."""
    assert _decipher(USER, status, body) == result


@pytest.mark.parametrize("body", [b"<html>hello</html>", b"\xff\xfe", b'{"id": '])
def test_a_2xx_answer_that_is_not_json_is_a_protocol_error(body: bytes) -> None:
    """A 2xx whose body is not JSON is a GraphProtocolError naming the content type."""
    with pytest.raises(GraphProtocolError) as info:
        _decipher(USER, 200, body, {"content-type": "text/html"})
    assert (info.value.status, info.value.graph_code) == (200, "NonJsonBody")
    assert "not JSON (text/html)" in info.value.message
    assert not info.value.transient


def test_401_deciphers_to_a_token_error() -> None:
    """A 401 (after the retry the exchange allows) is TokenError 'unauthorized' for the tenant."""
    with pytest.raises(TokenError) as info:
        _decipher(USER, 401, _error("InvalidAuthenticationToken"))
    assert info.value.error == "unauthorized"
    assert "tenant tenant-1 (401)" in info.value.message
    assert not info.value.transient


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        ("7", 7.0),
        ("2.5", 2.5),
        (" 0.25 ", 0.25),
        ("0", 0.0),
        ("-3", 0.0),
        ("Sat, 21 Nov 2026 09:00:30 GMT", 30.0),
        ("Sat, 21 Nov 2026 10:00:00 GMT", 3600.0),
        ("Sat, 21 Nov 2026 08:59:00 GMT", 0.0),  # a date in the past
        ("Fri, 01 Jan 1999 00:00:00 GMT", 0.0),
        ("soon", 0.0),
        ("", 0.0),
        (None, 0.0),
        ("inf", 0.0),
        ("nan", 0.0),
        ("Sat, 99 Nov 2026 09:00:30 GMT", 0.0),
    ],
)
@pytest.mark.parametrize("status", [429, 503, 504])
def test_throttling_carries_retry_after_in_both_forms(
    status: int, retry_after: str | None, seconds: float
) -> None:
    """429/503/504 → Throttled; Retry-After as seconds (fractional) or an HTTP-date from now."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    with pytest.raises(Throttled) as info:
        _decipher(DELTA_REQ, status, _error("ApplicationThrottled"), headers)
    assert info.value.retry_after == seconds
    assert (info.value.status, info.value.graph_code) == (status, "ApplicationThrottled")
    assert info.value.transient


def test_retry_after_header_name_is_case_insensitive() -> None:
    """Headers are matched without regard to case (HTTP/2 sends them lower case)."""
    with pytest.raises(Throttled) as info:
        _decipher(USER, 429, b"", {"retry-after": "4"})
    assert info.value.retry_after == 4.0
    assert info.value.graph_code == "TooManyRequests"  # no error body: a code of our own
    assert "Too Many Requests" in info.value.message


def test_retry_after_date_counts_from_the_given_now() -> None:
    """The HTTP-date form is relative to `now` (the caller's clock), not to the wall clock."""
    later = NOW + timedelta(seconds=10)
    assert g.parse_retry_after("Sat, 21 Nov 2026 09:00:30 GMT", later) == 20.0


@pytest.mark.parametrize(
    ("request_", "status", "body", "error", "code"),
    [
        (DELTA_REQ, 410, _error("SyncStateNotFound"), DeltaExpired, "SyncStateNotFound"),
        (DELTA_REQ, 410, b"", DeltaExpired, ""),
        (DELTA_REQ, 400, _error("resyncRequired"), DeltaExpired, "resyncRequired"),
        (DELTA_REQ, 400, _error("fullSyncRequired"), DeltaExpired, "fullSyncRequired"),
        (DELTA_REQ, 400, _error("SyncStateInvalid"), DeltaExpired, "SyncStateInvalid"),
        (SUB, 404, _error("ResourceNotFound"), SubscriptionGone, "ResourceNotFound"),
        (g.subscription_delete("t", "s"), 404, b"", SubscriptionGone, ""),
        (g.subscription_reauthorize("t", "s"), 404, b"", SubscriptionGone, ""),
        (DELTA_REQ, 404, _error("ErrorItemNotFound"), GraphError, "ErrorItemNotFound"),
        (g.subscription_list("t"), 404, b"", GraphError, ""),
        (
            USER,
            403,
            _error("Authorization_RequestDenied"),
            GraphError,
            "Authorization_RequestDenied",
        ),
        (USER, 400, _error("BadRequest"), GraphError, "BadRequest"),
        (USER, 500, _error("InternalServerError"), GraphServerError, "InternalServerError"),
        (USER, 502, b"", GraphServerError, ""),
        (USER, 599, b"", GraphServerError, ""),
    ],
)
def test_error_statuses_map_to_the_project_error(
    request_: GraphRequest, status: int, body: bytes, error: type[GraphError], code: str
) -> None:
    """410 and the resync codes → DeltaExpired; 404 on a subscription → SubscriptionGone, on
    other kinds a plain GraphError; other 5xx → GraphServerError; other 4xx → GraphError."""
    with pytest.raises(GraphError) as info:
        _decipher(request_, status, body)
    assert type(info.value) is error
    assert (info.value.status, info.value.graph_code) == (status, code)
    assert info.value.transient is (status >= 500)


def test_404_on_a_user_is_not_found_naming_the_user() -> None:
    """A user lookup's 404 is NotFoundError naming the user as given (unquoted) and tenant."""
    request = g.user_lookup("tenant-1", "o'brien@fabrikam.example")
    with pytest.raises(NotFoundError) as info:
        _decipher(request, 404, _error("Request_ResourceNotFound"))
    assert info.value.message == (
        'Graph has no user "o\'brien@fabrikam.example" in tenant tenant-1'
    )


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (_error("BadRequest", "Invalid filter"), "BadRequest", "Invalid filter"),
        (b'{"error": {"code": "BadRequest"}}', "BadRequest", "Bad Request"),
        (b'{"error": {"message": "just words"}}', "", "just words"),
        (b'{"error": "invalid_request"}', "", "Bad Request"),
        (b'{"error": {"code": 42}}', "42", "Bad Request"),
        (b'["not", "an", "object"]', "", "Bad Request"),
        (b"<html>proxy error</html>", "", "Bad Request"),
        (b"\xff", "", "Bad Request"),
        (b"", "", "Bad Request"),
    ],
)
def test_error_bodies_of_any_shape_give_a_code_and_message(
    body: bytes, code: str, message: str
) -> None:
    """Graph's error.code/message when present; a non-JSON or absent body: the status phrase."""
    with pytest.raises(GraphError) as info:
        _decipher(USER, 400, body)
    assert info.value.graph_code == code
    assert (
        info.value.message
        == f"Graph GET users/megan@fabrikam.example answered 400 {code}: {message}"
    )


def test_an_unknown_status_has_a_phrase_too() -> None:
    """A status the stdlib does not name still gives a readable message."""
    with pytest.raises(GraphError, match="HTTP 499"):
        _decipher(USER, 499, b"")


# ---- The 401 policy (exchange) ----------------------------------------------------------------


def _drive(request: GraphRequest, statuses: list[int]) -> tuple[list[bool], Any]:
    """Drive `exchange` as an adapter would; returns (fresh_token per send, result)."""
    flow = g.exchange(request)
    sent: list[bool] = []
    attempt = next(flow)
    answers = iter(statuses)
    while True:
        sent.append(attempt.fresh_token)
        status = next(answers)
        body = b'{"id": "u"}' if status == 200 else b""
        try:
            attempt = flow.send(GraphAnswer(status, {}, body, NOW))
        except StopIteration as done:
            return sent, done.value


@pytest.mark.parametrize(
    ("statuses", "sent", "result"),
    [
        ([200], [False], {"id": "u"}),
        ([401, 200], [False, True], {"id": "u"}),
        ([204], [False], None),
    ],
)
def test_exchange_retries_a_401_once_with_a_fresh_token(
    statuses: list[int], sent: list[bool], result: Any
) -> None:
    """First send with the cached token; after a 401 exactly one more with a fresh one."""
    assert _drive(USER, statuses) == (sent, result)


def test_a_second_401_is_a_token_error() -> None:
    """401 twice: TokenError after two sends, the second with a fresh token; no third send."""
    sent: list[bool] = []
    flow = g.exchange(USER)
    attempt = next(flow)
    sent.append(attempt.fresh_token)
    attempt = flow.send(GraphAnswer(401, {}, b"", NOW))
    sent.append(attempt.fresh_token)
    with pytest.raises(TokenError, match="401"):
        flow.send(GraphAnswer(401, {}, b"", NOW))
    assert sent == [False, True]


def test_exchange_deciphers_errors_of_the_retried_answer() -> None:
    """A 401 then a 429: Throttled with the Retry-After of the second answer, as of its time."""
    flow = g.exchange(USER)
    next(flow)
    flow.send(GraphAnswer(401, {}, b"", NOW))
    with pytest.raises(Throttled) as info:
        flow.send(GraphAnswer(429, {"Retry-After": "Sat, 21 Nov 2026 09:01:00 GMT"}, b"", NOW))
    assert info.value.retry_after == 60.0


def test_an_error_carries_graphs_request_id() -> None:
    """The error of an answer keeps its `request-id` header (any case), for support and logs;
    an answer without one leaves it empty."""
    flow = g.exchange(USER)
    next(flow)
    with pytest.raises(GraphError) as info:
        flow.send(GraphAnswer(503, {"Request-Id": "0d3c-rq"}, b"", NOW))
    assert info.value.request_id == "0d3c-rq"
    flow = g.exchange(USER)
    next(flow)
    with pytest.raises(GraphError) as info:
        flow.send(GraphAnswer(500, {}, b"", NOW))
    assert info.value.request_id == ""


# ---- Typed results ----------------------------------------------------------------------------


def test_decode_user_and_subscription() -> None:
    """User and subscription answers become typed values; missing optional fields are ''."""
    assert t.decode_user({"id": "U1", "userPrincipalName": "m@f.example", "mail": None}) == (
        t.GraphUser("U1", "m@f.example", "")
    )
    sub = t.decode_subscription(
        {
            "id": "s1",
            "resource": "users/u/events",
            "notificationUrl": "https://app/api/notifications",
            "expirationDateTime": "2026-11-24T08:30:00.0000000Z",
        }
    )
    assert sub == t.GraphSubscription(
        "s1", "users/u/events", "https://app/api/notifications", EXPIRY
    )
    assert t.decode_subscription({"id": "s2"}) == t.GraphSubscription("s2", "", "", None)


@pytest.mark.parametrize("payload", [None, [], {}, {"id": 7}, {"id": ""}])
def test_answers_without_an_id_are_protocol_errors(payload: Any) -> None:
    """A user or subscription answer without a string id is a GraphProtocolError."""
    for decode in (t.decode_user, t.decode_subscription):
        with pytest.raises(GraphProtocolError, match="no string id"):
            decode(payload)


# ---- The page follower ------------------------------------------------------------------------


class FakeGraph:
    """Answers requests from a dict of path → payload and records what was sent."""

    def __init__(self, pages: dict[str, Any]) -> None:
        self.pages = pages
        self.sent: list[GraphRequest] = []

    def send(self, request: GraphRequest) -> Any:
        self.sent.append(request)
        return self.pages[request.path]


def _event(n: int) -> dict[str, Any]:
    return {"id": f"e{n}", "subject": f"Event {n}"}


def test_delta_pages_are_followed_to_the_delta_link() -> None:
    """Pages follow @odata.nextLink with the same Prefer headers until @odata.deltaLink."""
    first = g.delta_start(KEY, WINDOW, body_type="text")
    fake = FakeGraph(
        {
            first.path: {"value": [_event(1)], "@odata.nextLink": NEXT},
            NEXT: {
                "value": [{"id": "e1", "@removed": {"reason": "deleted"}}],
                "@odata.deltaLink": DELTA,
            },
        }
    )
    pages = list(iter_delta_pages(first, fake.send))
    assert [p.next_link for p in pages] == [NEXT, None]
    assert [p.delta_link for p in pages] == [None, DELTA]
    assert [i.event_id for p in pages for i in p.items] == ["e1", "e1"]
    assert fake.sent == [first, g.delta_follow(KEY, NEXT, body_type="text")]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"value": []}, "neither"),
        ({"value": [], "@odata.nextLink": NEXT, "@odata.deltaLink": DELTA}, "both"),
        ({"@odata.deltaLink": DELTA}, "no `value` list"),
        (None, "no `value` list"),
        ({"value": [], "@odata.nextLink": "/relative"}, "absolute URL"),
    ],
)
def test_a_malformed_delta_page_stops_the_follower(payload: Any, problem: str) -> None:
    """A malformed page raises MalformedDeltaPage (status 200, not transient); nothing more is
    sent after it."""
    first = g.delta_start(KEY, WINDOW, body_type="html")
    fake = FakeGraph({first.path: {"value": [], "@odata.nextLink": NEXT}, NEXT: payload})
    with pytest.raises(GraphProtocolError, match=problem) as info:
        list(iter_delta_pages(first, fake.send))
    assert (info.value.status, info.value.graph_code) == (200, "MalformedDeltaPage")
    assert not info.value.transient
    assert len(fake.sent) == 2


def test_a_runaway_chain_stops_after_max_pages() -> None:
    """A next link that never ends raises RunawayPaging after exactly max_pages sends."""
    first = g.delta_start(KEY, WINDOW, body_type="html")
    fake = FakeGraph({first.path: {"value": [], "@odata.nextLink": NEXT}})
    fake.pages[NEXT] = {"value": [], "@odata.nextLink": NEXT}
    with pytest.raises(GraphProtocolError, match="exceeded 5 pages") as info:
        list(iter_delta_pages(first, fake.send, max_pages=5))
    assert info.value.graph_code == "RunawayPaging"
    assert "user-1" in info.value.message
    assert not info.value.transient
    assert len(fake.sent) == 5
    assert MAX_PAGES == 10_000


def test_exactly_max_pages_is_still_fine() -> None:
    """A chain of exactly max_pages pages ends normally."""
    first = g.delta_start(KEY, WINDOW, body_type="html")
    fake = FakeGraph(
        {
            first.path: {"value": [], "@odata.nextLink": NEXT},
            NEXT: {"value": [], "@odata.deltaLink": DELTA},
        }
    )
    assert len(list(iter_delta_pages(first, fake.send, max_pages=2))) == 2


def _sub(n: int) -> dict[str, Any]:
    return {"id": f"s{n}", "resource": f"users/u{n}/events", "notificationUrl": "https://app/n"}


def test_the_subscription_list_is_followed_until_no_next_link() -> None:
    """GET /subscriptions pages are followed by @odata.nextLink until it is absent."""
    first = g.subscription_list("tenant-1")
    page2 = f"{BASE}/subscriptions?$skiptoken=2"
    fake = FakeGraph(
        {
            "subscriptions": {"value": [_sub(1), _sub(2)], "@odata.nextLink": page2},
            page2: {"value": [_sub(3)]},
        }
    )
    subs = list(iter_subscriptions(first, fake.send))
    assert [s.id for s in subs] == ["s1", "s2", "s3"]
    assert subs[2] == t.GraphSubscription("s3", "users/u3/events", "https://app/n", None)
    assert [r.path for r in fake.sent] == ["subscriptions", page2]
    assert all(r.tenant_id == "tenant-1" and r.kind == "subscriptions" for r in fake.sent)


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"value": {}}, {"value": [_sub(1)], "@odata.nextLink": 5}, {"value": ["s1"]}],
)
def test_a_malformed_list_page_is_a_protocol_error(payload: Any) -> None:
    """A list page without a `value` list, with a bad next link or bad items is not guessed at."""
    fake = FakeGraph({"subscriptions": payload})
    with pytest.raises(GraphProtocolError):
        list(iter_subscriptions(g.subscription_list("t"), fake.send))


def test_iter_pages_is_lazy() -> None:
    """The follower sends the next request only when the next page is asked for."""
    first = g.subscription_list("t")
    fake = FakeGraph(
        {
            "subscriptions": {"value": [], "@odata.nextLink": f"{BASE}/s2"},
            f"{BASE}/s2": {"value": []},
        }
    )
    pages: Iterator[t.SubscriptionPage] = iter_pages(first, fake.send, t.decode_subscription_page)
    next(pages)
    assert len(fake.sent) == 1


# ---- The error tree: transient and detail_code ------------------------------------------------

ERRORS: list[tuple[Callable[[], CalsyncError], bool, str]] = [
    (lambda: ConfigError(["x"]), False, "config_error"),
    (lambda: SecretError("x"), True, "secret_unavailable"),
    (lambda: InputError("x"), False, "bad_request"),
    (lambda: NotFoundError("x"), False, "not_found"),
    (lambda: StorageError("x"), True, "storage_unavailable"),
    (lambda: StateConflict("x"), False, "state_conflict"),
    (lambda: TokenError("x", aadsts=7000215, error="invalid_client"), False, "7000215"),
    (lambda: TokenError("x", error="unauthorized"), False, "unauthorized"),
    (lambda: TokenError("x"), False, "token_error"),
    (lambda: EntraUnreachable("x", error="network_error"), True, "network_error"),
    (lambda: GraphError("x", status=403, graph_code="Forbidden"), False, "Forbidden"),
    (lambda: GraphError("x", status=400), False, "graph_error"),
    (lambda: GraphServerError("x", status=500), True, "graph_server_error"),
    (lambda: GraphUnreachable("x"), True, "transport_error"),
    (lambda: Throttled("x", status=429, graph_code="", retry_after=1), True, "throttled"),
    (
        lambda: DeltaExpired("x", status=410, graph_code="SyncStateNotFound"),
        False,
        "SyncStateNotFound",
    ),
    (lambda: SubscriptionGone("x", status=404), False, "subscription_gone"),
    (
        lambda: GraphProtocolError("x", status=None, graph_code="RunawayPaging"),
        False,
        "RunawayPaging",
    ),
]


@pytest.mark.parametrize(("make", "transient", "detail"), ERRORS)
def test_every_error_says_if_it_is_transient_and_its_detail_code(
    make: Callable[[], CalsyncError], transient: bool, detail: str
) -> None:
    """`transient` is True exactly for throttling, Graph 5xx/unreachable, Entra unreachable and
    storage; `detail_code` is Graph's code, else the AADSTS code, else Entra's error, else ours."""
    error = make()
    assert error.transient is transient
    assert error.detail_code == detail
