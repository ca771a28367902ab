"""Pure: Microsoft Graph without I/O. Requests are built as frozen `GraphRequest` values, one
builder per call the product makes (each cites the page it follows), and every answer is turned
into its result or a project error by `decipher`. The one policy around a send, "a 401 is retried
once with a fresh token", is the generator `exchange`, which an adapter drives (httpx's auth-flow
style): the adapter only gets tokens, holds the concurrency slot and moves bytes. Answers become
typed values in `graph_types`; paged calls are followed by `paging`.

https://learn.microsoft.com/graph/errors
"""

from __future__ import annotations

import json
import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from shared.core.model import BodyType, MailboxKey, Window
from shared.core.times import iso_utc
from shared.errors import (
    CalsyncError,
    DeltaExpired,
    GraphError,
    GraphProtocolError,
    GraphServerError,
    InputError,
    NotFoundError,
    SubscriptionGone,
    Throttled,
    TokenError,
    WriteConflict,
)

#: What a request addresses, so that a 404 means the right thing.
Kind = Literal[
    "delta", "subscription", "subscriptions", "user", "calendar", "event", "application", "raw"
]

PAGE_SIZE = 100  # Outlook's largest page for calendarView/delta (odata.maxpagesize)
CHANGE_TYPES = "created,updated,deleted"
THROTTLE_STATUSES = frozenset({429, 503, 504})
DELTA_GONE_CODES = frozenset(
    {"SyncStateNotFound", "resyncRequired", "fullSyncRequired", "SyncStateInvalid"}
)
ABSOLUTE = ("https://", "http://")
# Ask for ids that survive a move between folders (deleted items and back, another calendar),
# on every call: the header "only applies to the request it is included with", and a
# subscription created with it sends immutable ids in its notifications.
# https://learn.microsoft.com/graph/outlook-immutable-id
IMMUTABLE_IDS = 'IdType="ImmutableId"'


def prefer_headers(*preferences: str) -> tuple[tuple[str, str], ...]:
    """The one `Prefer` header of a request: the immutable ids first, then `preferences`."""
    return (("Prefer", ", ".join((IMMUTABLE_IDS, *preferences))),)


@dataclass(frozen=True)
class GraphRequest:
    """One Graph call, complete: what to send and what the sender must know to send it."""

    method: str
    path: str  # relative to GRAPH_BASE_URL ("users/x/..."), or an absolute next/delta link
    tenant_id: str  # whose token signs it
    kind: Kind
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # every Prefer is here; never Authorization
    body: Mapping[str, Any] | None = None  # sent as JSON
    mailbox: str = ""  # user id: keys the per-mailbox concurrency slot ("" = none)
    caller: str = ""  # who asked for it (a connector's raw call): logged, never sent

    def __post_init__(self) -> None:
        """Every request asks for immutable ids, whatever its builder passed as headers."""
        prefer = [v for k, v in self.headers if k.lower() == "prefer"]
        if any(IMMUTABLE_IDS in value for value in prefer):
            return
        others = tuple((k, v) for k, v in self.headers if k.lower() != "prefer")
        object.__setattr__(self, "headers", prefer_headers(*prefer) + others)

    def url(self, base_url: str) -> str:
        """The absolute URL; a link must stay on Graph's own origin (it carries our token)."""
        base = base_url.rstrip("/")
        if not self.path.startswith(ABSOLUTE):
            return f"{base}/{self.path.lstrip('/')}"
        link, home = urlsplit(self.path), urlsplit(base)
        if (link.scheme, link.netloc.lower()) != (home.scheme, home.netloc.lower()):
            raise GraphProtocolError(
                f"Graph sent a link to {link.scheme}://{link.netloc}, not to {base}: it is not "
                "followed (our token would go with it); report the link's source",
                status=None,
                graph_code="ForeignLink",
            )
        return self.path

    def describe(self) -> str:
        """`GET users/x/calendarView/delta`: method and path, never the query (tokens)."""
        path = urlsplit(self.path).path if self.path.startswith(ABSOLUTE) else self.path
        return f"{self.method} {path}"

    def follow(self, link: str) -> GraphRequest:
        """The request for the page at `link`: same headers and sender; the link has the query.
        https://learn.microsoft.com/graph/paging"""
        return replace(self, method="GET", path=link, query=(), body=None)


