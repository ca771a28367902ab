"""One frozen settings object, built from the app settings (environment). Pure: no I/O but a stat.

Every key the app reads is listed in `SETTINGS` with its default and meaning; the README's
settings table and the Bicep's app settings are checked against that list by tests. Missing or
invalid values fail fast with ONE `ConfigError` naming every problem. Secret values never live
here: only the *names* of secrets, which the secrets port resolves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from shared.errors import ConfigError
from shared.ews_settings import EwsSettings, parse_providers

CredentialType = Literal["secret", "certificate", "managed_identity"]
CREDENTIAL_TYPES: tuple[CredentialType, ...] = ("secret", "certificate", "managed_identity")


@dataclass(frozen=True)
class SettingDoc:
    """One app setting: its name, default ('' = none) and meaning, for docs and checks."""

    name: str
    default: str
    meaning: str
    required: bool = False


SETTINGS: tuple[SettingDoc, ...] = (
    SettingDoc(
        "TENANT_IDS",
        "",
        "Comma-separated Entra tenant ids (GUIDs) whose mailboxes may be enrolled.",
        required=True,
    ),
    SettingDoc(
        "CLIENT_ID", "", "Application (client) id of the Entra app registration.", required=True
    ),
    SettingDoc(
        "CLIENT_CREDENTIAL_TYPE",
        "secret",
        "How the app proves itself to Entra: `secret` "
        "(client secret from Key Vault), `certificate` (PEM from Key Vault) or "
        "`managed_identity` (federated credential: no secret at all).",
    ),
    SettingDoc(
        "CLIENT_SECRET_NAME",
        "graph-client-secret",
        "Name of the secret holding the client "
        "secret (Key Vault secret name; locally the env var SECRET_<NAME>).",
    ),
    SettingDoc(
        "CLIENT_CERTIFICATE_NAME",
        "graph-client-certificate",
        "Name of the secret holding "
        "the PEM private key + certificate when CLIENT_CREDENTIAL_TYPE=certificate.",
    ),
    SettingDoc(
        "KEY_VAULT_URL",
        "",
        "https URL of the Key Vault holding the secrets. Empty: secrets "
        "come from environment variables SECRET_<NAME> (local runs only).",
    ),
    SettingDoc(
        "SECRET_CACHE_SECONDS",
        "300",
        "How long a secret read from Key Vault is cached, so "
        "a rotated secret is picked up within this time.",
    ),
    SettingDoc(
        "LOG_RETENTION_DAYS",
        "7",
        "Days the operations log (notification POSTs received, Graph calls made; the `log` "
        "table) is kept; older days are deleted by the daily roll (1 to 365).",
    ),
    SettingDoc(
        "WINDOW_MARGIN_DAYS",
        "7",
        "Days mirrored beyond each side of a mailbox's window (hidden from reads and the "
        "change feed), so its delta window is recreated every this many days plus one instead "
        "of daily (0 to 28; 0: every day).",
    ),
    SettingDoc(
        "SAFETY_NET_DAYS",
        "7",
        "Days between two safety-net full listings of a mailbox's window (1 to 28); one also "
        "runs at once after any fault that could have lost a change.",
    ),
    SettingDoc(
        "LEADING_ROUND",
        "true",
        "`true`: a notification syncs its mailbox at once unless another did so in the last "
        "3 s (about a second to the mirror; a burst then costs two delta requests). `false`: "
        "every notification waits 3 s, so a burst costs one delta request and each change 3 s "
        "more.",
    ),
    SettingDoc(
        "CHANGES_RETENTION_DAYS",
        "30",
        "Days the change feed (the change rows of the `events` table) keeps each change for "
        "feed reads and replays; older changes are deleted by the daily roll (1 to 365).",
    ),
    SettingDoc(
        "WEBHOOK_TIMEOUT_SECONDS",
        "5",
        "Seconds a webhook receiver has to answer one delivery (0.5 to 30); a slower one is "
        "retried later, and never delays other subscribers or mailboxes.",
    ),
    SettingDoc(
        "WEBHOOK_ALLOW_HTTP_LOOPBACK",
        "false",
        "Development only: `true` lets a webhook subscriber use plain http on a loopback host "
        "(localhost, 127.0.0.1, ::1). Otherwise subscriber URLs are https.",
    ),
    SettingDoc(
        "GRAPH_BASE_URL",
        "https://graph.microsoft.com/v1.0",
        "Graph endpoint (sovereign clouds or the local simulator use another).",
    ),
    SettingDoc(
        "GRAPH_SCOPE",
        "",
        "Token scope for Graph (`<resource>/.default`). Empty: derived from "
        "GRAPH_BASE_URL's host (`https://graph.microsoft.com/.default` by default).",
    ),
    SettingDoc(
        "AUTHORITY_HOST",
        "https://login.microsoftonline.com",
        "Entra authority host (sovereign clouds or the local simulator use another).",
    ),
    SettingDoc(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "",
        "Application Insights connection string: set, the app sends its logs (with their "
        "custom dimensions), traces and metrics there (azure-monitor-opentelemetry). Empty: "
        "nothing is exported (local runs).",
    ),
    SettingDoc(
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "",
        "`ClientId=<managed identity client id>;Authorization=AAD`: telemetry is sent with "
        "that identity's Entra token (Application Insights has local auth off). Empty: the "
        "connection string alone.",
    ),
    SettingDoc(
        "CA_BUNDLE",
        "",
        "Path to a PEM CA bundle trusted for Graph, Entra, Key Vault and EWS "
        "calls (local simulators only). Empty: the system's trust store.",
    ),
    SettingDoc(
        "PUBLIC_BASE_URL",
        "",
        "Public https base URL of this app that Graph calls back "
        "(…/api/notifications, …/api/lifecycle); plain http only for a loopback host "
        "(localhost, 127.0.0.1, ::1). Empty: mailboxes sync in poll mode.",
    ),
    SettingDoc(
        "MAILBOX_PROVIDERS",
        "",
        "JSON object keyed by tenant id: which tenants are Exchange Server on premises reached "
        'through EWS (`{"<tenant>": {"provider": "ews", "ewsUrl": "https://…/EWS/Exchange.asmx", '
        '"exchangeVersion": "Exchange2016", "auth": "NTLM", "username": "DOMAIN\\svc", '
        '"passwordSecretName": "ews-password"}}`). Empty, or a tenant not named: Graph.',
    ),
    SettingDoc(
        "AzureWebJobsStorage",
        "",
        "Storage connection string (local: Azurite). In Azure use "
        "the identity-based keys below instead.",
    ),
    SettingDoc(
        "AzureWebJobsStorage__accountName",
        "",
        "Storage account name for identity-based connections (managed identity).",
    ),
    SettingDoc(
        "AzureWebJobsStorage__credential",
        "",
        "`managedidentity` for identity-based storage connections.",
    ),
    SettingDoc(
        "AzureWebJobsStorage__clientId",
        "",
        "Client id of the user-assigned managed identity used for storage.",
    ),
    SettingDoc(
        "AZURE_CLIENT_ID",
        "",
        "Client id of the user-assigned managed identity used for "
        "Key Vault (DefaultAzureCredential) and the federated app credential.",
    ),
)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")  # Key Vault's rule for secret names


@dataclass(frozen=True)
class StorageSettings:
    """Where tables and queues live: a connection string, or an account reached by identity."""

    connection_string: str | None = None
    account_name: str | None = None
    client_id: str | None = None

    @property
    def table_endpoint(self) -> str:
        return f"https://{self.account_name}.table.core.windows.net"

    @property
    def queue_endpoint(self) -> str:
        return f"https://{self.account_name}.queue.core.windows.net"

    def describe(self) -> str:
        """Where storage is, without any key: for health and logs."""
        if self.connection_string:
            parts = dict(p.split("=", 1) for p in self.connection_string.split(";") if "=" in p)
            if self.connection_string.strip().lower() == "usedevelopmentstorage=true":
                return "development storage (Azurite defaults)"
            return f"account {parts.get('AccountName', '?')} via connection string"
        return f"account {self.account_name} via managed identity"


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, validated."""

    tenant_ids: tuple[str, ...]
    client_id: str
    credential_type: CredentialType = "secret"
    client_secret_name: str = "graph-client-secret"
    client_certificate_name: str = "graph-client-certificate"
    key_vault_url: str | None = None
    secret_cache_seconds: float = 300.0
    log_retention_days: int = 7
    changes_retention_days: int = 30
    window_margin_days: int = 7
    safety_net_days: int = 7
    leading_round: bool = True
    webhook_timeout_seconds: float = 5.0
    webhook_allow_http_loopback: bool = False
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    graph_scope_override: str | None = None
    authority_host: str = "https://login.microsoftonline.com"
    ca_bundle: str | None = None
    public_base_url: str | None = None
    appinsights_connection_string: str = ""  # identifies the component; not a credential
    appinsights_authentication: str = ""
    storage: StorageSettings = field(default_factory=StorageSettings)
    managed_identity_client_id: str | None = None
    ews_tenants: tuple[EwsSettings, ...] = ()

    def ews_for(self, tenant_id: str) -> EwsSettings | None:
        """The tenant's EWS settings when its mailboxes are on Exchange Server, else None."""
        return next((e for e in self.ews_tenants if e.tenant_id == tenant_id.lower()), None)

    @property
    def graph_scope(self) -> str:
        """The client-credentials scope: GRAPH_SCOPE when set, else derived from the Graph
        endpoint (`<scheme>://<host>/.default`)."""
        if self.graph_scope_override:
            return self.graph_scope_override
        parts = urlsplit(self.graph_base_url)
        return f"{parts.scheme}://{parts.netloc}/.default"

    @property
    def notification_url(self) -> str | None:
        return f"{self.public_base_url}/api/notifications" if self.public_base_url else None

    @property
    def lifecycle_url(self) -> str | None:
        return f"{self.public_base_url}/api/lifecycle" if self.public_base_url else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build from a mapping (default: os.environ); one ConfigError lists every problem."""
        env = os.environ if environ is None else environ
        problems: list[str] = []

        def get(name: str) -> str:
            return env.get(name, "").strip()

        tenants = tuple(t.strip() for t in get("TENANT_IDS").split(",") if t.strip())
        if not tenants:
            problems.append(
                "TENANT_IDS is missing: set it to the comma-separated tenant ids (GUIDs)"
            )
        for t in tenants:
            if not _GUID.match(t):
                problems.append(f"TENANT_IDS has {t!r}, which is not a tenant id (GUID)")
        client_id = get("CLIENT_ID")
        if not client_id:
            problems.append("CLIENT_ID is missing: set it to the app registration's client id")
        elif not _GUID.match(client_id):
            problems.append(
                f"CLIENT_ID {client_id!r} is not a GUID: use the Application (client) id"
            )

        cred = get("CLIENT_CREDENTIAL_TYPE") or "secret"
        if cred not in CREDENTIAL_TYPES:
            problems.append(
                f"CLIENT_CREDENTIAL_TYPE {cred!r} is not one of {', '.join(CREDENTIAL_TYPES)}"
            )
        secret_name = get("CLIENT_SECRET_NAME") or "graph-client-secret"
        cert_name = get("CLIENT_CERTIFICATE_NAME") or "graph-client-certificate"
        for key, value in (
            ("CLIENT_SECRET_NAME", secret_name),
            ("CLIENT_CERTIFICATE_NAME", cert_name),
        ):
            if not _SECRET_NAME.match(value):
                problems.append(f"{key} {value!r} is not a valid secret name (letters, digits, -)")

        key_vault_url = _https_url(get("KEY_VAULT_URL"), "KEY_VAULT_URL", problems)
        if cred == "managed_identity" and not get("AZURE_CLIENT_ID"):
            problems.append(
                "AZURE_CLIENT_ID is missing: CLIENT_CREDENTIAL_TYPE=managed_identity needs the "
                "client id of the user-assigned identity federated with the app registration"
            )

        ttl_text = get("SECRET_CACHE_SECONDS") or "300"
        try:
            ttl = float(ttl_text)
            if ttl < 0:
                raise ValueError
        except ValueError:
            problems.append(f"SECRET_CACHE_SECONDS {ttl_text!r} is not a number of seconds >= 0")
            ttl = 300.0

        retention_text = get("LOG_RETENTION_DAYS") or "7"
        retention = int(retention_text) if retention_text.isdigit() else 0
        if not 1 <= retention <= 365:
            problems.append(
                f"LOG_RETENTION_DAYS {retention_text!r} is not a whole number of days, 1 to 365"
            )
            retention = 7

        kept_text = get("CHANGES_RETENTION_DAYS") or "30"
        kept = int(kept_text) if kept_text.isdigit() else 0
        if not 1 <= kept <= 365:
            problems.append(
                f"CHANGES_RETENTION_DAYS {kept_text!r} is not a whole number of days, 1 to 365"
            )
            kept = 30
        margin_text = get("WINDOW_MARGIN_DAYS") or "7"
        margin_days = int(margin_text) if margin_text.isdigit() else -1
        if not 0 <= margin_days <= 28:
            problems.append(
                f"WINDOW_MARGIN_DAYS {margin_text!r} is not a whole number of days, 0 to 28"
            )
            margin_days = 7
        net_text = get("SAFETY_NET_DAYS") or "7"
        net_days = int(net_text) if net_text.isdigit() else 0
        if not 1 <= net_days <= 28:
            problems.append(f"SAFETY_NET_DAYS {net_text!r} is not a whole number of days, 1 to 28")
            net_days = 7
        hook_timeout_text = get("WEBHOOK_TIMEOUT_SECONDS") or "5"
        try:
            hook_timeout = float(hook_timeout_text)
            if not 0.5 <= hook_timeout <= 30:
                raise ValueError
        except ValueError:
            problems.append(
                f"WEBHOOK_TIMEOUT_SECONDS {hook_timeout_text!r} is not a number of seconds, "
                "0.5 to 30"
            )
            hook_timeout = 5.0
        leading_text = (get("LEADING_ROUND") or "true").lower()
        if leading_text not in ("true", "false"):
            problems.append(f"LEADING_ROUND {leading_text!r} is not true or false")
        loopback_text = (get("WEBHOOK_ALLOW_HTTP_LOOPBACK") or "false").lower()
        if loopback_text not in ("true", "false"):
            problems.append(f"WEBHOOK_ALLOW_HTTP_LOOPBACK {loopback_text!r} is not true or false")

        graph = _https_url(
            get("GRAPH_BASE_URL") or "https://graph.microsoft.com/v1.0", "GRAPH_BASE_URL", problems
        )
        authority = _https_url(
            get("AUTHORITY_HOST") or "https://login.microsoftonline.com", "AUTHORITY_HOST", problems
        )
        scope = _scope(get("GRAPH_SCOPE"), problems)
        public = _public_url(get("PUBLIC_BASE_URL"), problems)

        ca_bundle = get("CA_BUNDLE") or None
        if ca_bundle and not os.path.isfile(ca_bundle):
            problems.append(
                f"CA_BUNDLE {ca_bundle!r} is not a readable file: give a PEM bundle path"
            )

        storage = _storage(env, problems)
        ews_tenants = parse_providers(get("MAILBOX_PROVIDERS"), tenants, problems)
        if problems:
            raise ConfigError(problems)
        return cls(
            tenant_ids=tenants,
            client_id=client_id.lower(),
            credential_type=cred,  # type: ignore[arg-type]  # checked against CREDENTIAL_TYPES
            client_secret_name=secret_name,
            client_certificate_name=cert_name,
            key_vault_url=key_vault_url,
            secret_cache_seconds=ttl,
            log_retention_days=retention,
            changes_retention_days=kept,
            window_margin_days=margin_days,
            safety_net_days=net_days,
            leading_round=leading_text != "false",
            webhook_timeout_seconds=hook_timeout,
            webhook_allow_http_loopback=loopback_text == "true",
            graph_base_url=graph or "",
            graph_scope_override=scope,
            authority_host=authority or "",
            ca_bundle=ca_bundle,
            public_base_url=public,
            appinsights_connection_string=get("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            appinsights_authentication=get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"),
            storage=storage,
            managed_identity_client_id=get("AZURE_CLIENT_ID") or None,
            ews_tenants=ews_tenants,
        )


def _https_url(value: str, name: str, problems: list[str]) -> str | None:
    """Validate an https URL and drop a trailing slash; record a problem if it is not one."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        problems.append(f"{name} {value!r} must be an absolute https:// URL")
        return None
    return value.rstrip("/")


