"""The credential expiry watch: when does the app's client secret or certificate expire? Read
from Key Vault's `exp` attribute of the secret (`get_secret(...).properties.expires_on`) and,
for a certificate, its notAfter (the earlier of the two). The daily roll runs `run_watch`: it
stores the app-wide status row (shown by `GET /api/health` as days left, never a value) and logs
one WARNING a day from 30 days before (steps at 30, 14, 7, 1: `shared.core.expiry`). The test
connection reports the same reading as its `credential expiry` step.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from shared.compose import Services
from shared.core import oplog
from shared.core.expiry import CredentialExpiry, plan_expiry, should_warn
from shared.credentials import certificate_not_after
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
    if kind == "certificate":
        dates.append(certificate_not_after(svc.secrets.get(name), name))
    return plan_expiry(kind, name, min(dates) if dates else None, svc.now())


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
                "checked_at": now,
                "warned_on": now.date().isoformat() if warn else (warned or ""),
            },
        )
    return expiry