# ---- Builders: one per call the product makes -------------------------------------------------


def _delta_headers(body_type: BodyType) -> tuple[tuple[str, str], ...]:
    prefer = [f"odata.maxpagesize={PAGE_SIZE}", 'outlook.timezone="UTC"']
    if body_type == "text":
        prefer.append('outlook.body-content-type="text"')
    return prefer_headers(*prefer)


def calendar_path(key: MailboxKey, calendar_id: str = "") -> str:
    """`users/{id}` for the default calendar, `users/{id}/calendars/{calendar id}` for another
    one (the id percent-encoded: Graph calendar ids hold '/', '+' and '=')."""
    if not calendar_id:
        return f"users/{key.user_id}"
    return f"users/{key.user_id}/calendars/{quote(calendar_id, safe='')}"


def delta_start(
    key: MailboxKey, window: Window, *, body_type: BodyType, calendar_id: str = ""
) -> GraphRequest:
    """First page of a calendar view's delta over `window`: times in UTC, 100 per page. Of a
    non-default calendar: `users/{id}/calendars/{id}/calendarView/delta`, which v1.0 documents
    for the primary calendar only (beta documents other calendars); a Graph that refuses it
    leaves the round to list the calendarView instead (services.sync).
    https://learn.microsoft.com/graph/api/event-delta (request headers: Prefer)"""
    return GraphRequest(
        "GET",
        f"{calendar_path(key, calendar_id)}/calendarView/delta",
        key.tenant_id,
        "delta",
        query=(("startDateTime", iso_utc(window.start)), ("endDateTime", iso_utc(window.end))),
        headers=_delta_headers(body_type),
        mailbox=key.user_id,
    )


def delta_follow(key: MailboxKey, link: str, *, body_type: BodyType) -> GraphRequest:
    """A stored next or delta link; the link carries its state, the headers are sent again.
    https://learn.microsoft.com/graph/delta-query-events"""
    return GraphRequest(
        "GET", link, key.tenant_id, "delta", headers=_delta_headers(body_type), mailbox=key.user_id
    )


def subscription_create(
    key: MailboxKey,
    *,
    notification_url: str,
    lifecycle_url: str | None,
    expiration: datetime,
    client_state: str,
    calendar_id: str = "",
) -> GraphRequest:
    """Subscribe to a mailbox's events, with lifecycle notifications and TLS 1.2; created with
    the immutable-id preference (as every request), so its notifications carry immutable ids.
    https://learn.microsoft.com/graph/api/subscription-post-subscriptions
    https://learn.microsoft.com/graph/outlook-immutable-id#immutable-id-with-change-notifications"""
    body = {
        "changeType": CHANGE_TYPES,
        "notificationUrl": notification_url,
        "lifecycleNotificationUrl": lifecycle_url,
        "resource": events_resource(key, calendar_id),
        "expirationDateTime": iso_utc(expiration),
        "clientState": client_state,
        "latestSupportedTlsVersion": "v1_2",
    }
    return GraphRequest(
        "POST", "subscriptions", key.tenant_id, "subscription", headers=prefer_headers(), body=body
    )


def subscription_renew(tenant_id: str, subscription_id: str, expiration: datetime) -> GraphRequest:
    """Move a subscription's expiry. https://learn.microsoft.com/graph/api/subscription-update"""
    body = {"expirationDateTime": iso_utc(expiration)}
    return GraphRequest(
        "PATCH", f"subscriptions/{subscription_id}", tenant_id, "subscription", body=body
    )


