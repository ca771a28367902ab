"""A small synchronous client of the control API (`/_sim/...`), for tests, demo and benchmarks.

Rule: one method per control action, plain dicts in and out; a refused call raises
`ControlError` carrying the simulator's message. `wait_for` polls a condition with a deadline
(never a bare sleep) and is how tests wait for asynchronous deliveries.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

T = TypeVar("T")


def _in(path: str, calendar: str) -> str:
    return f"{path}?{urlencode({'calendar': calendar})}" if calendar else path


class ControlError(RuntimeError):
    """The control API refused a call (status and message inside)."""


class SimClient:
    def __init__(self, control_url: str, ca_pem_path: str | Path, *, timeout: float = 30.0) -> None:
        context = ssl.create_default_context(cafile=str(ca_pem_path))
        self._http = httpx.Client(base_url=control_url, verify=context, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            raise ControlError(f"{method} /_sim{path} -> {response.status_code}: {response.text}")
        return response.json()

    # --- arranging -------------------------------------------------------------------------
    def seed(self, **body: Any) -> dict[str, Any]:
        """tenants, apps, consents, users, events, secrets, vault_tenant (see README.md)."""
        return self._call("POST", "/seed", body)  # type: ignore[no-any-return]

    def grant_consent(self, tenant: str, client_id: str, roles: list[str]) -> None:
        self._call("POST", "/consents", {"tenant": tenant, "client_id": client_id, "roles": roles})

    def revoke_consent(self, tenant: str, client_id: str) -> None:
        self._call("POST", "/consents", {"tenant": tenant, "client_id": client_id, "revoke": True})

    def restrict_access(self, tenant: str, client_id: str, users: list[str] | None) -> None:
        """An application access policy: the app reaches only these mailboxes (None lifts it)."""
        self._call(
            "POST", "/access-policies", {"tenant": tenant, "client_id": client_id, "users": users}
        )

    def add_app_secret(self, client_id: str, value: str, expires: Any = None) -> None:
        self._call("POST", f"/apps/{client_id}/secrets", {"value": value, "expires": expires})

    def add_calendar(self, user: str, name: str, *, can_edit: bool = True) -> str:
        """One more calendar of the mailbox ("New calendar" in Outlook); its Graph id."""
        body = {"name": name, "can_edit": can_edit}
        return self._call("POST", f"/users/{user}/calendars", body)["id"]  # type: ignore[no-any-return]

    # --- acting as a person in Outlook -----------------------------------------------------
    # `calendar` (a Graph calendar id or a name) picks a calendar other than the default one.
    def create_event(
        self, user: str, event: dict[str, Any], *, calendar: str = ""
    ) -> dict[str, Any]:
        return self._call("POST", _in(f"/users/{user}/events", calendar), event)  # type: ignore[no-any-return]

    def bulk_events(self, user: str, count: int, start: str, **opts: Any) -> list[str]:
        body = {"count": count, "start": start, **opts}
        return self._call("POST", f"/users/{user}/events/bulk", body)["ids"]  # type: ignore[no-any-return]

    def update_event(
        self, user: str, event_id: str, patch: dict[str, Any], *, calendar: str = ""
    ) -> dict[str, Any]:
        body = {"id": event_id, "patch": patch}
        path = _in(f"/users/{user}/events/update", calendar)
        return self._call("POST", path, body)  # type: ignore[no-any-return]

    def delete_event(self, user: str, event_id: str, *, calendar: str = "") -> None:
        self._call("POST", _in(f"/users/{user}/events/delete", calendar), {"id": event_id})

    def cancel_event(self, user: str, event_id: str, comment: str = "") -> None:
        self._call("POST", f"/users/{user}/events/cancel", {"id": event_id, "comment": comment})

    def move_event(self, user: str, event_id: str) -> dict[str, Any]:
        """Move an event to another folder and back: a new REST id, the same immutable id."""
        return self._call("POST", f"/users/{user}/events/move", {"id": event_id})  # type: ignore[no-any-return]

    def invite(self, user: str, organizer: str, event_id: str) -> dict[str, Any]:
        """Put an attendee's copy of the organizer's meeting (same iCalUId) in `user`'s calendar."""
        body = {"from": organizer, "id": event_id}
        return self._call("POST", f"/users/{user}/events/invite", body)  # type: ignore[no-any-return]

    def list_events(self, user: str, *, calendar: str = "") -> list[dict[str, Any]]:
        return self._call("GET", _in(f"/users/{user}/events/list", calendar))["value"]  # type: ignore[no-any-return]

    # --- faults, knobs, time -----------------------------------------------------------------
    def knobs(self, **values: Any) -> dict[str, Any]:
        return self._call("POST", "/knobs", values)  # type: ignore[no-any-return]

    def fault(self, status: int, count: int = 1, **match: Any) -> None:
        self._call("POST", "/faults", {"status": status, "count": count, **match})

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def advance(self, seconds: float) -> str:
        return self._call("POST", "/clock/advance", {"seconds": seconds})["now"]  # type: ignore[no-any-return]

    def now(self) -> str:
        return self._call("GET", "/clock")["now"]  # type: ignore[no-any-return]

    def expire_delta(self, user: str, token: str | None = None) -> int:
        return self._call("POST", f"/users/{user}/delta/expire", {"token": token})["expired"]  # type: ignore[no-any-return]

    def lifecycle(self, subscription_id: str, event: str) -> bool:
        path = f"/subscriptions/{subscription_id}/lifecycle"
        return self._call("POST", path, {"event": event})["sent"]  # type: ignore[no-any-return]

    def bulk_subscriptions(self, user: str, client_id: str, count: int) -> int:
        body = {"user": user, "client_id": client_id, "count": count}
        return self._call("POST", "/subscriptions/bulk", body)["count"]  # type: ignore[no-any-return]

    def seed_subscriptions(
        self, users: list[str], client_id: str, **opts: Any
    ) -> dict[str, list[str]]:
        """One live subscription per user (no handshake): {user: [id]}; opts: notification_url,
        lifecycle_url, client_state, lifetime_s, spread_s."""
        body = {"users": users, "client_id": client_id, "count": 1, **opts}
        return self._call("POST", "/subscriptions/bulk", body)["ids"]  # type: ignore[no-any-return]

    def reset_throttle(self) -> None:
        self._call("POST", "/throttle/reset")

    # --- observing ---------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        return self._call("GET", "/counters")  # type: ignore[no-any-return]

    def reset_counters(self) -> None:
        self._call("POST", "/counters/reset")

    def subscriptions(self) -> list[dict[str, Any]]:
        return self._call("GET", "/subscriptions")["value"]  # type: ignore[no-any-return]

    def deliveries(self, since: int = 0) -> dict[str, Any]:
        return self._call("GET", f"/deliveries?since={since}")  # type: ignore[no-any-return]

    def wait_for(self, condition: Callable[[], T], *, timeout: float = 10.0, what: str = "") -> T:
        """Poll `condition` until it returns a truthy value or the deadline passes."""
        return wait_for(condition, timeout=timeout, what=what)


def wait_for(
    condition: Callable[[], T], *, timeout: float = 10.0, what: str = "", interval: float = 0.02
) -> T:
    """Poll `condition` until it returns a truthy value; AssertionError naming `what` and the
    last value at the deadline (tests, the demo and benchmarks all wait this way)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what or condition}: {value!r}"
            )
        time.sleep(interval)
