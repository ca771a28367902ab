"""Pure: how close the app's credential (client secret or certificate) is to expiring, and when
to say so. Warnings start 30 days before and step up at 14, 7 and 1 days (WARNING_DAYS); an
expired credential is `expired` (Entra refuses it: every mailbox of every tenant stops). No I/O;
`now` is passed in. A new secret or certificate must be added to the app registration and
stored in Key Vault before the old one expires:
https://learn.microsoft.com/entra/identity-platform/howto-create-service-principal-portal
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from shared.core.times import iso_utc, parse_iso

WARNING_DAYS = (30, 14, 7, 1)
Level = Literal["ok", "warning", "expired", "unknown", "none"]


@dataclass(frozen=True)
class CredentialExpiry:
    """What is known of the credential's expiry. `none`: nothing stored expires (managed
    identity); `unknown`: the store tells no expiry (no `exp` attribute, environment secrets)."""

    level: Level
    kind: str  # secret, certificate, managed_identity
    name: str = ""  # the secret's name, never its value
    expires_on: datetime | None = None
    days_left: int | None = None
    threshold: int | None = None  # the WARNING_DAYS step reached (30, 14, 7, 1)
    detail: str = ""
    registration: str = ""  # what the app registration's own list said (or why it was unread)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.level,
            "kind": self.kind,
            "name": self.name,
            "expiresOn": iso_utc(self.expires_on) if self.expires_on else None,
            "daysLeft": self.days_left,
            "threshold": self.threshold,
            "detail": self.detail,
            "registration": self.registration,
        }


def plan_expiry(
    kind: str, name: str, expires_on: datetime | None, now: datetime
) -> CredentialExpiry:
    """The level for a credential that expires at `expires_on` (None: unknown), seen at `now`.
    `days_left` counts whole days left (0: it expires within 24 hours)."""
    if kind == "managed_identity":
        return CredentialExpiry("none", kind, detail="managed identity: no stored secret expires")
    if expires_on is None:
        return CredentialExpiry(
            "unknown", kind, name, detail=f"the {kind} {name!r} has no expiry date in its store"
        )
    left = expires_on - now
    days = left.days  # floor: 23 h left is 0 days
    when = expires_on.astimezone(UTC).date().isoformat()
    if left.total_seconds() <= 0:
        return CredentialExpiry(
            "expired",
            kind,
            name,
            expires_on,
            days,
            0,
            f"the {kind} {name!r} expired on {when}: Entra refuses it; add a new one to the app "
            "registration and store it in Key Vault",
        )
    reached = [d for d in WARNING_DAYS if days <= d]
    if not reached:
        return CredentialExpiry(
            "ok", kind, name, expires_on, days, None, f"the {kind} {name!r} expires on {when}"
        )
    return CredentialExpiry(
        "warning",
        kind,
        name,
        expires_on,
        days,
        min(reached),
        f"the {kind} {name!r} expires on {when} ({days} day(s) left): add a new one to the app "
        "registration and store it in Key Vault before then",
    )


# ---- The app registration's own credentials (Graph GET /applications(appId=...)) ----------------


@dataclass(frozen=True)
class Registration:
    """The expiry the app registration gives the credential in use. `read`: found it;
    `unmatched`: the registration lists none like it; `unreadable`: not asked (why in detail)."""

    status: Literal["read", "unmatched", "unreadable"]
    expires_on: datetime | None
    detail: str


def _b64_bytes(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return None


def _end(item: Mapping[str, Any]) -> datetime | None:
    text = item.get("endDateTime")
    return parse_iso(text) if isinstance(text, str) else None


def plan_registration(
    doc: Any, kind: str, *, secret_hint: str = "", thumbprint_hex: str = ""
) -> Registration:
    """Which of the registration's credentials is the one in use, and when it ends: a secret by
    Graph's `hint` (its first three characters), a certificate by its SHA-1 thumbprint
    (`customKeyIdentifier`). https://learn.microsoft.com/graph/api/resources/passwordcredential"""
    if not isinstance(doc, Mapping):
        return Registration("unreadable", None, "Graph's answer held no application")
    if kind == "secret":
        items = doc.get("passwordCredentials") or []
        mine = [i for i in items if isinstance(i, Mapping) and i.get("hint") == secret_hint]
        what = "client secret"
    else:
        items = doc.get("keyCredentials") or []
        wanted = bytes.fromhex(thumbprint_hex) if thumbprint_hex else b""
        mine = [
            i
            for i in items
            if isinstance(i, Mapping)
            and isinstance(i.get("customKeyIdentifier"), str)
            and _b64_bytes(i["customKeyIdentifier"]) == wanted
        ]
        what = "certificate"
    if not mine:
        return Registration(
            "unmatched",
            None,
            f"the app registration lists {len(items)} {what}(s), none of them the one in use: "
            "Entra refuses a credential the registration does not hold",
        )
    ends = [e for e in (_end(i) for i in mine) if e is not None]
    if not ends:
        return Registration("read", None, f"the app registration's {what} never expires")
    end = max(ends)  # two with the same hint: the later one is the benefit of the doubt
    when = end.astimezone(UTC).date().isoformat()
    return Registration("read", end, f"the app registration's {what} ends on {when}")


def should_warn(expiry: CredentialExpiry, last_warned: date | None, today: date) -> bool:
    """One WARNING log line a day while the credential is near expiry or expired."""
    return expiry.level in ("warning", "expired") and last_warned != today


def parse_status(row: dict[str, Any]) -> dict[str, Any]:
    """A stored credential status row as health shows it (no value, just dates and counts)."""
    expires = parse_iso(row.get("expires_on")) if isinstance(row.get("expires_on"), str) else None
    if isinstance(row.get("expires_on"), datetime):
        expires = row["expires_on"]
    checked = row.get("checked_at")
    return {
        "status": row.get("level", "unknown"),
        "kind": row.get("kind", ""),
        "daysLeft": row.get("days_left"),
        "expiresOn": iso_utc(expires) if expires else None,
        "checkedAt": iso_utc(checked) if isinstance(checked, datetime) else checked,
        "registration": row.get("registration") or None,
    }


def status_warning(shown: dict[str, Any]) -> str:
    """One line for the status page from `parse_status`'s view: "" unless near or past expiry,
    or the app registration's own list could not be read or does not hold the credential."""
    level, kind, left = (
        shown.get("status"),
        shown.get("kind") or "credential",
        shown.get("daysLeft"),
    )
    when = (shown.get("expiresOn") or "")[:10]
    registration = str(shown.get("registration") or "")
    note = f" ({registration})" if registration.startswith(_REGISTRATION_NOTES) else ""
    if level == "expired":
        return f"The app's {kind} expired on {when}: Entra refuses it; store a new one.{note}"
    if level == "warning":
        return (
            f"The app's {kind} expires on {when} ({left} day(s) left): store a new one before."
            f"{note}"
        )
    return f"Credential watch: {registration}" if note else ""


# The starts of Registration details worth a line on the status page (plan_registration and
# services.credential_watch.read_registration word them).
_REGISTRATION_NOTES = (
    "the app registration lists",
    "the app registration's own credentials could not be read",
    "the app registration could not be read",
)