def subscription_reauthorize(tenant_id: str, subscription_id: str) -> GraphRequest:
    """Answer reauthorizationRequired.
    https://learn.microsoft.com/graph/api/subscription-reauthorize"""
    path = f"subscriptions/{subscription_id}/reauthorize"
    return GraphRequest("POST", path, tenant_id, "subscription")


def subscription_delete(tenant_id: str, subscription_id: str) -> GraphRequest:
    """https://learn.microsoft.com/graph/api/subscription-delete"""
    return GraphRequest("DELETE", f"subscriptions/{subscription_id}", tenant_id, "subscription")


def subscription_list(tenant_id: str) -> GraphRequest:
    """The app's subscriptions in a tenant, paged by @odata.nextLink.
    https://learn.microsoft.com/graph/api/subscription-list"""
    return GraphRequest("GET", "subscriptions", tenant_id, "subscriptions")


def user_lookup(tenant_id: str, user: str) -> GraphRequest:
    """A user by object id or UPN; the UPN is percent-encoded as one path segment (`/`, `?`,
    `#`, `%` and `'` cannot break out of it). https://learn.microsoft.com/graph/api/user-get
    `.` and `..` are refused: Graph (any URL parser) would normalise them into another path."""
    if user.strip() in {"", ".", ".."}:
        raise InputError(f"user {user!r} is not a user id or UPN; give the user's id or UPN")
    return GraphRequest(
        "GET",
        f"users/{quote(user, safe='@')}",
        tenant_id,
        "user",
        query=(("$select", "id,userPrincipalName,mail"),),
    )


def calendar_get(key: MailboxKey) -> GraphRequest:
    """The mailbox's default calendar (a cheap proof that its calendar can be read).
    https://learn.microsoft.com/graph/api/calendar-get"""
    return GraphRequest(
        "GET",
        f"users/{key.user_id}/calendar",
        key.tenant_id,
        "calendar",
        query=(("$select", "id,name"),),
        mailbox=key.user_id,
    )


def series_master_get(key: MailboxKey, master_id: str, *, body_type: BodyType) -> GraphRequest:
    """A series master with its recurrence (delta returns only the instances), times in UTC and
    the body in the mailbox's body type, like delta's. 404: the series is gone.
    https://learn.microsoft.com/graph/api/event-get"""
    prefer = ['outlook.timezone="UTC"']
    if body_type == "text":
        prefer.append('outlook.body-content-type="text"')
    return GraphRequest(
        "GET",
        f"users/{key.user_id}/events/{quote(master_id, safe='')}",
        key.tenant_id,
        "event",
        headers=prefer_headers(*prefer),
        mailbox=key.user_id,
    )


def application_credentials(tenant_id: str, client_id: str) -> GraphRequest:
    """The app registration's own secrets and certificates (dates and hints, never values);
    needs Application.Read.All, and answers only in the app's home tenant (404 elsewhere).
    https://learn.microsoft.com/graph/api/application-get"""
    return GraphRequest(
        "GET",
        f"applications(appId='{quote(client_id, safe='')}')",
        tenant_id,
        "application",
        query=(("$select", "passwordCredentials,keyCredentials"),),
    )


def calendars_list(key: MailboxKey) -> GraphRequest:
    """Every calendar of the mailbox with its owner and what the app may do in it.
    https://learn.microsoft.com/graph/api/user-list-calendars"""
    return GraphRequest(
        "GET",
        f"users/{key.user_id}/calendars",
        key.tenant_id,
        "calendar",
        query=(
            (
                "$select",
                "id,name,owner,isDefaultCalendar,canEdit,canShare,canViewPrivateItems,color",
            ),
            ("$top", "100"),
        ),
        mailbox=key.user_id,
    )


