"""Pure: the operations log (the `log` table), as data. What a record of an inbound notification
POST or an outbound Graph call holds, how its keys are made, which paths and queries may be
kept, how a query over mailbox, direction and time becomes partitions to read, and which
partitions the retention drops. No I/O; `now` is passed in.

Keys: PartitionKey = `<YYYYMMDD>_<tenant>_<user>` (a mailbox's day; user `-` for calls of no
mailbox, such as subscription renewals), RowKey = inverted microseconds since the epoch plus a
random suffix, so a partition reads newest first and two records never collide. A query for one
mailbox reads one partition per day; a tenant's or everyone's day is a PartitionKey prefix range;
retention drops whole days by a PartitionKey range (`lt <oldest kept day>`). Other rows of the
table (the credential status) live in partitions that start with a letter, outside every range.

Never recorded: a notification's body (clientState), a token, a function key, a query value
other than the harmless ones in SAFE_QUERY (a `$deltatoken`, `$skiptoken` or `code` is `***`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

from shared.core.keys import encode_key
from shared.core.times import iso_utc, parse_iso
from shared.errors import InputError

Direction = Literal["in", "out"]
DIRECTIONS: tuple[Direction, ...] = ("in", "out")
NO_USER = "-"
SAFE_QUERY = frozenset({"$select", "$top", "startDateTime", "endDateTime"})
MAX_MICROS = 10**17  # past year 5000: inverted stamps stay 17 digits and positive
DEFAULT_TOP = 100
MAX_TOP = 1000
DEFAULT_SINCE = timedelta(hours=24)
DEFAULT_RETENTION_DAYS = 7
MAX_LOGGED_PATH = 512
STATUS_PARTITION = "status"  # status rows (the credential's); sorts after every day partition
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LogRecord:
    """One line of the operations log: an inbound POST (per mailbox it named) or a Graph call."""

    direction: Direction
    at: datetime
    tenant_id: str
    user_id: str  # "" when the call concerns no mailbox
    method: str
    path: str  # redacted: see redact_target
    status: int  # 0: no answer (the connection failed)
    duration_ms: float
    kind: str = ""  # Graph: delta, subscription, user...; inbound: notifications, lifecycle
    request_id: str = ""
    client_request_id: str = ""
    retry_after: str = ""  # Graph's Retry-After header as sent
    error: str = ""  # the project error code, or the transport failure's type
    items: int | None = None  # inbound: items in the POST
    queued: int | None = None  # inbound: sync requests queued
    ignored: int | None = None  # inbound: items ignored
    mailboxes: int | None = None  # inbound: distinct mailboxes the POST named
    caller: str = ""  # a connector's raw call: who asked for it (its own name for itself)
    extra: Mapping[str, Any] = field(default_factory=dict)


def credential_row(client_id: str) -> str:
    """The RowKey of the app registration's credential status (one per client id)."""
    return f"credential_{encode_key(client_id.lower())}"


def day_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d")


def _party(tenant_id: str, user_id: str) -> str:
    return f"{encode_key(tenant_id.lower() or NO_USER)}_{encode_key(user_id.lower() or NO_USER)}"


def partition_key(tenant_id: str, user_id: str, moment: datetime) -> str:
    return f"{day_key(moment)}_{_party(tenant_id, user_id)}"


def _micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def inverted_stamp(moment: datetime) -> str:
    """17 digits that sort newest first."""
    return f"{MAX_MICROS - _micros(moment):017d}"


def row_key(moment: datetime, suffix: str) -> str:
    return f"{inverted_stamp(moment)}-{suffix}"


def redact_target(target: str, base_url: str = "") -> str:
    """A URL or relative path as it may be stored: the path relative to `base_url` when it is
    under it (else just the path, never scheme or host), and only SAFE_QUERY values; any other
    query value (delta and skip tokens, `code=`, signatures) becomes `***`."""
    parts = urlsplit(target)
    path = parts.path
    base_path = urlsplit(base_url).path.rstrip("/") if base_url else ""
    if parts.scheme and base_path and path.startswith(base_path + "/"):
        path = path[len(base_path) + 1 :]
    if not parts.query:
        return path
    kept = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        shown = value if name in SAFE_QUERY else "***"
        kept.append(f"{quote(name, safe='$')}={quote(shown, safe=':*,')}")
    return f"{path}?{'&'.join(kept)}"


