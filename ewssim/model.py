"""The simulator's state: service accounts with their impersonation grants, mailboxes with one
calendar each, appointments (single or recurring, with modified and deleted occurrences), the
change log SyncFolderItems reads, and the fault knobs (throttling, invalid sync states, denied
calendars).

Rules (harsher than the docs where they are vague):
- A sync state names the mailbox, its sync generation and a position in the change log; a state
  of another mailbox, of an older generation (after `invalidate_sync`) or not in our format is
  ErrorInvalidSyncStateData.
- Changes are folded per item since the state: created then deleted in the gap is not reported,
  created then updated is one Create, anything else updated is one Update.
- Occurrence ids are opaque and distinct from the master's; an occurrence's ChangeKey changes
  with its master's.
- Writes (CreateItem, UpdateItem, DeleteItem, CancelCalendarItem): an update whose ChangeKey is
  not the item's current one, under ConflictResolution NeverOverwrite, is
  ErrorIrresolvableConflict and changes nothing; a new recurrence pattern drops the series'
  exceptions and deleted occurrences (Exchange does); updating an occurrence makes it an
  exception, deleting one adds it to the deleted occurrences. Every invitation, update and
  cancellation Exchange would send is recorded in `World.sent` (none with SendToNone).
- Time is the virtual clock's (`World.clock`): a sync state older than SYNC_STATE_DAYS is
  ErrorInvalidSyncStateData, and a push subscription quiet for its StatusFrequency gets a
  StatusEvent.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from graphsim.runtime.clock import VirtualClock

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Exchange does not document a lifetime; a week is the harsher reading (clients must cope).
SYNC_STATE_DAYS = 7


class EwsFault(Exception):
    """An EWS error: `soap_fault` ones are SOAP faults (HTTP 500), the others an error
    response message (HTTP 200) of the operation."""

    def __init__(self, code: str, message: str, *, soap_fault: bool = False, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.soap_fault, self.extra = code, message, soap_fault, extra


@dataclass
class Recurrence:
    """Every `interval` days/weeks/months (years: every year), from `start_date`, for `count`
    occurrences or until `end_date` (inclusive). Monthly and yearly patterns fall on
    `day_of_month` (the month's last day when it is shorter, as Exchange does), or on the
    `week_index`-th (1-4, 5 = last) `days_of_week[0]`; yearly ones in `month` (1-12)."""

    pattern: str  # daily | weekly | absoluteMonthly | relativeMonthly | absolute/relativeYearly
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    start_date: date | None = None
    count: int | None = None
    end_date: date | None = None
    day_of_month: int = 0
    week_index: int = 0
    month: int = 0


@dataclass
class Appointment:
    item_id: str
    change_key: str
    uid: str
    subject: str
    start: datetime
    end: datetime
    time_zone: str = "UTC"  # a Windows zone id, as Exchange keeps it
    is_all_day: bool = False
    body: str = ""
    body_type: str = "HTML"
    location: str = ""
    sensitivity: str = "Normal"
    free_busy: str = "Busy"
    importance: str = "Normal"
    organizer: tuple[str, str] = ("", "")
    required: tuple[tuple[str, str, str], ...] = ()  # (name, address, response)
    optional: tuple[tuple[str, str, str], ...] = ()
    categories: tuple[str, ...] = ()
    reminder_minutes: int = 15
    reminder_set: bool = True
    is_cancelled: bool = False
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    recurrence: Recurrence | None = None
    deleted: set[datetime] = field(default_factory=set)  # original starts
    modified_occurrences: dict[datetime, dict[str, Any]] = field(default_factory=dict)
    # Extended properties: (property set id lower-cased, name, type) -> value.
    extended: dict[tuple[str, str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class Instance:
    """One appointment as a CalendarView shows it: a single, an occurrence or an exception."""

    item_id: str
    kind: str  # Single | Occurrence | Exception | RecurringMaster
    appointment: Appointment
    original_start: datetime | None = None
    index: int = 0

    @property
    def change_key(self) -> str:
        """An occurrence's ChangeKey follows its master's; an exception's is its master's."""
        a = self.appointment
        return a.change_key if self.kind != "Occurrence" else f"{a.change_key}{self.index:04d}"


@dataclass
class Mailbox:
    smtp: str
    calendar_id: str
    items: dict[str, Appointment] = field(default_factory=dict)
    log: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, item id, kind)
    generation: int = 1
    calendar_denied: bool = False


@dataclass
class PushSubscription:
    """A push subscription on one mailbox's calendar: Exchange POSTs SendNotification to
    `url` for every change and a StatusEvent every `status_minutes` when quiet."""

    subscription_id: str
    smtp: str
    url: str
    status_minutes: int
    watermark: int = 0
    failures: int = 0
    last_sent: float = 0.0  # virtual time of the last notification sent


@dataclass
class ServiceAccount:
    username: str  # DOMAIN\user or user@domain
    password: str
    impersonates: tuple[str, ...] = ()  # SMTP addresses, or "*" for every mailbox


def _new_id(kind: str) -> str:
    return base64.b64encode(f"{kind}:{secrets.token_hex(12)}".encode()).decode()


def occurrence_id(master_id: str, index: int) -> str:
    return base64.b64encode(f"occ|{master_id}|{index}".encode()).decode()


def parse_occurrence_id(item_id: str) -> tuple[str, int] | None:
    try:
        text = base64.b64decode(item_id, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    parts = text.split("|")
    if len(parts) != 3 or parts[0] != "occ" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _day_in(rec: Recurrence, year: int, month: int) -> date:
    """The pattern's day in one month."""
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    if rec.pattern.startswith("absolute"):
        return date(year, month, min(rec.day_of_month, last))
    weekday = WEEKDAYS.index(rec.days_of_week[0])
    if rec.week_index >= 5:  # the last one
        day = date(year, month, last)
        return day - timedelta(days=(day.weekday() - weekday) % 7)
    day = date(year, month, 1)
    day += timedelta(days=(weekday - day.weekday()) % 7)
    return day + timedelta(weeks=rec.week_index - 1)


def _dates(rec: Recurrence, first: date) -> Iterator[date]:
    """Every date of the pattern from `first`, unbounded (the caller stops)."""
    if rec.pattern == "daily":
        for n in itertools.count():
            yield first + timedelta(days=n * rec.interval)
    elif rec.pattern.endswith(("Monthly", "Yearly")):
        yearly = rec.pattern.endswith("Yearly")
        step = 12 if yearly else rec.interval
        month0 = first.year * 12 + ((rec.month or first.month) if yearly else first.month) - 1
        for n in itertools.count():
            year, month = divmod(month0 + n * step, 12)
            day = _day_in(rec, year, month + 1)
            if day >= first:
                yield day
    else:
        days = {WEEKDAYS.index(d) for d in rec.days_of_week} or {first.weekday()}
        week0 = first - timedelta(days=first.weekday())
        for w in itertools.count():
            monday = week0 + timedelta(weeks=w * rec.interval)
            for d in sorted(days):
                day = monday + timedelta(days=d)
                if day >= first:
                    yield day


def expand(appt: Appointment, limit: date = date(9999, 1, 1)) -> Iterator[tuple[int, datetime]]:
    """(1-based index, original start) of the series' occurrences up to `limit`, lazily."""
    rec = appt.recurrence
    if rec is None:
        return
    first = rec.start_date or appt.start.date()
    for index, day in enumerate(_dates(rec, first), 1):
        if rec.count is not None and index > rec.count:
            return
        if (rec.end_date is not None and day > rec.end_date) or day > limit:
            return
        yield index, datetime.combine(day, appt.start.timetz())


class World:
    """Everything the simulator knows; one lock guards it (handlers are quick)."""

    def __init__(self, *, server_version: str = "Exchange2016") -> None:
        self.lock = threading.RLock()
        self.server_version = server_version
        self.accounts: dict[str, ServiceAccount] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.seq = itertools.count(1)
        self.busy: dict[str, list[int]] = {}  # smtp or "*" -> back-off ms of the next answers
        self.calls: dict[str, int] = {}
        self.garbled = 0  # the next answers are cut short (malformed SOAP)
        self.clock = VirtualClock()
        # What Exchange sent on the mailboxes' behalf: {"smtp", "kind" (request, update,
        # cancellation), "to" (addresses), "item", "subject"}.
        self.sent: list[dict[str, Any]] = []
        self.subscriptions: dict[str, PushSubscription] = {}
        # (subscription id, event element, item id or ""): what delivery sends next
        self.outbox: list[tuple[str, str, str]] = []

    # --- accounts and mailboxes -------------------------------------------------------------
    def add_account(self, username: str, password: str, impersonates: tuple[str, ...]) -> None:
        with self.lock:
            self.accounts[username.lower()] = ServiceAccount(username, password, impersonates)

    def find_account(self, username: str) -> ServiceAccount | None:
        name = username.lower()
        with self.lock:
            if name in self.accounts:
                return self.accounts[name]
            # NTLM names the user as DOMAIN\user; accept the bare user of a DOMAIN\user account.
            for key, account in self.accounts.items():
                if key.split("\\")[-1] == name.split("\\")[-1]:
                    return account
        return None

    def add_mailbox(self, smtp: str) -> Mailbox:
        with self.lock:
            box = self.mailboxes.get(smtp.lower())
            if box is None:
                box = Mailbox(smtp.lower(), _new_id("folder"))
                self.mailboxes[box.smtp] = box
            return box

    def mailbox(self, smtp: str) -> Mailbox:
        box = self.mailboxes.get(smtp.lower())
        if box is None:
            raise EwsFault(
                "ErrorNonExistentMailbox",
                f"The SMTP address has no mailbox associated with it: {smtp}",
                soap_fault=True,
            )
        return box

    def check_impersonation(self, account: ServiceAccount, smtp: str) -> Mailbox:
        box = self.mailbox(smtp)
        if "*" not in account.impersonates and smtp.lower() not in {
            s.lower() for s in account.impersonates
        }:
            raise EwsFault(
                "ErrorImpersonateUserDenied",
                "The account does not have permission to impersonate the requested user.",
                soap_fault=True,
            )
        return box

    # --- appointments ----------------------------------------------------------------------
    def _touch(self, box: Mailbox, item_id: str, kind: str) -> None:
        box.log.append((next(self.seq), item_id, kind))
        event = {"create": "CreatedEvent", "update": "ModifiedEvent", "delete": "DeletedEvent"}
        for sub in self.subscriptions.values():
            if sub.smtp == box.smtp:
                self.outbox.append((sub.subscription_id, event[kind], item_id))

    # --- push subscriptions ----------------------------------------------------------------
    def subscribe(self, box: Mailbox, url: str, status_minutes: int) -> PushSubscription:
        if not url.startswith("https://"):
            raise EwsFault("ErrorInvalidPushSubscriptionUrl", "The push URL must be https.")
        if not 1 <= status_minutes <= 1440:
            raise EwsFault(
                "ErrorInvalidArgument", "StatusFrequency must be between 1 and 1440 minutes."
            )
        sub = PushSubscription(
            _new_id("sub"), box.smtp, url, status_minutes, last_sent=self.clock.timestamp()
        )
        self.subscriptions[sub.subscription_id] = sub
        return sub

    def unsubscribe(self, subscription_id: str) -> None:
        if self.subscriptions.pop(subscription_id, None) is None:
            raise EwsFault("ErrorSubscriptionNotFound", "The specified subscription was not found.")

    def keepalive(self, smtp: str) -> int:
        """Queue a StatusEvent for every subscription of `smtp` (the status frequency's
        keep-alive, sent now instead of after its minutes)."""
        with self.lock:
            subs = [s for s in self.subscriptions.values() if s.smtp == smtp.lower()]
            self.outbox.extend((s.subscription_id, "StatusEvent", "") for s in subs)
            return len(subs)

    def create(self, smtp: str, **fields: Any) -> Appointment:
        with self.lock:
            box = self.mailbox(smtp)
            now = self.clock.now()
            appt = Appointment(
                item_id=_new_id("item"),
                change_key=secrets.token_hex(8),
                uid=fields.pop("uid", None) or secrets.token_hex(16).upper(),
                created=now,
                modified=now,
                **fields,
            )
            box.items[appt.item_id] = appt
            self._touch(box, appt.item_id, "create")
            return appt

    def update(self, smtp: str, item_id: str, **fields: Any) -> Appointment:
        with self.lock:
            box = self.mailbox(smtp)
            appt = self._item(box, item_id)
            changed = replace(
                appt, change_key=secrets.token_hex(8), modified=self.clock.now(), **fields
            )
            box.items[item_id] = changed
            self._touch(box, item_id, "update")
            return changed

    def delete(self, smtp: str, item_id: str) -> None:
        with self.lock:
            box = self.mailbox(smtp)
            self._item(box, item_id)
            del box.items[item_id]
            self._touch(box, item_id, "delete")

    def edit_occurrence(
        self, smtp: str, item_id: str, index: int, overrides: dict[str, Any]
    ) -> str:
        """Turn occurrence `index` into an exception with `overrides`; returns its id."""
        with self.lock:
            box = self.mailbox(smtp)
            appt = self._item(box, item_id)
            original = self._original_start(appt, index)
            appt.modified_occurrences[original] = {
                **appt.modified_occurrences.get(original, {}),
                **overrides,
            }
            self.update(smtp, item_id)
            return occurrence_id(item_id, index)

    def cancel_occurrence(self, smtp: str, item_id: str, index: int) -> None:
        with self.lock:
            box = self.mailbox(smtp)
            appt = self._item(box, item_id)
            original = self._original_start(appt, index)
            appt.deleted.add(original)
            appt.modified_occurrences.pop(original, None)
            self.update(smtp, item_id)

    def _original_start(self, appt: Appointment, index: int) -> datetime:
        for i, start in expand(appt):
            if i == index:
                return start
            if i > index:
                break
        raise EwsFault(
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
            f"Occurrence index {index} is out of the recurrence range.",
        )

    def _item(self, box: Mailbox, item_id: str) -> Appointment:
        appt = box.items.get(item_id)
        if appt is None:
            raise EwsFault("ErrorItemNotFound", "The specified object was not found in the store.")
        return appt

    # --- writes (the EWS operations') ------------------------------------------------------
    def resolve(self, box: Mailbox, item_id: str) -> tuple[Appointment, int | None]:
        """(the stored item, occurrence index or None) an ItemId names."""
        appt = box.items.get(item_id)
        if appt is not None:
            return appt, None
        inst = self.get(box, item_id)  # ErrorItemNotFound when neither
        return box.items[inst.appointment.item_id], inst.index

    def check_change_key(self, box: Mailbox, item_id: str, change_key: str | None) -> None:
        """A ChangeKey that is not the item's current one: ErrorIrresolvableConflict."""
        current = self.get(box, item_id).change_key
        if change_key is not None and change_key != current:
            raise EwsFault(
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key "
                "passed in the request does not match the current change key for the item.",
            )

    def write_item(self, smtp: str, item_id: str, fields: dict[str, Any]) -> str:
        """UpdateItem's effect: a single or master updated (a new recurrence drops the
        exceptions and deleted occurrences), or an occurrence made an exception; returns the
        id of what was updated."""
        with self.lock:
            box = self.mailbox(smtp)
            appt, index = self.resolve(box, item_id)
            if index is None:
                if "recurrence" in fields and fields["recurrence"] != appt.recurrence:
                    fields = {**fields, "deleted": set(), "modified_occurrences": {}}
                if "extended" in fields:
                    fields["extended"] = {**appt.extended, **fields["extended"]}
                self.update(smtp, appt.item_id, **fields)
                return appt.item_id
            if "recurrence" in fields:
                raise EwsFault(
                    "ErrorInvalidPropertySet",
                    "Recurrence cannot be set on an occurrence; update the recurring master.",
                )
            original = self._original_start(appt, index)
            before = appt.modified_occurrences.get(original, {})
            if "extended" in fields:
                fields["extended"] = {
                    **appt.extended,
                    **before.get("extended", {}),
                    **fields["extended"],
                }
            return self.edit_occurrence(smtp, appt.item_id, index, fields)

    def remove_item(self, smtp: str, item_id: str) -> Appointment:
        """DeleteItem's effect: a single or a whole series removed, or one occurrence added to
        the series' deleted occurrences; returns the item as it was."""
        with self.lock:
            box = self.mailbox(smtp)
            appt, index = self.resolve(box, item_id)
            if index is None:
                self.delete(smtp, appt.item_id)
                return appt
            inst = self.get(box, item_id)
            self.cancel_occurrence(smtp, appt.item_id, index)
            return inst.appointment

    def record_sent(self, smtp: str, kind: str, appt: Appointment) -> None:
        """What Exchange sends the attendees of `appt` (nothing when it has none)."""
        people = [address for _, address, _ in (*appt.required, *appt.optional)]
        if people:
            self.sent.append(
                {
                    "smtp": smtp.lower(),
                    "kind": kind,
                    "to": people,
                    "item": appt.item_id,
                    "subject": appt.subject,
                }
            )

    # --- reading ---------------------------------------------------------------------------
    def instances(self, box: Mailbox, start: datetime, end: datetime) -> list[Instance]:
        """What a CalendarView of [start, end) shows, by start."""
        out: list[Instance] = []
        for appt in box.items.values():
            if appt.recurrence is None:
                if appt.start < end and appt.end > start:
                    out.append(Instance(appt.item_id, "Single", appt))
                continue
            length = appt.end - appt.start
            for index, original in expand(appt, end.date() + timedelta(days=1)):
                if original in appt.deleted:
                    continue
                inst = self._occurrence(appt, index, original, length)
                if inst.appointment.start < end and inst.appointment.end > start:
                    out.append(inst)
        out.sort(key=lambda i: (i.appointment.start, i.item_id))
        return out

    def _occurrence(
        self, appt: Appointment, index: int, original: datetime, length: timedelta
    ) -> Instance:
        overrides = appt.modified_occurrences.get(original)
        body = replace(appt, start=original, end=original + length, recurrence=None)
        if overrides:
            body = replace(body, **overrides)
        kind = "Exception" if overrides else "Occurrence"
        return Instance(occurrence_id(appt.item_id, index), kind, body, original, index)

    def get(self, box: Mailbox, item_id: str) -> Instance:
        """A single, a master (RecurringMaster) or an occurrence by its id."""
        appt = box.items.get(item_id)
        if appt is not None:
            return Instance(item_id, "RecurringMaster" if appt.recurrence else "Single", appt)
        occ = parse_occurrence_id(item_id)
        if occ is not None and occ[0] in box.items:
            master = box.items[occ[0]]
            for index, original in expand(master):
                if index == occ[1] and original not in master.deleted:
                    return self._occurrence(master, index, original, master.end - master.start)
                if index > occ[1]:
                    break
        raise EwsFault("ErrorItemNotFound", "The specified object was not found in the store.")

    # --- SyncFolderItems -------------------------------------------------------------------
    def _state(self, box: Mailbox, base: int, head: int, offset: int) -> str:
        issued = int(self.clock.timestamp())
        raw = f"ewssim|{box.smtp}|{box.generation}|{base}|{head}|{offset}|{issued}"
        return base64.b64encode(raw.encode()).decode()

    def _parse_state(self, box: Mailbox, state: str) -> tuple[int, int, int]:
        bad = EwsFault(
            "ErrorInvalidSyncStateData",
            "Synchronization state data is corrupt or otherwise invalid.",
        )
        try:
            parts = base64.b64decode(state, validate=True).decode().split("|")
        except (ValueError, UnicodeDecodeError):
            raise bad from None
        if len(parts) != 7 or parts[0] != "ewssim" or parts[1] != box.smtp:
            raise bad
        if parts[2] != str(box.generation) or not all(p.isdigit() for p in parts[3:]):
            raise bad
        if self.clock.timestamp() - int(parts[6]) > SYNC_STATE_DAYS * 86400:
            raise bad  # expired: the client syncs from scratch
        return int(parts[3]), int(parts[4]), int(parts[5])

    def sync(
        self, box: Mailbox, state: str | None, max_changes: int
    ) -> tuple[list[tuple[str, str]], str, bool]:
        """(changes as (kind, item id), new state, includes last item in range)."""
        if not 1 <= max_changes <= 512:
            raise EwsFault("ErrorInvalidArgument", "MaxChangesReturned must be between 1 and 512.")
        if state:
            base, head, offset = self._parse_state(box, state)
        else:
            base, head, offset = 0, box.log[-1][0] if box.log else 0, 0
        if head == base and offset == 0 and state:
            head = box.log[-1][0] if box.log else base
        folded: dict[str, str] = {}
        for seq, item_id, kind in box.log:
            if seq <= base or seq > head:
                continue
            before = folded.get(item_id)
            if kind == "delete":
                if before == "create":
                    folded.pop(item_id)
                else:
                    folded[item_id] = "delete"
            elif kind == "create" or before == "create":
                folded[item_id] = "create"
            elif before == "delete":
                folded[item_id] = "update"  # cannot happen: ids are never reused
            else:
                folded[item_id] = "update"
        if not state:  # from scratch: what exists now, as creates
            folded = {i: "create" for i in folded if i in box.items}
        changes = list(folded.items())
        page = changes[offset : offset + max_changes]
        done = offset + max_changes >= len(changes)
        new_state = (
            self._state(box, head, head, 0)
            if done
            else self._state(box, base, head, offset + max_changes)
        )
        return [(kind, item_id) for item_id, kind in page], new_state, done

    def invalidate_sync(self, smtp: str) -> None:
        with self.lock:
            self.mailbox(smtp).generation += 1

    # --- throttling ------------------------------------------------------------------------
    def throttle(self, smtp: str, count: int, back_off_ms: int) -> None:
        with self.lock:
            self.busy.setdefault(smtp.lower() or "*", []).extend([back_off_ms] * count)

    def take_busy(self, smtp: str) -> int | None:
        with self.lock:
            for key in (smtp.lower(), "*"):
                queue = self.busy.get(key)
                if queue:
                    return queue.pop(0)
        return None
