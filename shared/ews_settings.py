"""Pure: the mailbox provider of each tenant, read from MAILBOX_PROVIDERS (a JSON object).

Rule: a tenant not named there uses Graph. A tenant named with `"provider": "ews"` is an
Exchange Server on premises reached through Exchange Web Services: its EWS URL (https), the
Exchange version floor the client speaks, NTLM (the on-premises default) or Basic, and the
service account's user name; the password is a secret (`passwordSecretName`, read like the
Graph client secret: Key Vault, or SECRET_<NAME> locally). An EWS URL on Exchange Online is
refused: Microsoft retires EWS there (blocked by default from October 2026, switched off in
April 2027); Exchange Online mailboxes use the Graph provider.
https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/deprecation-of-ews-exchange-online
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

EwsAuth = Literal["NTLM", "Basic"]
# RequestServerVersion values the client may be pinned to, oldest first (exchangelib's builds).
EXCHANGE_VERSIONS = (
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2016",
    "Exchange2019",
)
DEFAULT_VERSION = "Exchange2013"
_SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
# Exchange Online's EWS endpoints (worldwide, GCC High, DoD, 21Vianet) and Outlook.com.
_ONLINE_SUFFIXES = (
    "outlook.office365.com",
    "outlook.office.com",
    ".outlook.com",
    "outlook.com",
    ".office365.com",
    "outlook.office365.us",
    "webmail.apps.mil",
    "partner.outlook.cn",
    "outlook.live.com",
)
RETIREMENT = (
    "EWS in Exchange Online is being retired by Microsoft (blocked by default from October "
    "2026, switched off in April 2027): use the Graph provider for Exchange Online mailboxes; "
    "the EWS provider is for Exchange Server on premises only"
)


@dataclass(frozen=True)
class EwsSettings:
    """How one tenant's mailboxes are reached through EWS."""

    tenant_id: str
    url: str
    version: str = DEFAULT_VERSION
    auth: EwsAuth = "NTLM"
    username: str = ""
    password_secret_name: str = "ews-password"  # noqa: S105 - the name of a secret


def is_exchange_online(url: str) -> bool:
    """True for a host of Exchange Online (or Outlook.com), where EWS is being retired."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(
        host == s.lstrip(".") or host.endswith("." + s.lstrip(".")) for s in _ONLINE_SUFFIXES
    )


def _one(tenant: str, raw: Any, problems: list[str]) -> EwsSettings | None:
    where = f"MAILBOX_PROVIDERS[{tenant!r}]"
    if not isinstance(raw, dict):
        problems.append(f'{where} must be an object like {{"provider": "ews", ...}}')
        return None
    provider = raw.get("provider", "graph")
    if provider == "graph":
        return None
    if provider != "ews":
        problems.append(f"{where}.provider {provider!r} is not 'graph' or 'ews'")
        return None
    url = str(raw.get("ewsUrl", "")).strip()
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        problems.append(
            f"{where}.ewsUrl {url!r} must be the https URL of the server's EWS endpoint, "
            "e.g. https://mail.contoso.com/EWS/Exchange.asmx"
        )
    elif is_exchange_online(url):
        problems.append(f"{where}.ewsUrl {url!r} is Exchange Online. {RETIREMENT}")
    version = str(raw.get("exchangeVersion", DEFAULT_VERSION))
    if version not in EXCHANGE_VERSIONS:
        problems.append(
            f"{where}.exchangeVersion {version!r} is not one of {', '.join(EXCHANGE_VERSIONS)}"
        )
    auth = str(raw.get("auth", "NTLM"))
    if auth.upper() not in ("NTLM", "BASIC"):
        problems.append(f"{where}.auth {auth!r} is not 'NTLM' or 'Basic'")
    username = str(raw.get("username", "")).strip()
    if not username:
        problems.append(
            f"{where}.username is missing: the service account with the ApplicationImpersonation "
            "role, as DOMAIN\\user or user@domain"
        )
    secret = str(raw.get("passwordSecretName", "ews-password"))
    if not _SECRET_NAME.match(secret):
        problems.append(f"{where}.passwordSecretName {secret!r} is not a valid secret name")
    unknown = sorted(
        set(raw)
        - {"provider", "ewsUrl", "exchangeVersion", "auth", "username", "passwordSecretName"}
    )
    if unknown:
        problems.append(f"{where} has unknown keys {', '.join(unknown)}")
    return EwsSettings(
        tenant_id=tenant,
        url=url,
        version=version,
        auth="Basic" if auth.upper() == "BASIC" else "NTLM",
        username=username,
        password_secret_name=secret,
    )


def parse_providers(
    text: str, tenants: tuple[str, ...], problems: list[str]
) -> tuple[EwsSettings, ...]:
    """The EWS tenants of MAILBOX_PROVIDERS; every problem appended to `problems`."""
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
    except ValueError as exc:
        problems.append(f"MAILBOX_PROVIDERS is not JSON ({exc}): give an object keyed by tenant id")
        return ()
    if not isinstance(data, dict):
        problems.append("MAILBOX_PROVIDERS must be a JSON object keyed by tenant id")
        return ()
    known = {t.lower() for t in tenants}
    out: list[EwsSettings] = []
    for tenant, raw in data.items():
        key = str(tenant).strip().lower()
        if key not in known:
            problems.append(
                f"MAILBOX_PROVIDERS names tenant {tenant!r}, which is not in TENANT_IDS"
            )
            continue
        found = _one(key, raw, problems)
        if found is not None:
            out.append(found)
    return tuple(out)