def outbound(
    *,
    at: datetime,
    method: str,
    url: str,
    base_url: str,
    tenant_id: str,
    user_id: str,
    kind: str,
    status: int,
    duration_ms: float,
    headers: Mapping[str, str],
    client_request_id: str,
    error: str = "",
    caller: str = "",
) -> LogRecord:
    """The record of one Graph call; `headers` are the answer's (any case)."""
    lower = {k.lower(): v for k, v in headers.items()}
    return LogRecord(
        "out",
        at,
        tenant_id,
        user_id,
        method,
        redact_target(url, base_url),
        status,
        round(duration_ms, 1),
        kind=kind,
        request_id=lower.get("request-id", "")[:100],
        client_request_id=lower.get("client-request-id", client_request_id)[:100],
        retry_after=lower.get("retry-after", "")[:40],
        error=error,
        caller=caller,
    )


def refused_raw(
    *,
    at: datetime,
    tenant_id: str,
    user_id: str,
    method: str,
    path: str,
    caller: str,
    status: int,
    error: str,
    duration_ms: float,
) -> LogRecord:
    """The record of a connector's raw call refused before Graph (403 outside the rules): what
    was asked for (the path as given, redacted and cut to 512 characters; never a body)."""
    shown = redact_target(path.strip()[:MAX_LOGGED_PATH]) if path.strip() else ""
    return LogRecord(
        "out",
        at,
        tenant_id,
        user_id,
        (method.strip().upper() or "?")[:16],
        shown,
        status,
        round(duration_ms, 1),
        kind="raw",
        error=error,
        caller=caller,
    )


def inbound(
    *,
    at: datetime,
    kind: str,
    status: int,
    duration_ms: float,
    items: int,
    queued: int,
    ignored: int,
    mailboxes: tuple[tuple[str, str], ...],
    tenants: tuple[str, ...] = (),
    error: str = "",
) -> list[LogRecord]:
    """The records of one notification POST: one per mailbox it named (so a mailbox's log shows
    it), or one for the tenant (or none known) when it named no mailbox we sync."""
    parties = list(mailboxes) or [(t, "") for t in tenants[:1]] or [("", "")]
    return [
        LogRecord(
            "in",
            at,
            tenant_id,
            user_id,
            "POST",
            f"/api/{kind}",
            status,
            round(duration_ms, 1),
            kind=kind,
            error=error,
            items=items,
            queued=queued,
            ignored=ignored,
            mailboxes=len(mailboxes),
        )
        for tenant_id, user_id in parties
    ]


_FIELDS = (
    "kind",
    "request_id",
    "client_request_id",
    "retry_after",
    "error",
    "items",
    "queued",
    "ignored",
    "mailboxes",
    "caller",
)


def to_entity(record: LogRecord, suffix: str) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": partition_key(record.tenant_id, record.user_id, record.at),
        "RowKey": row_key(record.at, suffix),
        "direction": record.direction,
        "at": record.at,
        "tenant": record.tenant_id.lower(),
        "user": record.user_id.lower(),
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "duration_ms": float(record.duration_ms),
    }
    for name in _FIELDS:
        value = getattr(record, name)
        if value not in (None, ""):
            entity[name] = value
    return entity