_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _public_url(value: str, problems: list[str]) -> str | None:
    """PUBLIC_BASE_URL: https, or plain http for a loopback host only. Graph itself accepts an
    http notificationUrl only for localhost (learn.microsoft.com/graph/change-notifications-
    delivery-webhooks#notificationurl-validation); anywhere else it would carry notifications
    and client states in clear text."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme == "http" and parts.netloc and (parts.hostname or "") in _LOOPBACK_HOSTS:
        return value.rstrip("/")
    if parts.scheme == "http" and parts.netloc:
        problems.append(
            f"PUBLIC_BASE_URL {value!r} uses plain http for host {parts.hostname!r}: Graph calls "
            "back only over https (http is allowed for localhost, 127.0.0.1 and ::1); use the "
            "app's https URL"
        )
        return None
    return _https_url(value, "PUBLIC_BASE_URL", problems)


def _scope(value: str, problems: list[str]) -> str | None:
    """GRAPH_SCOPE: an app-only scope, `<scheme>://<resource>/.default`."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "api") or not parts.netloc or parts.path != "/.default":
        problems.append(
            f"GRAPH_SCOPE {value!r} is not an app-only scope: give `<resource>/.default`, "
            "e.g. https://graph.microsoft.com/.default (or leave it empty to derive it from "
            "GRAPH_BASE_URL)"
        )
        return None
    return value


def _storage(env: Mapping[str, str], problems: list[str]) -> StorageSettings:
    conn = env.get("AzureWebJobsStorage", "").strip()
    account = env.get("AzureWebJobsStorage__accountName", "").strip()
    client_id = env.get("AzureWebJobsStorage__clientId", "").strip() or None
    if conn:
        if conn.lower() != "usedevelopmentstorage=true" and "AccountName=" not in conn:
            problems.append(
                "AzureWebJobsStorage is not a storage connection string (no AccountName=); "
                "copy it from the storage account, or use UseDevelopmentStorage=true for Azurite"
            )
        return StorageSettings(connection_string=conn)
    if account:
        if env.get("AzureWebJobsStorage__credential", "").strip().lower() != "managedidentity":
            problems.append(
                "AzureWebJobsStorage__credential must be 'managedidentity' when "
                "AzureWebJobsStorage__accountName is set"
            )
        return StorageSettings(account_name=account, client_id=client_id)
    problems.append(
        "storage is not configured: set AzureWebJobsStorage (connection string) or "
        "AzureWebJobsStorage__accountName with AzureWebJobsStorage__credential=managedidentity"
    )
    return StorageSettings()
