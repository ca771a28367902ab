"""Test connection: for a tenant (and optionally a mailbox), walk what a sync needs, in order, and
say for each step whether it works and, if not, why and what to do. Steps after a failed one that
depends on it are skipped, never guessed. Nothing here changes state; every call is a read.

Steps: settings → credential (Key Vault or environment) → credential expiry (ok, a warning
with the days left from 30 days before, failed once expired) → token (Entra) → permissions (the
roles in the token) → mailbox (the user, then its calendar) → callback URL. Meanings live in
`shared.core.diagnostics`; this module only runs the checks and times them.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from shared.compose import Services
from shared.core import diagnostics as dx
from shared.core.graph import calendar_get, user_lookup
from shared.core.graph_types import decode_user
from shared.core.model import MailboxKey
from shared.errors import (
    CalsyncError,
    GraphError,
    InputError,
    NotFoundError,
    SecretError,
    SecretNotFound,
    TokenError,
)
from shared.services.credential_watch import read_expiry

log = logging.getLogger("calsync.diagnostics")


def _timed(name: str, check: Callable[[], dx.Step]) -> dx.Step:
    start = time.perf_counter()
    step = check()
    took = int((time.perf_counter() - start) * 1000)
    return dx.Step(name, step.status, took, step.detail, step.cause, step.fix, step.code)


def _skipped(name: str, why: str) -> dx.Step:
    return dx.Step(name, "skipped", detail=why)


def run_test_connection(svc: Services, tenant_id: str, mailbox: str = "") -> dx.Report:
    """The connection test's report (never raises for a failing step: the report says it)."""
    tenant = tenant_id.strip().lower()
    if not tenant:
        raise InputError("tenantId is required: the tenant to test (one of TENANT_IDS)")
    settings = _timed("settings", lambda: _settings(svc, tenant))
    if settings.status == "failed":
        return dx.Report(tenant, mailbox, (settings,))
    ews = svc.settings.ews_for(tenant)
    if ews is not None:  # Exchange Server on premises: the EWS steps instead of Entra's
        from shared.services.diagnostics_ews import run_ews_steps

        return dx.Report(tenant, mailbox, tuple(run_ews_steps(svc, ews, mailbox, settings, _timed)))
    credential = _timed("credential", lambda: _credential(svc))
    steps = [settings, credential]
    token_holder: list[str] = []
    if credential.status == "failed":
        steps.append(_skipped("credential expiry", "no credential to read the expiry of"))
        steps.append(_skipped("token", "no credential to ask Entra with"))
    else:
        steps.append(_timed("credential expiry", lambda: _expiry(svc)))
        steps.append(_timed("token", lambda: _token(svc, tenant, token_holder)))
    if token_holder:
        steps.append(_timed("permissions", lambda: _permissions(token_holder[0])))
    else:
        steps.append(_skipped("permissions", "no token to read the permissions from"))
    if not mailbox:
        steps.append(_skipped("mailbox", "no mailbox given"))
    elif not token_holder:
        steps.append(_skipped("mailbox", "no token"))
    else:
        steps.append(_timed("mailbox", lambda: _mailbox(svc, tenant, mailbox)))
    steps.append(_timed("callback URL", lambda: _callback(svc)))
    report = dx.Report(tenant, mailbox, tuple(steps))
    log.info("test connection of tenant %s: %s", tenant, "ok" if report.ok else "failed")
    return report


def _settings(svc: Services, tenant: str) -> dx.Step:
    known = {t.lower() for t in svc.settings.tenant_ids}
    if tenant not in known:
        return dx.Step(
            "settings",
            "failed",
            cause=f"tenant {tenant!r} is not one of TENANT_IDS",
            fix="add it to TENANT_IDS (comma-separated tenant GUIDs) or test another tenant",
        )
    detail = (
        f"client id {svc.settings.client_id}, credential type {svc.settings.credential_type}, "
        f"Graph {svc.settings.graph_base_url}"
    )
    return dx.Step("settings", "ok", detail=detail)


def _credential(svc: Services) -> dx.Step:
    kind = svc.settings.credential_type
    if kind == "managed_identity":
        return dx.Step("credential", "ok", detail="managed identity: nothing stored to read")
    name = (
        svc.settings.client_secret_name
        if kind == "secret"
        else svc.settings.client_certificate_name
    )
    where = (
        "Key Vault"
        if svc.settings.key_vault_url
        else f"the environment (SECRET_{name.upper().replace('-', '_')})"
    )
    try:
        svc.secrets.get(name)
    except SecretNotFound:
        return dx.Step(
            "credential",
            "failed",
            cause=f"the secret {name!r} does not exist in {where}",
            fix=f"store the app's {kind} there under the name {name!r} (deploy guide, step 5)",
            code="secret_not_found",
        )
    except SecretError as exc:
        return dx.Step(
            "credential",
            "failed",
            cause=f"{where} could not be read: {exc.message}",
            fix="check KEY_VAULT_URL, the identity's Key Vault Secrets User role and the network",
            code=exc.code,
        )
    return dx.Step("credential", "ok", detail=f"{kind} {name!r} readable in {where}")


