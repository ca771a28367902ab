"""Pure: the rules of webhook delivery of the change feed: who may subscribe (the URL and the
filter), which changes a subscriber gets, how a receiver's answer is judged, and when a failed
delivery is tried again.

Rules:
- A subscriber's URL is https; plain http only for a loopback host and only when the dev setting
  WEBHOOK_ALLOW_HTTP_LOOPBACK says so (a local receiver in tests and demos). Loopback https is
  always allowed. The URL carries no user name or password (the request would send them).
- The filter narrows by tenant, mailbox (user id) and change types; an empty part matches all.
- A receiver's answer: 2xx is delivered, 410 Gone disables the subscriber (the receiver said it
  wants no more), anything else (and no answer, a timeout, a broken connection) is retried.
- Retries follow `RETRY_DELAYS` (exponential, capped), each delay spread by +/- `JITTER` so that
  many failing pairs do not retry in step; the schedule spans more than 24 hours. After the last
  attempt the change goes to the dead letters and the pair moves on to its next change.
- A subscriber is "failing" once a pair of it has failed `FAILING_AFTER` attempts in a row or a
  change of it was dead-lettered; its next delivered change clears that.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from shared.core.feed import CHANGE_TYPES, ChangeEvent
from shared.core.model import CALENDAR_HANDLE, CALENDAR_SEPARATOR, DEFAULT_CALENDAR_NAME
from shared.errors import InputError

# Seconds before attempt 2, 3, ...: 5 s growing x3 to a 6 h cap; 14 attempts in all, spanning
# about 27.6 hours at the least (every delay at its low end), so a receiver that is down for a
# day still gets the change. Standard Webhooks recommends a schedule of this shape
# (github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
RETRY_DELAYS: tuple[float, ...] = (
    5,
    15,
    45,
    135,
    405,
    1215,
    3645,
    10935,
    21600,
    21600,
    21600,
    21600,
    21600,
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2  # each delay is drawn from [d * 0.8, d * 1.2)
FAILING_AFTER = 4  # attempts in a row (about 3.5 minutes of failures)
MAX_URL = 2000
MAX_DESCRIPTION = 500
MAX_FILTER_ITEMS = 100

Verdict = Literal["delivered", "gone", "retry"]
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def retry_delay(attempt: int, draw: float) -> float | None:
    """Seconds to wait after failed attempt `attempt` (1-based) before the next one, spread by
    `draw` (a random number in [0, 1)); None when that was the last attempt."""
    if attempt < 1:
        raise ValueError(f"attempts count from 1, got {attempt}")
    if attempt >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[attempt - 1]
    return base * (1 - JITTER + 2 * JITTER * min(max(draw, 0.0), 1.0))


def judge(status: int | None) -> Verdict:
    """A receiver's HTTP status (None: no usable answer) as a delivery verdict."""
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    return "retry"


ANY_WRITER = "*"  # in excludeWriters: every change made through the write API


@dataclass(frozen=True)
class Filter:
    """Which changes a subscriber gets; an empty tuple matches everything."""

    tenants: tuple[str, ...] = ()
    mailboxes: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    # Writers (the `writer` of calsync writes) whose own changes this subscriber does not get:
    # a system syncing both ways through calsync never receives the echo of its writes. "*"
    # names every writer: a ring of systems, each writing back what another wrote, loops
    # unless each leaves out every writer of the ring, and "*" needs no list of them.
    exclude_writers: tuple[str, ...] = ()

    def matches_mailbox(
        self, tenant_id: str, user_id: str, calendar: str = DEFAULT_CALENDAR_NAME
    ) -> bool:
        """A `mailboxes` entry "user" matches every calendar of the user, "user:handle" that
        calendar only ("user:calendar": the default one)."""
        if self.tenants and tenant_id.lower() not in self.tenants:
            return False
        user = user_id.lower()
        return (
            not self.mailboxes
            or user in self.mailboxes
            or f"{user}{CALENDAR_SEPARATOR}{calendar}" in self.mailboxes
        )

    def matches(self, change: ChangeEvent) -> bool:
        return (
            self.matches_mailbox(change.tenant_id, change.user_id, change.calendar_id)
            and (not self.types or change.type in self.types)
            and not (change.writer and self._excluded(change.writer.lower()))
        )

    def _excluded(self, writer: str) -> bool:
        return ANY_WRITER in self.exclude_writers or writer in self.exclude_writers

    def to_json(self) -> dict[str, list[str]]:
        return {
            "tenants": list(self.tenants),
            "mailboxes": list(self.mailboxes),
            "types": list(self.types),
            "excludeWriters": list(self.exclude_writers),
        }


