"""Pure: the core's data types. Frozen dataclasses, no I/O; the adapters turn them into Table
entities, queue messages and Graph requests, and back.

Names keep Graph's words in snake_case (subscription_id, client_state, delta_link, change_type).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple

Mode = Literal["webhook", "poll"]
PrivateHandling = Literal["mirror", "mask", "exclude"]
BodyType = Literal["html", "text"]

MIN_POLL_SECONDS = 60  # Microsoft forbids polling faster than once a minute per mailbox.


# A calendar other than the mailbox's default one is named by a short handle the caller
# chooses at enrolment: Graph calendar ids hold '/', '+' and '=' and run to ~150 characters,
# too long for a route or a Table key; the Graph id is kept on the mailbox row.
CALENDAR_HANDLE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
CALENDAR_SEPARATOR = ":"  # user id + ":" + handle: mailbox RowKey and "now" list entries
DEFAULT_CALENDAR_NAME = "calendar"  # the feed's calendarId of the default calendar


@dataclass(frozen=True)
class MailboxKey:
    """A mirrored calendar: the tenant (GUID, lower case), the mailbox's user object id (GUID,
    lower case) and the calendar's handle ("" = the mailbox's default calendar, so rows,
    partitions, queue messages and routes of default calendars read as they always did)."""

    tenant_id: str
    user_id: str
    calendar: str = ""

    @property
    def partition(self) -> str:
        """The `tenant+user` partition used by the cursors, events and changes tables; a
        non-default calendar's is `tenant_user:handle`."""
        return f"{self.tenant_id}_{self.label}"

    @property
    def label(self) -> str:
        """The user id, or `user:handle` for a non-default calendar (mailbox RowKey, logs)."""
        if not self.calendar:
            return self.user_id
        return f"{self.user_id}{CALENDAR_SEPARATOR}{self.calendar}"

    @property
    def calendar_name(self) -> str:
        """The calendar as the feed names it: its handle, or "calendar" for the default."""
        return self.calendar or DEFAULT_CALENDAR_NAME

    @property
    def mailbox(self) -> MailboxKey:
        """The mailbox's default calendar (the user the calendar belongs to)."""
        return MailboxKey(self.tenant_id, self.user_id)

    @classmethod
    def from_label(cls, tenant_id: str, label: str) -> MailboxKey:
        """Read `label` back ("user" or "user:handle")."""
        user, _, calendar = label.partition(CALENDAR_SEPARATOR)
        return cls(tenant_id, user, calendar)


@dataclass(frozen=True)
class MailboxOptions:
    """Per-mailbox sync options, validated by `core.options.parse_options`."""

    weeks_back: int = 4
    weeks_ahead: int = 52
    mode: Mode = "webhook"
    poll_seconds: int = 300
    private: PrivateHandling = "mirror"
    body_type: BodyType = "html"
    time_zone: str = "UTC"
    reference: str = ""  # the caller's own name for the mailbox (its downstream user), or ""
    # Write options: applied to the events calsync creates (core.writes).
    reminder_on_new: bool = True  # Outlook's own default for a new event
    reminder_minutes: int = 15
    write_time_zone: str = ""  # "" = `time_zone`
    write_private: bool = False
    write_body_type: BodyType = "html"