def _expiry(svc: Services) -> dx.Step:
    name = "credential expiry"
    try:
        expiry = read_expiry(svc)
    except CalsyncError as exc:
        return dx.Step(name, "failed", cause=exc.message, fix="see the cause", code=exc.code)
    if expiry.level == "expired":
        return dx.Step(
            name,
            "failed",
            cause=expiry.detail,
            fix="add a new secret or certificate to the app registration and store it in the "
            "secret the settings name",
            code="credential_expired",
        )
    registration = f"; {expiry.registration}" if expiry.registration else ""
    if expiry.level == "warning":
        return dx.Step(
            name,
            "warning",
            detail=expiry.detail + registration,
            code=f"expires_in_{expiry.days_left}d",
        )
    if expiry.level == "unknown":
        return dx.Step(name, "ok", detail=f"{expiry.detail}: nothing to watch{registration}")
    return dx.Step(name, "ok", detail=expiry.detail + registration)


def _token(svc: Services, tenant: str, holder: list[str]) -> dx.Step:
    try:
        holder.append(svc.tokens.token(tenant, fresh=True))
    except TokenError as exc:
        cause, fix = dx.explain_token_error(exc.aadsts, exc.error)
        return dx.Step("token", "failed", cause=cause, fix=fix, code=exc.detail_code)
    except CalsyncError as exc:  # the credential could not be built (a malformed certificate)
        return dx.Step("token", "failed", cause=exc.message, fix="see the cause", code=exc.code)
    return dx.Step("token", "ok", detail="Entra issued a token for Microsoft Graph")


def _permissions(token: str) -> dx.Step:
    roles = dx.roles_in_token(token)
    if roles is None:
        return dx.Step("permissions", "warning", detail="the token is opaque: roles not checked")
    granted = ", ".join(sorted(roles)) or "none"
    missing = dx.missing_permissions(roles)
    if missing:
        what = "; ".join(f"{n.feature} needs {' or '.join(sorted(n.any_of))}" for n in missing)
        return dx.Step(
            "permissions",
            "failed",
            detail=f"granted: {granted}",
            cause=f"missing application permissions: {what}",
            fix="add them to the app registration and grant admin consent (deploy guide, 1-2)",
            code="missing_permissions",
        )
    optional = "".join(
        f"; {n.feature} need {' or '.join(sorted(n.any_of))} (not granted: refused)"
        for n in dx.missing_optional(roles)
    )
    return dx.Step("permissions", "ok", detail=f"granted: {granted}{optional}")


def _mailbox(svc: Services, tenant: str, mailbox: str) -> dx.Step:
    try:
        user = decode_user(svc.graph.send(user_lookup(tenant, mailbox)))
        svc.graph.send(calendar_get(MailboxKey(tenant, user.id.lower())))
    except NotFoundError:
        cause, fix = dx.explain_mailbox_error(404, "")
        return dx.Step("mailbox", "failed", cause=cause, fix=fix, code="404")
    except GraphError as exc:
        cause, fix = dx.explain_mailbox_error(exc.status, exc.graph_code)
        return dx.Step("mailbox", "failed", cause=cause, fix=fix, code=exc.detail_code)
    except TokenError as exc:
        cause, fix = dx.explain_token_error(exc.aadsts, exc.error)
        return dx.Step("mailbox", "failed", cause=cause, fix=fix, code=exc.detail_code)
    return dx.Step("mailbox", "ok", detail=f"{user.user_principal_name}: calendar readable")


def _callback(svc: Services) -> dx.Step:
    url = svc.settings.notification_url
    if not url:
        return dx.Step(
            "callback URL",
            "warning",
            detail="PUBLIC_BASE_URL is not set: every mailbox syncs in poll mode",
        )
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        detail = f"{url} is on loopback: only a Graph on this machine can reach it"
        return dx.Step("callback URL", "warning", detail=detail)
    detail = (
        f"{url}: reachability from the internet cannot be tested from inside the app; Graph "
        "tests it when it creates a subscription (a mailbox's status shows the result)"
    )
    return dx.Step("callback URL", "skipped", detail=detail)