def calendar_view_live(
    key: MailboxKey, window: Window, *, body_type: BodyType, calendar_id: str = ""
) -> GraphRequest:
    """The calendar's events in `window`, live from Graph (instances, not masters), UTC.
    https://learn.microsoft.com/graph/api/user-list-calendarview"""
    return GraphRequest(
        "GET",
        f"{calendar_path(key, calendar_id)}/calendarView",
        key.tenant_id,
        "event",
        query=(
            ("startDateTime", iso_utc(window.start)),
            ("endDateTime", iso_utc(window.end)),
            ("$top", str(PAGE_SIZE)),
        ),
        headers=_event_headers(body_type),
        mailbox=key.user_id,
    )


def raw_request(
    key: MailboxKey,
    method: str,
    path: str,
    query: tuple[tuple[str, str], ...],
    body: Mapping[str, Any] | None,
    caller: str = "",
) -> GraphRequest:
    """A connector's raw call, already checked by core.connector (a path of this mailbox, an
    allowed method); its answer is passed through (decipher returns status and body). The
    `caller` goes to the operations log with the call."""
    return GraphRequest(
        method,
        path,
        key.tenant_id,
        "raw",
        query=query,
        body=body,
        mailbox=key.user_id,
        caller=caller,
    )


def events_resource(key: MailboxKey, calendar_id: str = "") -> str:
    """The subscription resource: `users/{id}/events` fires for the default calendar only;
    another calendar is `users/{id}/calendars/{id}/events` (works, undocumented: GRAPH-FACTS)."""
    return f"{calendar_path(key, calendar_id)}/events"


# ---- Writes: events created, changed, removed (core.writes builds the bodies) -----------------


def _event_headers(body_type: BodyType) -> tuple[tuple[str, str], ...]:
    """Delta's headers without its page size: the answer then has the ids, times (UTC) and body
    type a delta round sees, so the mirror row written from a write's answer is the row the next
    delta round finds unchanged (whatever delta comes to prefer, writes prefer it too)."""
    out = []
    for name, value in _delta_headers(body_type):
        if name.lower() == "prefer":
            kept = [p for p in value.split(", ") if not p.startswith("odata.maxpagesize")]
            value = ", ".join(kept)
        out.append((name, value))
    return tuple(out)


def _event_path(key: MailboxKey, event_id: str, tail: str = "") -> str:
    if not event_id or event_id.strip() in {".", ".."}:
        raise InputError(f"eventId {event_id!r} is not a Graph event id")
    return f"users/{key.user_id}/events/{quote(event_id, safe='')}{tail}"


def origin_filter(property_id: str, value: str) -> str:
    """`$filter` matching events whose single-value extended property `property_id` is `value`.
    https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get"""
    quoted = value.replace("'", "''")
    return (
        f"singleValueExtendedProperties/any(ep: ep/id eq '{property_id}' and ep/value eq "
        f"'{quoted}')"
    )


def _expand(property_id: str) -> tuple[str, str]:
    return ("$expand", f"singleValueExtendedProperties($filter=id eq '{property_id}')")


def event_create(
    key: MailboxKey,
    body: Mapping[str, Any],
    *,
    transaction_id: str,
    body_type: BodyType,
    calendar_id: str = "",
) -> GraphRequest:
    """Create an event (a series when `body` has a recurrence) in the default calendar, or in
    calendar `calendar_id`; `transactionId` lets Graph refuse a repeated POST of the same write.
    https://learn.microsoft.com/graph/api/user-post-events (resources/event: transactionId)
    https://learn.microsoft.com/graph/api/calendar-post-events"""
    return GraphRequest(
        "POST",
        f"{calendar_path(key, calendar_id)}/events",
        key.tenant_id,
        "event",
        headers=_event_headers(body_type),
        body={**body, "transactionId": transaction_id},
        mailbox=key.user_id,
    )


def event_update(
    key: MailboxKey,
    event_id: str,
    body: Mapping[str, Any],
    *,
    change_key: str,
    body_type: BodyType,
) -> GraphRequest:
    """Change an event, an occurrence (it becomes an exception) or a series master (its
    pattern), only if its changeKey is still `change_key` (If-Match; a stale one is 412).
    https://learn.microsoft.com/graph/api/event-update"""
    headers = _event_headers(body_type)
    if change_key:
        headers += (("If-Match", f'W/"{change_key}"'),)
    return GraphRequest(
        "PATCH",
        _event_path(key, event_id),
        key.tenant_id,
        "event",
        headers=headers,
        body=dict(body),
        mailbox=key.user_id,
    )


