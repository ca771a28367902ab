"""Pure: what a connection test's findings mean, in an administrator's words. Each step of the
test (settings, secret, token, permissions, mailbox, callback URL) ends as a `Step` with a status,
and, when it did not pass, the likely cause and the fix. Entra's AADSTS codes and Graph's answers
are mapped here, in one table each; the report never holds a secret, only names and codes.

Sources: https://learn.microsoft.com/entra/identity-platform/reference-error-codes,
https://learn.microsoft.com/graph/permissions-reference,
https://learn.microsoft.com/graph/auth-limit-mailbox-access (application access policies).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warning", "failed", "skipped"]


@dataclass(frozen=True)
class Step:
    """One finding of a connection test."""

    name: str
    status: Status
    duration_ms: int = 0
    detail: str = ""
    cause: str = ""
    fix: str = ""
    code: str = ""


@dataclass(frozen=True)
class Report:
    """The whole test: passed when no step failed (warnings and skips do not fail it)."""

    tenant_id: str
    mailbox: str = ""
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(step.status != "failed" for step in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "mailbox": self.mailbox or None,
            "ok": self.ok,
            "steps": [
                {
                    "name": s.name,
                    "status": s.status,
                    "durationMs": s.duration_ms,
                    "detail": s.detail,
                    "cause": s.cause,
                    "fix": s.fix,
                    "code": s.code,
                }
                for s in self.steps
            ],
        }


# --- the token: Entra's verdicts ---------------------------------------------------------------
_AADSTS: dict[int, tuple[str, str]] = {
    90002: (
        "wrong tenant id: Entra knows no tenant with this id",
        "check TENANT_IDS against the tenant's id (az account show --query tenantId)",
    ),
    900023: (
        "the tenant id is not a valid tenant id or domain",
        "TENANT_IDS takes tenant GUIDs",
    ),
    700016: (
        "wrong client id, or the app was never consented in this tenant",
        "check CLIENT_ID; an administrator of this tenant grants admin consent (deploy guide, 2)",
    ),
    7000215: (
        "wrong client secret: the stored value is not a current secret of the app",
        "store the secret's value (not its id) in Key Vault under the configured name",
    ),
    7000222: (
        "the client secret has expired",
        "create a new secret on the app registration and store it in Key Vault (rotate)",
    ),
    65001: (
        "admin consent is missing in this tenant",
        "an administrator of this tenant grants the application permissions (deploy guide, step 2)",
    ),
    700027: (
        "the certificate is not registered on the app",
        "upload the certificate's public part to the app registration",
    ),
    70021: (
        "no federated credential of the app matches the managed identity",
        "check issuer, subject and audience of the federated credential (deploy guide, 5c)",
    ),
    700213: (
        "no federated credential of the app matches the managed identity",
        "check issuer, subject and audience of the federated credential (deploy guide, 5c)",
    ),
    50034: ("the account does not exist in this tenant", "check TENANT_IDS and CLIENT_ID"),
    50057: ("the app's account is disabled", "enable the enterprise application in the tenant"),
    53003: (
        "a conditional access policy blocks the app",
        "exclude the app's service principal from the policy, or allow its location",
    ),
}


def explain_token_error(aadsts: int | None, error: str) -> tuple[str, str]:
    """(cause, fix) for Entra's refusal; unknown codes point at the code itself."""
    if aadsts in _AADSTS:
        return _AADSTS[aadsts]
    if error == "network_error":
        return (
            "Entra could not be reached",
            "check AUTHORITY_HOST and the app's outbound network (DNS, firewall, proxy)",
        )
    code = f"AADSTS{aadsts}" if aadsts else error or "an unknown error"
    return (f"Entra refused the token ({code})", f"look up {code} in Entra's error code reference")


# --- the permissions: the roles in the token ----------------------------------------------------
@dataclass(frozen=True)
class Need:
    """A feature and the application roles any one of which it needs."""

    feature: str
    any_of: frozenset[str]
    required: bool = True


NEEDS: tuple[Need, ...] = (
    Need("calendars (mirror, notifications)", frozenset({"Calendars.Read", "Calendars.ReadWrite"})),
    Need(
        "user lookup (enrolment)",
        frozenset({"User.ReadBasic.All", "User.Read.All", "Directory.Read.All"}),
    ),
    # Optional: a read-only deployment is complete; without it the write API is refused (403).
    Need("writes (the write API)", frozenset({"Calendars.ReadWrite"}), required=False),
    Need(
        "app registration credential dates (expiry watch, optional)",
        frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"}),
        required=False,
    ),
)


def roles_in_token(token: str) -> frozenset[str] | None:
    """The `roles` claim of a JWT access token (not verified: Graph verifies it), or None when
    the token cannot be read (opaque tokens exist; then the permissions are not judged)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    roles = claims.get("roles", []) if isinstance(claims, dict) else []
    return frozenset(r for r in roles if isinstance(r, str))


def plan_permissions(roles: Iterable[str]) -> list[tuple[Need, bool]]:
    """Each feature with whether the granted roles cover it."""
    granted = set(roles)
    return [(need, bool(need.any_of & granted)) for need in NEEDS]


def missing_permissions(roles: Iterable[str]) -> Sequence[Need]:
    """The required features the granted roles do not cover."""
    return [need for need, ok in plan_permissions(roles) if need.required and not ok]


def missing_optional(roles: Iterable[str]) -> Sequence[Need]:
    """The optional features (writes) the granted roles do not cover."""
    return [need for need, ok in plan_permissions(roles) if not need.required and not ok]


# --- the mailbox: Graph's answers ---------------------------------------------------------------
def explain_mailbox_error(status: int | None, graph_code: str) -> tuple[str, str]:
    """(cause, fix) for Graph refusing to show a mailbox's calendar."""
    if graph_code == "MailboxNotEnabledForRESTAPI":
        return (
            "the user has no Exchange Online mailbox (no license, or the mailbox is on premises)",
            "assign an Exchange Online license, or use the EWS provider for on-premises mailboxes",
        )
    if status == 404:
        return (
            "no such user in this tenant",
            "check the user id or UPN (a guest's UPN contains #EXT#)",
        )
    if status == 403 and graph_code == "Authorization_RequestDenied":
        return (
            "the app may not read users (User.ReadBasic.All missing or not consented)",
            "grant User.ReadBasic.All and admin consent (deploy guide, steps 1-2)",
        )
    if status == 403:
        return (
            "access denied: Calendars.Read is missing, or an application access policy "
            "excludes this mailbox",
            "grant Calendars.Read, or add the mailbox to the policy's group "
            "(Test-ApplicationAccessPolicy shows which)",
        )
    return (
        f"Graph answered {status} {graph_code}".strip(),
        "retry later; if it persists, look up the code in Graph's error reference",
    )
