"""End-to-end helpers: a mailbox enrolled in a running local stack, and the comparison of its
mirror with the simulator's calendar for the window, field by field."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from devhost.local.stack import Stack
from graphsim.client import wait_for as poll_until
from graphsim.testing import token_for
from shared.core.entity import join_properties
from shared.core.events import normalize_event
from shared.core.model import MailboxOptions, Window
from shared.core.options import parse_options
from shared.core.times import iso_utc
from shared.core.window import plan_window

T = TypeVar("T")
_IGNORED = {"event_id", "change_key", "content_hash"}


def wait_for(condition: Callable[[], T], *, timeout: float = 20.0, what: str = "") -> T:
    """graphsim's poll-until, with the longer default the end-to-end paths need."""
    return poll_until(condition, timeout=timeout, what=what, interval=0.1)


@dataclass
class Mailbox:
    """One enrolled calendar of the demo tenant: a fresh user's default calendar, or
    (`calendar` set: its handle; `calendar_id`: its Graph id) another calendar of a mailbox."""

    stack: Stack
    upn: str
    user_id: str
    options: dict[str, Any] = field(default_factory=dict)
    calendar: str = ""
    calendar_id: str = ""

    @property
    def path(self) -> str:
        return f"/mailboxes/{self.stack.tenant_id}/{self.user_id}"

    @property
    def params(self) -> dict[str, str]:
        """The query naming the calendar on the mailbox routes (none for the default one)."""
        return {"calendar": self.calendar} if self.calendar else {}

    def status(self) -> dict[str, Any]:
        with self.stack.admin() as api:
            response = api.get(self.path, params=self.params)
            response.raise_for_status()
            return response.json()  # type: ignore[no-any-return]

    def mirror(self) -> dict[str, dict[str, Any]]:
        with self.stack.admin() as api:
            response = api.get(self.path + "/events", params=self.params)
            response.raise_for_status()
            return {e["event_id"]: e for e in response.json()["value"]}

    # acting as a person in Outlook ----------------------------------------------------------
    def create(self, event: dict[str, Any]) -> str:
        made = self.stack.sim.control.create_event(self.upn, event, calendar=self.calendar_id)
        return str(made["id"])

    def update(self, event_id: str, patch: dict[str, Any]) -> None:
        self.stack.sim.control.update_event(self.upn, event_id, patch, calendar=self.calendar_id)

    def delete(self, event_id: str) -> None:
        self.stack.sim.control.delete_event(self.upn, event_id, calendar=self.calendar_id)

    # the truth ------------------------------------------------------------------------------
    def window(self) -> Window:
        now = datetime.now(UTC) + timedelta(seconds=self.stack.offset)
        return plan_window(now, parse_options(self.options))

    def truth(self) -> dict[str, dict[str, Any]]:
        """calendarView of the window, read from the simulator's Graph as the app would."""
        return calendar_view(self.stack, self.user_id, self.window(), self.calendar_id)

    def differences(self) -> list[str]:
        """What differs between the mirror and Graph for the window, property by property."""
        options: MailboxOptions = parse_options(self.options)
        truth, mirror = self.truth(), self.mirror()
        problems = [f"missing in mirror: {i}" for i in truth.keys() - mirror.keys()]
        problems += [f"extra in mirror: {i}" for i in mirror.keys() - truth.keys()]
        for event_id in truth.keys() & mirror.keys():
            expected = normalize_event(truth[event_id], options)
            stored = join_properties(mirror[event_id])
            if stored.get("change_key") != expected.change_key:
                problems.append(f"{event_id}: change_key {stored.get('change_key')!r}")
            want = join_properties(expected.properties)
            for name in sorted(want.keys() | (stored.keys() - _IGNORED)):
                if _norm(want.get(name)) != _norm(stored.get(name)):
                    problems.append(
                        f"{event_id}: {name} mirror={stored.get(name)!r} graph={want.get(name)!r}"
                    )
        return problems

    def converged(self, timeout: float = 20.0) -> None:
        """Wait until the mirror equals Graph for the window (fails with the differences)."""
        last: list[str] = []

        def equal() -> bool:
            nonlocal last
            last = self.differences()
            return not last

        try:
            wait_for(equal, timeout=timeout, what="mirror == graph")
        except AssertionError:
            raise AssertionError(
                "mirror differs from Graph:\n  " + "\n  ".join(last[:20])
            ) from None


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and value[10:11] in "T ":
        try:
            return iso_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    return value


