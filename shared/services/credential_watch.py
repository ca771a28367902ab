"""The credential expiry watch: when does the app's client secret or certificate expire? Read
from Key Vault's `exp` attribute of the secret (`get_secret(...).properties.expires_on`) and,
for a certificate, its notAfter (the earlier of the two). The daily roll runs `run_watch`: it
stores the app-wide status row (shown by `GET /api/health` as days left, never a value) and logs
one WARNING a day from 30 days before (steps at 30, 14, 7, 1: `shared.core.expiry`). The test
connection reports the same reading as its `credential expiry` step.

Where the permission allows (Application.Read.All in the app's home tenant), the app
registration's own list is read too (`GET /applications(appId=...)`: dates and hints, never
values) and the credential in use is found in it; its end counts when it is earlier than Key
Vault's `exp`. Without the permission the watch says it could not read it and why, and goes on
with Key Vault's date alone: it never fails for this.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime

from shared.compose import Services
from shared.core import graph, oplog
from shared.core.expiry import (
    CredentialExpiry,
    Registration,
    plan_expiry,
    plan_registration,
    should_warn,
)
from shared.credentials import read_certificate
from shared.errors import CalsyncError, GraphError
from shared.secrets import ExpiringSecrets

log = logging.getLogger("calsync.credentials")


def read_expiry(svc: Services) -> CredentialExpiry:
    """The credential's expiry now; raises the secrets port's SecretError when it is unreadable."""
    settings = svc.settings
    kind = settings.credential_type
    if kind == "managed_identity":
        return plan_expiry(kind, "", None, svc.now())
    name = settings.client_secret_name if kind == "secret" else settings.client_certificate_name
    dates: list[datetime] = []
    if isinstance(svc.secrets, ExpiringSecrets):
        stored = svc.secrets.expires_on(name)
        if stored is not None:
            dates.append(stored)
    value = svc.secrets.get(name)
    hint, thumbprint = "", ""
    if kind == "certificate":
        certificate = read_certificate(value, name)
        dates.append(certificate.not_after)
        thumbprint = certificate.sha1_thumbprint
    else:
        hint = value[:3]  # compared with Graph's hint only; never shown
    registration = read_registration(svc, kind, secret_hint=hint, thumbprint_hex=thumbprint)
    if registration.expires_on is not None:
        dates.append(registration.expires_on)
    expiry = plan_expiry(kind, name, min(dates) if dates else None, svc.now())
    return replace(expiry, registration=registration.detail)


def read_registration(
    svc: Services, kind: str, *, secret_hint: str = "", thumbprint_hex: str = ""
) -> Registration:
    """The app registration's end for the credential in use, asked of each tenant in turn (the
    application object answers only in its home tenant); never raises."""
    refused: list[str] = []
    for tenant_id in svc.settings.tenant_ids:
        request = graph.application_credentials(tenant_id, svc.settings.client_id)
        try:
            doc = svc.graph.send(request)
        except GraphError as exc:
            if exc.status == 404:
                continue  # not the home tenant
            if exc.status == 403:
                refused.append(tenant_id)
                continue
            return Registration(
                "unreadable", None, f"the app registration could not be read: {exc.message}"
            )
        except CalsyncError as exc:
            return Registration(
                "unreadable", None, f"the app registration could not be read: {exc.message}"
            )
        return plan_registration(doc, kind, secret_hint=secret_hint, thumbprint_hex=thumbprint_hex)
    if refused:
        return Registration(
            "unreadable",
            None,
            "the app registration's own credentials could not be read: Application.Read.All is "
            f"not granted (tenant {refused[0]}); grant it to also watch the registration's dates "
            "(optional: Key Vault's expiry is watched without it)",
        )
    return Registration(
        "unreadable",
        None,
        "the app registration's own credentials could not be read: its home tenant is not one "
        "of TENANT_IDS",
    )


def run_watch(svc: Services) -> CredentialExpiry:
    """Read the expiry, store the status row, and warn once a day when it is near or past."""
    expiry = read_expiry(svc)
    now = svc.now()
    row = oplog.credential_row(svc.settings.client_id)
    previous = svc.oplog.get_status(row) if svc.oplog else None
    warned = previous.get("warned_on") if previous else None
    last = date.fromisoformat(warned) if isinstance(warned, str) and warned else None
    warn = should_warn(expiry, last, now.date())
    if warn:
        log.warning("credential expiry: %s", expiry.detail)
    if svc.oplog is not None:
        svc.oplog.put_status(
            row,
            {
                "level": expiry.level,
                "kind": expiry.kind,
                "name": expiry.name,
                "expires_on": expiry.expires_on,
                "days_left": expiry.days_left,
                "threshold": expiry.threshold,
                "registration": expiry.registration,
                "checked_at": now,
                "warned_on": now.date().isoformat() if warn else (warned or ""),
            },
        )
    return expiry