def event_delete(key: MailboxKey, event_id: str) -> GraphRequest:
    """Delete an event, an occurrence or a whole series.
    https://learn.microsoft.com/graph/api/event-delete"""
    return GraphRequest(
        "DELETE", _event_path(key, event_id), key.tenant_id, "event", mailbox=key.user_id
    )


def event_cancel(key: MailboxKey, event_id: str, comment: str) -> GraphRequest:
    """The organizer cancels a meeting (attendees get the comment); it leaves the calendar.
    https://learn.microsoft.com/graph/api/event-cancel"""
    return GraphRequest(
        "POST",
        _event_path(key, event_id, "/cancel"),
        key.tenant_id,
        "event",
        body={"Comment": comment},
        mailbox=key.user_id,
    )


def event_get(
    key: MailboxKey, event_id: str, *, origin_property: str, body_type: BodyType
) -> GraphRequest:
    """One event as it is now, with our origin marker expanded.
    https://learn.microsoft.com/graph/api/event-get,
    https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get"""
    return GraphRequest(
        "GET",
        _event_path(key, event_id),
        key.tenant_id,
        "event",
        query=(_expand(origin_property),),
        headers=_event_headers(body_type),
        mailbox=key.user_id,
    )


def event_instances(
    key: MailboxKey, master_id: str, window: Window, *, body_type: BodyType
) -> GraphRequest:
    """The occurrences and exceptions of a series within `window`, paged by @odata.nextLink.
    https://learn.microsoft.com/graph/api/event-list-instances"""
    return GraphRequest(
        "GET",
        _event_path(key, master_id, "/instances"),
        key.tenant_id,
        "event",
        query=(
            ("startDateTime", iso_utc(window.start)),
            ("endDateTime", iso_utc(window.end)),
            ("$top", str(PAGE_SIZE)),
        ),
        headers=_event_headers(body_type),
        mailbox=key.user_id,
    )


def events_by_origin(
    key: MailboxKey,
    *,
    origin_property: str,
    value: str,
    body_type: BodyType,
    calendar_id: str = "",
) -> GraphRequest:
    """The events (singles and series masters) carrying origin marker `value`: how a write
    whose answer was lost finds the event it made.
    https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get"""
    return GraphRequest(
        "GET",
        f"{calendar_path(key, calendar_id)}/events",
        key.tenant_id,
        "event",
        query=(("$filter", origin_filter(origin_property, value)), _expand(origin_property)),
        headers=_event_headers(body_type),
        mailbox=key.user_id,
    )


# ---- Answers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphAnswer:
    """What came back: status, headers, the raw body, and when it arrived (for Retry-After)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class Attempt:
    """What the sender does next: send the request, with a freshly acquired token or not."""

    fresh_token: bool


def exchange(request: GraphRequest) -> Generator[Attempt, GraphAnswer, Any]:
    """The send policy, driven by the adapter: send; on a 401 send once more with a fresh token
    (a cached token can be revoked, or outlived by Graph's view of time); then decipher. A second
    401 deciphers to TokenError. Returns the result; raises the project error."""
    answer = yield Attempt(fresh_token=False)
    if answer.status == 401:
        answer = yield Attempt(fresh_token=True)
    try:
        return decipher(request, answer.status, answer.headers, answer.body, now=answer.received_at)
    except CalsyncError as exc:
        exc.request_id = _header(answer.headers, "request-id") or ""
        raise


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def parse_retry_after(value: str | None, now: datetime) -> float:
    """Seconds to wait from Retry-After: delta-seconds (Graph may send fractions) or an
    HTTP-date (relative to `now`; past: 0). Absent or unreadable: 0 (the caller backs off).
    https://learn.microsoft.com/graph/throttling, RFC 9110 §10.2.3"""
    text = (value or "").strip()
    if not text:
        return 0.0
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return 0.0
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - now).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else 0.0