def _names(data: Mapping[str, Any], key: str, allowed: Sequence[str] | None) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"filter.{key} must be a list of non-empty strings")
    if len(value) > MAX_FILTER_ITEMS:
        raise InputError(f"filter.{key} names more than {MAX_FILTER_ITEMS} items")
    names = tuple(sorted({v.strip().lower() for v in value}))
    if allowed is not None:
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise InputError(
                f"filter.{key} has {', '.join(unknown)}: change types are {', '.join(allowed)}"
            )
    return names


def parse_filter(data: Any, tenant_ids: Sequence[str]) -> Filter:
    """The `filter` of a subscriber request; InputError naming the bad field."""
    if data is None:
        return Filter()
    if not isinstance(data, dict):
        raise InputError("filter must be an object with tenants, mailboxes and types lists")
    extra = sorted(set(data) - {"tenants", "mailboxes", "types", "excludeWriters"})
    if extra:
        raise InputError(
            f"filter.{extra[0]} is not a filter field (tenants, mailboxes, types, excludeWriters)"
        )
    tenants = _names(data, "tenants", None)
    known = {t.lower() for t in tenant_ids}
    strangers = [t for t in tenants if t not in known]
    if strangers:
        raise InputError(f"filter.tenants has {', '.join(strangers)}, not one of TENANT_IDS")
    return Filter(
        tenants,
        _names(data, "mailboxes", None),
        _names(data, "types", CHANGE_TYPES),
        _names(data, "excludeWriters", None),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(given: Any, *, allow_http_loopback: bool) -> str:
    """A subscriber URL that may be used, or InputError saying why not (field `url`)."""
    if not isinstance(given, str) or not given.strip():
        raise InputError("url is required: the https URL that receives the changes")
    url: str = given.strip()
    if len(url) > MAX_URL:
        raise InputError(f"url is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InputError(f"url {url!r} is not a valid URL") from None
    if not host:
        raise InputError(f"url {url!r} has no host")
    if parts.username or parts.password:
        raise InputError("url must not carry a user name or password")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and _is_loopback(host):
        if allow_http_loopback:
            return url
        raise InputError(
            f"url {url!r} uses plain http: a loopback http receiver is allowed only when "
            "WEBHOOK_ALLOW_HTTP_LOOPBACK=true (development); use https"
        )
    raise InputError(f"url {url!r} must be https (the changes carry calendar data)")


def check_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise InputError(f"description must be a string of at most {MAX_DESCRIPTION} characters")
    return value


@dataclass(frozen=True)
class Subscriber:
    """A registered receiver of the change feed (its secret is kept apart, never in here)."""

    id: str
    url: str
    filter: Filter = field(default_factory=Filter)
    description: str = ""
    created_at: datetime | None = None
    enabled: bool = True
    disabled_reason: str = ""
    failing: bool = False
    failing_since: datetime | None = None
    last_error: str = ""
    last_delivered_at: datetime | None = None

    @property
    def status(self) -> str:
        if not self.enabled:
            return "disabled"
        return "failing" if self.failing else "ok"


@dataclass(frozen=True)
class PairCursor:
    """Delivery state of one (subscriber, mailbox) pair: the last sequence delivered (or
    dead-lettered), the attempts at the next one, and the lease of whoever is delivering."""

    subscriber_id: str
    partition: str  # the mailbox partition, `tenant_user`
    delivered: int = -1
    attempt: int = 0
    next_at: datetime | None = None
    lease_owner: str = ""
    lease_until: datetime | None = None
    last_error: str = ""
    last_status: int | None = None
    dead_letters: int = 0
    etag: str = ""

    def leased_by_other(self, owner: str, now: datetime) -> bool:
        return bool(
            self.lease_owner
            and self.lease_owner != owner
            and self.lease_until is not None
            and self.lease_until > now
        )

    def waiting(self, now: datetime, slack: timedelta = timedelta(seconds=5)) -> bool:
        """True while a retry is scheduled for later than now (give or take clock slack)."""
        return self.next_at is not None and self.next_at > now + slack


@dataclass(frozen=True)
class WorkItem:
    """A delivery queue message: deliver what (subscriber, mailbox) is owed."""

    subscriber_id: str
    tenant_id: str
    user_id: str
    calendar: str = ""  # the calendar's handle ("" = the default calendar)

    def to_json(self) -> dict[str, str]:
        out = {
            "subscriber": self.subscriber_id,
            "tenantId": self.tenant_id,
            "mailboxId": self.user_id,
        }
        if self.calendar:
            out["calendar"] = self.calendar
        return out


def decode_work_item(data: Any) -> WorkItem:
    """A delivery queue message's JSON as a WorkItem; InputError naming a bad field."""
    if not isinstance(data, dict):
        raise InputError("a delivery work item must be a JSON object")
    values: list[str] = []
    for name in ("subscriber", "tenantId", "mailboxId"):
        value = data.get(name)
        if not isinstance(value, str) or not value or len(value) > 200:
            raise InputError(f"delivery work item field {name} must be a non-empty string")
        values.append(value)
    calendar = data.get("calendar", "")
    if not isinstance(calendar, str) or (calendar and not CALENDAR_HANDLE.match(calendar)):
        raise InputError("delivery work item field calendar must be a calendar handle")
    return WorkItem(values[0], values[1], values[2], calendar)


def plan_replay_range(data: Any) -> tuple[str, str, int, int]:
    """A replay request naming a range of the feed: (tenant, mailbox, from, to) sequences,
    inclusive; InputError naming the bad field."""
    from shared.core.feed import parse_sequence

    if not isinstance(data, dict):
        raise InputError("the body must be a JSON object")
    tenant, mailbox = data.get("tenantId"), data.get("mailboxId")
    if not isinstance(tenant, str) or not _GUID.match(tenant):
        raise InputError("tenantId (a tenant id, GUID) is required for a range replay")
    if not isinstance(mailbox, str) or not _GUID.match(mailbox):
        raise InputError("mailboxId (the user id, GUID) is required for a range replay")
    low = parse_sequence(str(data.get("fromSequence", "0")), "fromSequence")
    to = data.get("toSequence")
    high = parse_sequence(str(to), "toSequence") if to is not None else 10**20 - 1
    if high < low:
        raise InputError("toSequence must not be below fromSequence")
    return tenant.lower(), mailbox.lower(), low, high


COALESCE_SECONDS = 1.0
_FORGET_AFTER = 4096  # pairs remembered before the stale ones are let go


SWEEP_RECENT = timedelta(minutes=15)  # three runs of the 5-minute sweep


def sweep_is_full(now: datetime) -> bool:
    """The sweep's first run of each hour reads every mailbox's latest sequence."""
    return now.minute < 5


def sweep_checks(
    last_active: Sequence[datetime | None], cursors: Sequence[PairCursor], now: datetime
) -> bool:
    """Whether a sweep that is not full reads this mailbox's latest sequence: a pair of it is
    retrying, leased or waiting, or it had a round or a notification within SWEEP_RECENT.
    A change whose work item was lost was written by a round (whose end, or whose retry's end,
    stamps `last_sync`) or by a write (its Graph notification brings a round): either way the
    mailbox is recent at the next runs; the hourly full sweep catches what a longer outage
    hid. So an idle tenant's sweep reads its listings, not a row per mailbox."""
    if any(c.attempt or c.next_at is not None or c.lease_owner for c in cursors):
        return True
    return any(t is not None and now - t < SWEEP_RECENT for t in last_active)


@dataclass
class Coalescer:
    """Which writes need a delivery work item for a pair (the changes of a burst share one):
    the first write queues one at once; a write within `window` seconds of it queues one
    delayed to the end of the window (whole seconds, as the queue takes them); a write while
    that delayed one is still invisible queues none, since that item, running later, reads the
    log after the write. Pure: `now` is a monotonic clock's seconds; one per process."""

    window: float = COALESCE_SECONDS
    _sent: dict[tuple[str, str], float] = field(default_factory=dict)
    _covered: dict[tuple[str, str], float] = field(default_factory=dict)

    def plan(self, pair: tuple[str, str], now: float) -> float | None:
        """The delay to queue the pair's item with, or None: one already queued covers it."""
        covered = self._covered.get(pair)
        if covered is not None and now < covered:
            return None
        sent = self._sent.get(pair)
        if sent is not None and now - sent < self.window:
            delay = float(-(-(self.window - (now - sent)) // 1))  # rounded up to a second
            self._covered[pair] = now + delay
            return delay
        if len(self._sent) > _FORGET_AFTER:
            self._sent = {p: t for p, t in self._sent.items() if now - t < self.window}
            self._covered = {p: t for p, t in self._covered.items() if t > now}
        self._sent[pair] = now
        return 0.0

    def forget(self, pair: tuple[str, str]) -> None:
        """The item could not be queued: the pair's next write queues one again."""
        self._sent.pop(pair, None)
        self._covered.pop(pair, None)
