"""Test connection for a tenant on Exchange Server: each step of what an EWS round needs, run
and explained (`shared.core.diagnostics_ews`), after the settings step the Graph test shares.

Steps: password (the secret readable) → endpoint (DNS, TCP and TLS to ewsUrl's host, the
certificate checked as the client checks it) → credentials ("General connection": a 401 fails
here) → impersonation ("Send/receive data": the mailbox's calendar through
ExchangeImpersonation) → calendar (a CalendarView of today). Steps after a failed one that
needs it are skipped. Nothing changes state.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

from shared.compose import Services
from shared.core import diagnostics as dx
from shared.core.diagnostics_ews import explain_ews_code, explain_network
from shared.errors import CalsyncError, ExchangeError, ExchangeUnreachable, SecretError, Throttled
from shared.ews_settings import EwsSettings

CONNECT_TIMEOUT = 10.0
_SEND_RECEIVE = ("ErrorImpersonateUserDenied", "ErrorNonExistentMailbox", "ErrorAccessDenied")


Timer = Callable[[str, Callable[[], dx.Step]], dx.Step]


def run_ews_steps(
    svc: Services, ews: EwsSettings, mailbox: str, settings: dx.Step, run: Timer
) -> list[dx.Step]:
    """The report's steps for an EWS tenant, from the settings step on; `run` times a check."""
    detail = f"EWS {ews.url}, Exchange version floor {ews.version}, {ews.auth} as {ews.username!r}"
    steps: list[dx.Step] = [dx.Step("settings", "ok", settings.duration_ms, detail=detail)]

    def skip_rest(why: str) -> list[dx.Step]:
        done = {step.name for step in steps}
        return [*steps, *(dx.Step(n, "skipped", detail=why) for n in _AFTER if n not in done)]

    password = run("EWS password", lambda: _password(svc, ews))
    steps.append(password)
    if password.status == "failed":
        return skip_rest("no password")
    endpoint = run("EWS endpoint", lambda: _endpoint(svc, ews))
    steps.append(endpoint)
    if endpoint.status == "failed":
        return skip_rest("the endpoint was not reached")
    found: list[dx.Step] = []
    credentials = run("credentials", lambda: _credentials(svc, ews, mailbox or ews.username, found))
    steps.append(credentials)
    if credentials.status == "failed":
        return skip_rest("the credentials were refused")
    if not mailbox:
        return skip_rest("no mailbox given")
    impersonation = found[0] if found else dx.Step("impersonation", "ok", detail=f"as {mailbox}")
    steps.append(impersonation)
    if impersonation.status == "failed":
        return skip_rest("the mailbox was not reached")
    steps.append(run("calendar", lambda: _calendar(svc, ews, mailbox)))
    return steps


_AFTER = ("EWS endpoint", "credentials", "impersonation", "calendar")


def _password(svc: Services, ews: EwsSettings) -> dx.Step:
    name = ews.password_secret_name
    try:
        svc.secrets.get(name)
    except SecretError as exc:
        where = "Key Vault" if svc.settings.key_vault_url else "the environment"
        return dx.Step(
            "EWS password",
            "failed",
            cause=f"the service account's password {name!r} could not be read from {where}: "
            f"{exc.message}",
            fix=f"store the password of {ews.username!r} as the secret {name!r}",
            code=exc.code,
        )
    return dx.Step("EWS password", "ok", detail=f"secret {name!r} readable")


def _endpoint(svc: Services, ews: EwsSettings) -> dx.Step:
    parts = urlsplit(ews.url)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context(cafile=svc.settings.ca_bundle or None)
    try:
        with (
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            version = tls.version()
    except (OSError, ssl.SSLError) as exc:
        cause, fix = explain_network(f"{type(exc).__name__}: {exc}")
        return dx.Step("EWS endpoint", "failed", cause=cause, fix=fix, code=type(exc).__name__)
    return dx.Step(
        "EWS endpoint", "ok", detail=f"{host}:{port} over {version}, certificate trusted"
    )


def _failed(name: str, exc: CalsyncError) -> dx.Step:
    if isinstance(exc, ExchangeUnreachable):
        cause, fix = explain_network(exc.message)
    else:
        cause, fix = explain_ews_code(exc.detail_code)
    return dx.Step(name, "failed", cause=cause, fix=fix, code=exc.detail_code)


def _credentials(svc: Services, ews: EwsSettings, target: str, found: list[dx.Step]) -> dx.Step:
    """Any SOAP answer past authentication proves the credentials; a refusal of the mailbox
    is the impersonation step's finding."""
    assert svc.ews is not None
    try:
        svc.ews.probe(ews, target)
    except Throttled as exc:
        return dx.Step("credentials", "warning", detail=exc.message, code=exc.detail_code)
    except ExchangeError as exc:
        if exc.detail_code in _SEND_RECEIVE:
            found.append(_failed("impersonation", exc))
            return dx.Step("credentials", "ok", detail=f"{ews.username!r} accepted ({ews.auth})")
        return _failed("credentials", exc)
    except CalsyncError as exc:
        return _failed("credentials", exc)
    return dx.Step("credentials", "ok", detail=f"{ews.username!r} accepted ({ews.auth})")


def _calendar(svc: Services, ews: EwsSettings, mailbox: str) -> dx.Step:
    assert svc.ews is not None
    now = svc.now()
    try:
        count = svc.ews.probe_view(ews, mailbox, now, now + timedelta(days=1))
    except CalsyncError as exc:
        return _failed("calendar", exc)
    return dx.Step("calendar", "ok", detail=f"readable: {count} instances today")