def _error_of(body: bytes, status: int) -> tuple[str, str]:
    """Graph's `error.code` and `error.message`; without them, the status's own phrase."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = f"HTTP {status}"
    try:
        error = json.loads(body).get("error", {}) if body else {}
    except (ValueError, AttributeError, UnicodeDecodeError):
        return "", phrase
    if not isinstance(error, dict):
        return "", phrase
    return str(error.get("code", "")), str(error.get("message", phrase))


def decipher(
    request: GraphRequest, status: int, headers: Mapping[str, str], body: bytes, *, now: datetime
) -> Any:
    """The parsed JSON of a 2xx answer (None for 204 or an empty body), or the project error the
    answer means, in Graph's own precedence: 401, throttling, expired delta, gone, 5xx, other."""
    what = f"Graph {request.describe()} answered {status}"
    if request.kind == "raw" and status != 401:  # a connector's call: its answer as it came
        return _raw_answer(status, headers, body)
    if 200 <= status < 300:
        if status == 204 or not body.strip():
            return None
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            kind = _header(headers, "Content-Type") or "no content type"
            raise GraphProtocolError(
                f"{what} with a body that is not JSON ({kind}); nothing was applied, report it",
                status=status,
                graph_code="NonJsonBody",
            ) from None
    code, message = _error_of(body, status)
    if status == 401:
        raise TokenError(
            f"Graph refused the app's token for tenant {request.tenant_id} (401); check the "
            "app's permissions and admin consent",
            error="unauthorized",
        )
    if status in THROTTLE_STATUSES:
        retry_after = parse_retry_after(_header(headers, "Retry-After"), now)
        raise Throttled(
            f"{what} {code}: {message}; retry after {retry_after:g} s",
            status=status,
            graph_code=code or "TooManyRequests",
            retry_after=retry_after,
        )
    if status == 410 or code in DELTA_GONE_CODES:
        raise DeltaExpired(
            f"{what} {code}: the delta token expired; resync the window",
            status=status,
            graph_code=code,
        )
    if status == 404 and request.kind == "subscription":
        raise SubscriptionGone(
            f"{what}: the subscription no longer exists; create a new one",
            status=status,
            graph_code=code,
        )
    if status == 404 and request.kind == "user":
        user = unquote(request.path.rsplit("/", 1)[-1])
        raise NotFoundError(f"Graph has no user {user!r} in tenant {request.tenant_id}")
    if request.kind == "event" and status in (400, 404, 412):
        _event_error(request, status, code, message)
    if status >= 500:
        raise GraphServerError(
            f"{what} {code}: {message}; retry later", status=status, graph_code=code
        )
    raise GraphError(f"{what} {code}: {message}", status=status, graph_code=code)


def _raw_answer(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A raw call's answer as it came: status, JSON body (or text), Retry-After when given."""
    parsed: Any = None
    if body.strip():
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            parsed = body.decode("utf-8", "replace")[:4096]
    answer: dict[str, Any] = {"status": status, "body": parsed}
    retry_after = _header(headers, "Retry-After")
    if retry_after:
        answer["retryAfter"] = retry_after
    return answer


def _event_error(request: GraphRequest, status: int, code: str, message: str) -> None:
    """A write's refusals in the caller's terms: 412 a conflict, 404 no such event, 400 a body
    Graph would not take (what Graph said is kept)."""
    what = f"Graph {request.describe()} answered {status}"
    if status == 412:
        raise WriteConflict(
            f"{what} {code}: the event changed since the changeKey sent; read the current "
            "version and decide again",
            graph_code=code,
        )
    if status == 404:
        raise NotFoundError(
            f"{what} {code}: no such event in this mailbox (deleted, or the id is of another "
            "mailbox)"
        )
    raise InputError(f"{what} {code}: {message}")
