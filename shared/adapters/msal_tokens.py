"""App-only tokens from Microsoft Entra with MSAL: one `ConfidentialClientApplication` per tenant,
each with its own token cache. Maps MSAL's error dicts to `TokenError` (with the AADSTS code) in one
place. When Entra says the credential is wrong or expired, the credential is fetched again once,
past the secret cache (`refresh`: a secret fixed or rotated in Key Vault), and the tenant's MSAL app
is rebuilt with it before giving up; the rebuilt app is kept, so the fixed secret stays in use.

MSAL uses `requests`; when a CA bundle is configured (the local simulator) it gets a Session that
trusts exactly that bundle and ignores the REQUESTS_CA_BUNDLE/proxy environment, which would
otherwise override the session's `verify`. MSAL takes that session as its `http_client`, wrapped
so that every request to Entra (discovery and token) goes to `observe` as an outbound record of
the operations log: method, host and path (never the form body, which holds the secret or the
assertion, nor a query), status, duration, Entra's request id and, on a refusal, the AADSTS code.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msal

from shared.core import oplog
from shared.errors import EntraUnreachable, TokenError
from shared.settings import Settings

log = logging.getLogger("calsync.tokens")

# Hosts MSAL knows; any other authority host (the simulator) needs instance_discovery=False, else
# MSAL asks login.microsoftonline.com to validate it.
_KNOWN_AUTHORITY_HOSTS = {
    "login.microsoftonline.com",
    "login.microsoft.com",
    "login.windows.net",
    "sts.windows.net",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
}
# AADSTS codes meaning "this credential is wrong or expired": worth one re-read of the secret.
_CREDENTIAL_CODES = {7000215, 7000222, 700027, 700024}

ClientCredential = Any  # str | dict: what MSAL's client_credential takes
ENTRA_TIMEOUT_S = 30  # MSAL applies its `timeout=` only to a Session it makes itself


def _session(ca_bundle: str) -> Any:
    import requests

    session = requests.Session()
    session.verify = ca_bundle
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over verify
    return session


class ObservedHttp:
    """MSAL's `http_client` (get, post, close): a requests Session whose every call is recorded."""

    def __init__(
        self,
        session: Any,
        observe: Callable[[oplog.LogRecord], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session, self._observe, self._clock = session, observe, clock

    def get(self, url: str, **kwargs: Any) -> Any:
        return self._call("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self._call("POST", url, **kwargs)

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", ENTRA_TIMEOUT_S)  # a Session has none of its own
        started, call_id = time.perf_counter(), str(uuid.uuid4())
        headers = dict(kwargs.pop("headers", None) or {}) | {"client-request-id": call_id}
        try:
            response = self._session.request(method, url, headers=headers, **kwargs)
        except OSError as exc:  # requests' connection errors
            self._note(method, url, 0, {}, started, call_id, type(exc).__name__)
            raise
        self._note(
            method,
            url,
            response.status_code,
            response.headers,
            started,
            call_id,
            _refusal(response) if response.status_code >= 400 else "",
        )
        return response

    def _note(
        self,
        method: str,
        url: str,
        status: int,
        headers: Any,
        started: float,
        call_id: str,
        error: str = "",
    ) -> None:
        """One outbound record; a failure here never fails the token request."""
        try:
            parts = urlsplit(url)
            segments = parts.path.strip("/").split("/")
            tenant = segments[0] if len(segments) > 1 else ""
            record = oplog.outbound(
                at=self._clock(),
                method=method,
                url=parts.path,  # never the query
                base_url="",
                tenant_id=tenant,
                user_id="",
                kind="token" if parts.path.endswith("/token") else "entra",
                status=status,
                duration_ms=(time.perf_counter() - started) * 1000,
                headers={
                    "request-id": str(headers.get("x-ms-request-id", "")),
                    "client-request-id": str(headers.get("client-request-id", call_id)),
                },
                client_request_id=call_id,
                error=error,
            )
            self._observe(replace(record, path=f"{parts.netloc}{record.path}"))  # host + path
        except Exception:
            log.debug("operations log: an Entra call could not be recorded", exc_info=True)


def _refusal(response: Any) -> str:
    """`AADSTS7000215` (or Entra's `error` word) from a refusal's JSON body; never its text."""
    try:
        body = json.loads(response.text or "{}")
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    codes = body.get("error_codes") or []
    if codes and isinstance(codes[0], int):
        return f"AADSTS{codes[0]}"
    error = body.get("error")
    return error if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,40}", error) else ""


class MsalTokens:
    """`token(tenant_id)` → a bearer token for Graph; cached by MSAL until near expiry."""

    def __init__(
        self,
        settings: Settings,
        credential: Callable[[], ClientCredential],
        *,
        scope: str | None = None,
        refresh: Callable[[], ClientCredential] | None = None,
        observe: Callable[[oplog.LogRecord], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._refresh = refresh or credential
        self._scope = scope or settings.graph_scope
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()
        self._http: Any = _session(settings.ca_bundle) if settings.ca_bundle else None
        if observe is not None:
            if self._http is None:
                import requests

                self._http = requests.Session()  # as MSAL makes its own: one retry
                retry = requests.adapters.HTTPAdapter(max_retries=1)
                self._http.mount("https://", retry)
                self._http.mount("http://", retry)
            self._http = ObservedHttp(self._http, observe, clock)

    def _app(
        self, tenant_id: str, *, fresh: bool = False, reread: bool = False
    ) -> msal.ConfidentialClientApplication:
        """The tenant's app; `fresh` builds it anew (no cached token), `reread` also with the
        credential read past the secret cache."""
        with self._lock:
            app = self._apps.get(tenant_id)
            if app is None or fresh or reread:
                host = urlsplit(self._settings.authority_host).hostname or ""
                app = msal.ConfidentialClientApplication(
                    self._settings.client_id,
                    client_credential=self._refresh() if reread else self._credential(),
                    authority=f"{self._settings.authority_host}/{tenant_id}",
                    token_cache=msal.TokenCache(),
                    http_client=self._http,
                    instance_discovery=None if host in _KNOWN_AUTHORITY_HOSTS else False,
                    timeout=30,
                )
                self._apps[tenant_id] = app
            return app

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def token(self, tenant_id: str, *, fresh: bool = False) -> str:
        """A token for Graph; `fresh` drops the cached one (Graph refused it with a 401)."""
        try:
            app = self._app(tenant_id, fresh=fresh)
        except ValueError as exc:  # MSAL's authority discovery failed while building the app
            text = f"{exc} {exc.__context__ or ''}"
            found = re.search(r"AADSTS(\d+)", text)
            result = {
                "error": "invalid_authority",
                "error_codes": [int(found.group(1))] if found else [],
                "error_description": text.split("\n")[0][:300],
            }
            raise _token_error(tenant_id, result) from None
        except OSError as exc:  # authority discovery could not reach Entra (requests' errors)
            result = {"error": "network_error", "error_description": type(exc).__name__}
            raise _token_error(tenant_id, result) from None
        result = self._acquire(app)
        if "access_token" not in result and _aadsts(result) in _CREDENTIAL_CODES:
            try:
                result = self._acquire(self._app(tenant_id, reread=True))
            except OSError as exc:
                result = {"error": "network_error", "error_description": type(exc).__name__}
        if "access_token" in result:
            return str(result["access_token"])
        raise _token_error(tenant_id, result)

    def _acquire(self, app: msal.ConfidentialClientApplication) -> dict[str, Any]:
        try:
            result = app.acquire_token_for_client(scopes=[self._scope])
        except ValueError as exc:  # MSAL raises ValueError for an unreachable/invalid authority
            return {"error": "authority_error", "error_description": str(exc)}
        except OSError as exc:
            return {"error": "network_error", "error_description": type(exc).__name__}
        return dict(result or {})


def _aadsts(result: dict[str, Any]) -> int | None:
    codes = result.get("error_codes") or []
    return int(codes[0]) if codes else None


def _token_error(tenant_id: str, result: dict[str, Any]) -> TokenError:
    code = _aadsts(result)
    error = str(result.get("error", "unknown_error"))
    # Entra's description's first line is the human part ("AADSTS7000215: Invalid client secret…").
    description = str(result.get("error_description", "")).splitlines()[0:1]
    hint = {
        90002: "check TENANT_IDS: Entra does not know this tenant",
        700016: "the app is not in this tenant: an admin must consent to it there",
        7000215: "the client secret is wrong: store the current one in Key Vault",
        7000222: "the client secret has expired: create a new one and store it in Key Vault",
        65001: "no admin consent: a tenant admin must grant the application permissions",
    }.get(code or 0, "see the AADSTS code in the Entra documentation")
    text = description[0] if description else error
    if error == "network_error":  # no verdict from Entra: the same call may well work later
        return EntraUnreachable(
            f"Entra could not be reached for a token for tenant {tenant_id}: {text}; "
            "retry later (check AUTHORITY_HOST and the network if it persists)",
            error=error,
        )
    return TokenError(
        f"Entra refused a token for tenant {tenant_id}: {text} ({hint})", aadsts=code, error=error
    )