def graph_token(stack: Stack) -> str:
    env = stack.env
    return token_for(
        stack.sim, stack.tenant_id, env["CLIENT_ID"], env["SECRET_GRAPH_CLIENT_SECRET"]
    )


def calendar_view(
    stack: Stack, user_id: str, window: Window, calendar_id: str = ""
) -> dict[str, dict[str, Any]]:
    """The window's instances (calendarView) and their series masters, as Graph gives them
    (of the calendar `calendar_id`, else of the default calendar)."""
    headers = {
        "Authorization": f"Bearer {graph_token(stack)}",
        "Prefer": 'IdType="ImmutableId", outlook.timezone="UTC", odata.maxpagesize=500',
    }
    where = f"/calendars/{quote(calendar_id, safe='')}" if calendar_id else ""
    url: str | None = f"{stack.sim.graph_base_url}/users/{user_id}{where}/calendarView"
    params: dict[str, str] | None = {
        "startDateTime": iso_utc(window.start),
        "endDateTime": iso_utc(window.end),
    }
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(verify=stack.sim.ssl_context(), timeout=60) as client:
        while url:
            response = client.get(url, params=params, headers=headers)
            response.raise_for_status()
            page = response.json()
            out |= {e["id"]: e for e in page["value"]}
            url, params = page.get("@odata.nextLink"), None
        # The mirror holds each series master that has an instance in the window, as Graph has it.
        for master_id in sorted(
            {str(e["seriesMasterId"]) for e in out.values() if e.get("seriesMasterId")}
        ):
            response = client.get(
                f"{stack.sim.graph_base_url}/users/{user_id}/events/{quote(master_id, safe='')}",
                headers=headers,
            )
            if response.status_code != 404:
                response.raise_for_status()
                out[master_id] = response.json()
    return out


def enrol(stack: Stack, options: dict[str, Any] | None = None, *, events: int = 0) -> Mailbox:
    """A new user in the demo tenant, enrolled, with its first sync done."""
    upn = f"user-{uuid.uuid4().hex[:10]}@contoso.example"
    seeded = stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": upn}])
    user_id = seeded["users"][upn].lower()
    mailbox = Mailbox(stack, upn, user_id, dict(options or {}))
    with stack.admin() as api:
        response = api.put(f"/mailboxes/{stack.tenant_id}/{upn}", json=options or {})
        assert response.status_code == 201, response.text
    wait_for(lambda: mailbox.status()["status"]["lastSync"], what="the first sync")
    return mailbox


def enrol_calendar(
    stack: Stack,
    owner: Mailbox,
    name: str,
    handle: str,
    options: dict[str, Any] | None = None,
) -> Mailbox:
    """Another calendar of `owner`'s mailbox, made in the simulator and enrolled by its name
    under `handle`, with its first sync done."""
    calendar_id = stack.sim.control.add_calendar(owner.upn, name)
    mailbox = Mailbox(stack, owner.upn, owner.user_id, dict(options or {}), handle, calendar_id)
    with stack.admin() as api:
        body = {"calendarName": name, **(options or {})}
        response = api.put(f"/mailboxes/{stack.tenant_id}/{owner.upn}:{handle}", json=body)
        assert response.status_code == 201, response.text
    wait_for(lambda: mailbox.status()["status"]["lastSync"], what="the first sync")
    return mailbox


def enrol_room(stack: Stack, options: dict[str, Any] | None = None) -> Mailbox:
    """A new room mailbox of the demo tenant, enrolled by its address (its own calendar)."""
    upn = f"room-{uuid.uuid4().hex[:10]}@contoso.example"
    seeded = stack.sim.control.seed(users=[{"tenant": stack.tenant_id, "upn": upn, "kind": "room"}])
    mailbox = Mailbox(stack, upn, seeded["users"][upn].lower(), dict(options or {}))
    with stack.admin() as api:
        response = api.put(f"/mailboxes/{stack.tenant_id}/{upn}", json=options or {})
        assert response.status_code == 201, response.text
    wait_for(lambda: mailbox.status()["status"]["lastSync"], what="the first sync")
    return mailbox


def at(days: int, hour: int, minutes: int = 0, *, length: int = 30) -> dict[str, Any]:
    """start/end of an event `days` from today at hour:minutes UTC, `length` minutes long."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = day + timedelta(days=days, hours=hour, minutes=minutes)
    end = start + timedelta(minutes=length)
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "start": {"dateTime": start.strftime(fmt), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime(fmt), "timeZone": "UTC"},
    }