def view(entity: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row as the admin API shows it (camelCase, ISO times)."""
    at = entity.get("at")
    out: dict[str, Any] = {
        "at": iso_utc(at) if isinstance(at, datetime) else str(at or ""),
        "direction": entity.get("direction", ""),
        "tenantId": entity.get("tenant", ""),
        "userId": entity.get("user", ""),
        "method": entity.get("method", ""),
        "path": entity.get("path", ""),
        "status": entity.get("status", 0),
        "durationMs": entity.get("duration_ms", 0.0),
    }
    names = {"request_id": "requestId", "client_request_id": "clientRequestId"}
    names |= {"retry_after": "retryAfter", "kind": "kind", "error": "error", "items": "items"}
    names |= {"queued": "queued", "ignored": "ignored", "mailboxes": "mailboxes"}
    names |= {"caller": "caller"}
    for name, shown in names.items():
        if name in entity and entity[name] not in (None, ""):
            out[shown] = entity[name]
    return out


# ---- Queries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayScan:
    """One day's read: an exact partition (one mailbox) or a PartitionKey range."""

    low: str  # PartitionKey ge
    high: str  # PartitionKey lt
    row_low: str  # RowKey ge (the newest stamp wanted)
    row_high: str  # RowKey lt (past the oldest stamp wanted)


@dataclass(frozen=True)
class LogQuery:
    tenant_id: str
    user_id: str
    direction: Direction | None
    since: datetime
    until: datetime
    top: int
    days: tuple[DayScan, ...]  # newest day first


def _after(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _moment(params: Mapping[str, str], name: str, default: datetime) -> datetime:
    text = (params.get(name) or "").strip()
    if not text:
        return default
    moment = parse_iso(text)
    if moment is None:
        raise InputError(
            f"query parameter {name}={text[:64]!r} is not an ISO 8601 time "
            "(e.g. 2026-12-01T08:00:00Z)"
        )
    return moment


def plan_query(
    params: Mapping[str, str], *, now: datetime, retention_days: int = DEFAULT_RETENTION_DAYS
) -> LogQuery:
    """The admin API's `GET /api/log?tenant=&user=&direction=&since=&until=&top=` as scans, or
    InputError naming the parameter. `since` defaults to 24 h ago, `until` to now; nothing older
    than the retention is read (it is gone)."""
    tenant = (params.get("tenant") or "").strip().lower()
    user = (params.get("user") or "").strip().lower()
    if user and not tenant:
        raise InputError("query parameter user needs tenant: give the mailbox's tenant id too")
    direction = (params.get("direction") or "").strip().lower() or None
    if direction is not None and direction not in DIRECTIONS:
        raise InputError(f"query parameter direction={direction[:16]!r} must be in or out")
    top_text = (params.get("top") or "").strip() or str(DEFAULT_TOP)
    if not top_text.isdigit() or not 1 <= int(top_text) <= MAX_TOP:
        raise InputError(f"query parameter top={top_text[:16]!r} must be 1 to {MAX_TOP}")
    until = _moment(params, "until", now)
    since = _moment(params, "since", until - DEFAULT_SINCE)
    if since > until:
        raise InputError("query parameter since must not be after until")
    oldest = datetime.combine(retention_floor(now, retention_days), datetime.min.time(), UTC)
    since = max(since, oldest)
    for value, what in ((tenant, "tenant"), (user, "user")):
        if value:
            try:
                encode_key(value)
            except InputError:
                raise InputError(f"query parameter {what} is not a usable id") from None
    days: list[DayScan] = []
    row_low, row_high = inverted_stamp(until), inverted_stamp(since) + "~"
    day = until.astimezone(UTC).date()
    while since <= until and day >= since.astimezone(UTC).date():
        stamp = day.strftime("%Y%m%d")
        if user:
            low = f"{stamp}_{_party(tenant, user)}"
            high = low + "\x00"
        else:
            prefix = f"{stamp}_{encode_key(tenant)}_" if tenant else f"{stamp}_"
            low, high = prefix, _after(prefix)
        days.append(DayScan(low, high, row_low, row_high))
        day -= timedelta(days=1)
    return LogQuery(
        tenant,
        user,
        direction,
        since,
        until,
        int(top_text),
        tuple(days),
    )


# ---- Retention ----------------------------------------------------------------------------------


def retention_floor(now: datetime, retention_days: int) -> date:
    """The oldest day kept: `retention_days` days before today (UTC), so that at least that many
    whole days before now stay queryable."""
    return now.astimezone(UTC).date() - timedelta(days=max(1, retention_days))


def prune_bound(now: datetime, retention_days: int) -> str:
    """Every day partition whose key is below this string is past the retention."""
    return retention_floor(now, retention_days).strftime("%Y%m%d")