@dataclass(frozen=True)
class Window:
    """The fixed calendarView window of a delta cursor, [start, end) in UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class MirrorEvent:
    """One calendar item as mirrored: a single event, an occurrence, an exception or a series
    master.

    `properties` are Table-ready (str, int, bool, float, datetime), each value within the 64 KiB
    property limit; `change_key` and `content_hash` decide whether an upsert is needed.
    """

    event_id: str
    change_key: str
    content_hash: str
    properties: dict[str, Any] = field(default_factory=dict)
    # The event as the change feed shows it (core.feed.event_json), and a digest per field of
    # it (JSON text, stored on the row) from which the next change's changedFields are found.
    feed: dict[str, Any] = field(default_factory=dict)
    digests: str = ""


class StoredVersion(NamedTuple):
    """What the mirror holds of an event, as far as planning a page needs it: the version
    (change_key, content_hash) that decides an upsert, and what a change event reports."""

    change_key: str
    content_hash: str
    digests: str = ""  # JSON {field: digest} of the feed form; "" on rows older than the feed
    series_master_id: str = ""
    ical_uid: str = ""
    kind: str = ""  # Graph's type: singleInstance, occurrence, exception or seriesMaster
    hidden: str = ""  # "True" when it lies in the window's margin, outside the user's window


@dataclass(frozen=True)
class PlannedChange:
    """One change of the mirror, before the store gives it its sequence and id."""

    type: Literal["created", "updated", "deleted"]
    event_id: str
    change_key: str = ""
    series_master_id: str = ""
    ical_uid: str = ""
    changed_fields: tuple[str, ...] | None = None
    event: dict[str, Any] | None = None
    # The row and the feed can differ for an event in the window's margin (core.window): a
    # change there writes the row but no change event (`emit` False), and an event leaving the
    # user's window is `deleted` on the feed while its row stays, hidden (`keep_row`).
    emit: bool = True
    keep_row: bool = False


@dataclass(frozen=True)
class DeltaItem:
    """An entry of a calendarView/delta page: an event, or a removal (`removed` = its reason)."""

    event_id: str
    event: dict[str, Any] | None = None
    removed: str | None = None


@dataclass(frozen=True)
class DeltaPageData:
    """A decoded delta page: its items and exactly one of next_link / delta_link."""

    items: tuple[DeltaItem, ...]
    next_link: str | None = None
    delta_link: str | None = None


@dataclass(frozen=True)
class ChangeNotification:
    """One validated change notification item (a hint: never trusted as state)."""

    subscription_id: str
    tenant_id: str
    change_type: str
    resource: str
    client_state: str
    event_id: str | None = None


@dataclass(frozen=True)
class LifecycleNotification:
    """One lifecycle notification item: reauthorizationRequired, subscriptionRemoved, missed."""

    subscription_id: str
    tenant_id: str
    lifecycle_event: str
    client_state: str


class Trigger(StrEnum):
    """Why a sync round was asked for (logged; `SAFETY_NET` adds a drift check)."""

    NOTIFICATION = "notification"
    LIFECYCLE = "lifecycle"  # with lifecycle_event and subscription_id
    POLL = "poll"
    RESYNC = "resync"
    ENROL = "enrol"
    OPTIONS = "options"
    RESUBSCRIBED = "resubscribed"
    RECREATED = "subscription recreated"
    EXPIRED = "subscription expired"
    SAFETY_NET = "safety-net"
    ROLL = "window roll"  # the daily timer: slide the user's window, safety net when due
    RESTORED = "credential restored"


@dataclass(frozen=True)
class SyncRequest:
    """A queue message asking for one delta round of one mailbox (duplicates fold together).

    A lifecycle request names Graph's event and the subscription; the worker steps the mailbox's
    state machine with them (reauthorize, recreate) before the round."""

    tenant_id: str
    user_id: str
    trigger: Trigger
    full: bool = False  # True: discard the cursor and resync the whole window with a diff
    requested_at: str = ""  # ISO 8601 UTC: lets the worker fold requests older than its last sync
    lifecycle_event: str = ""  # Graph's lifecycleEvent (an open set: kept as a string)
    subscription_id: str = ""
    attempt: int = 0  # rounds of this request that failed so far (backoff; see core.rounds)
    traceparent: str = ""  # W3C trace context of the notification or timer (core.tracing)
    calendar: str = ""  # the calendar's handle ("" = the default calendar)

    @property
    def mailbox(self) -> MailboxKey:
        return MailboxKey(self.tenant_id, self.user_id, self.calendar)


@dataclass(frozen=True)
class SubscriptionRecord:
    """What we know of one Graph subscription of one mailbox."""

    subscription_id: str
    tenant_id: str
    user_id: str
    resource: str
    expiration: datetime
    client_state_digest: str
    last_renewed: datetime | None = None  # the last renewal PATCH (creation is not one)
    last_reauthorized: datetime | None = None
    last_lifecycle_event: str = ""  # the last lifecycle event acted on (Graph's lifecycleEvent)
    last_lifecycle_at: datetime | None = None  # when it was acted on
    etag: str = field(default="", compare=False)  # the stored row's ETag, when read from storage
    calendar: str = ""  # the calendar's handle ("" = the default calendar)

    @property
    def mailbox(self) -> MailboxKey:
        return MailboxKey(self.tenant_id, self.user_id, self.calendar)
