"""The app's client credential for MSAL, built from the settings and the secrets port.

Rule: `build_client_credential` returns exactly what `msal.ConfidentialClientApplication(
client_credential=...)` takes for CLIENT_CREDENTIAL_TYPE, and nothing else; secret values are
never logged and never put in an error (errors name the secret, not its content).

- `secret`: the client secret string from the secrets port.
- `certificate`: the secret holds the certificate with its private key, as Key Vault returns a
  certificate's secret: PEM (key + certificate; policy contentType application/x-pem-file) or
  base64 PKCS#12 (the default contentType). MSAL 1.39 documents `private_key` plus
  `public_certificate` without a `thumbprint` as the current form: it then signs with PS256 and
  sends the SHA-256 thumbprint (x5t#S256); a `thumbprint` key selects the deprecated SHA-1 path.
- `managed_identity`: `{"client_assertion": callable}`: the app's user-assigned managed identity is
  a federated credential of the app registration, so the assertion is the identity's token for
  `api://AzureADTokenExchange` (per cloud, below). No secret exists that could expire or leak.
  (learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-...)

MSAL takes the credential when an app is built: rebuild the app to pick up a rotated secret (the
token adapter does so on an invalid-credential answer from Entra).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, assert_never
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from shared.errors import ConfigError, SecretError, TokenError
from shared.redact import REDACTOR
from shared.secrets import SecretStore
from shared.settings import Settings

log = logging.getLogger("calsync.credentials")

#: What MSAL's `client_credential` takes: a secret string, or a dict (certificate, assertion).
ClientCredential = str | dict[str, Any]

# The audience of a managed identity token that Entra accepts as a federated credential differs
# per cloud (workload-identity-federation-config-app-trust-managed-identity, "audience").
_EXCHANGE_AUDIENCES = {
    "login.microsoftonline.us": "api://AzureADTokenExchangeUSGov",
    "login.chinacloudapi.cn": "api://AzureADTokenExchangeChina",
    "login.partner.microsoftonline.cn": "api://AzureADTokenExchangeChina",
}
_PUBLIC_AUDIENCE = "api://AzureADTokenExchange"
# Fetch a new assertion this long before the cached one expires: Entra must still accept it
# when the token request lands, and MSAL may hold it for a retry.
REFRESH_MARGIN_SECONDS = 300.0
# Warn this long before the client certificate expires: a new one must be uploaded in time.
EXPIRY_WARNING = timedelta(days=30)
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_KEY_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"}


class AccessTokenLike(Protocol):
    """azure-core's AccessToken: the token and its expiry (epoch seconds)."""

    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class TokenSource(Protocol):
    """What the assertion needs of azure-identity's ManagedIdentityCredential."""

    def get_token(self, *scopes: str) -> AccessTokenLike: ...


def exchange_scope(authority_host: str) -> str:
    """The scope to ask the managed identity for, for this cloud's Entra authority host."""
    host = (urlsplit(authority_host).hostname or "").lower()
    return _EXCHANGE_AUDIENCES.get(host, _PUBLIC_AUDIENCE) + "/.default"


class ManagedIdentityAssertion:
    """A callable for MSAL's `client_assertion`: the managed identity's token, cached until
    REFRESH_MARGIN_SECONDS before it expires. Thread-safe: MSAL may call it from any thread."""

    def __init__(
        self,
        source: TokenSource,
        scope: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._expires_on = 0.0

    def __call__(self) -> str:
        with self._lock:
            if not self._token or self._clock() >= self._expires_on - REFRESH_MARGIN_SECONDS:
                self._token, self._expires_on = self._fetch()
            return self._token

    def _fetch(self) -> tuple[str, float]:
        try:
            access = self._source.get_token(self._scope)
        except Exception as exc:  # azure-identity raises several types; map them in one place
            raise TokenError(
                f"the managed identity gave no token for the federated credential "
                f"({self._scope}): {type(exc).__name__}: {str(exc).strip()[:300]}; check that "
                "AZURE_CLIENT_ID is the client id of the user-assigned identity attached to "
                "this app",
                error="managed_identity_unavailable",
            ) from None
        log.info("federated credential: managed identity token fetched for %s", self._scope)
        return access.token, float(access.expires_on)


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate read from a secret: the key and leaf certificate, re-encoded as PEM."""

    private_key_pem: str
    certificate_pem: str
    sha1_thumbprint: str  # upper-case hex, as the app registration shows it
    not_after: datetime


def load_client_certificate(
    text: str, name: str, *, now: datetime | None = None
) -> ClientCertificate:
    """Parse secret `name` (PEM or base64 PKCS#12) into an RSA key and its certificate.

    Raises SecretError naming the secret and what is wrong, never showing the content."""

    def bad(reason: str) -> SecretError:
        return SecretError(
            f"secret {name!r} does not hold a usable client certificate: {reason}; store the "
            "certificate with its unencrypted private key there (PEM, or Key Vault's PKCS#12), "
            "see docs/deploy.md"
        )

    key, certificates = _read_pem(text, bad) if "-----BEGIN" in text else _read_pfx(text, bad)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise bad("its private key is not an RSA key (MSAL signs client assertions with RSA)")
    numbers = key.public_key().public_numbers()
    leaf = next(
        (
            cert
            for cert in certificates
            if isinstance(pub := cert.public_key(), rsa.RSAPublicKey)
            and pub.public_numbers() == numbers
        ),
        None,
    )
    if leaf is None:
        raise bad(
            "no certificate in it matches its private key"
            if certificates
            else "it holds no certificate"
        )
    now = now or datetime.now(UTC)
    not_after = leaf.not_valid_after_utc
    if not_after <= now:
        raise bad(
            f"the certificate expired on {not_after.date().isoformat()}; upload a new one "
            "to the app registration"
        )
    if not_after - now < EXPIRY_WARNING:
        log.warning(
            "client certificate in secret %r expires on %s: upload a new one to the app "
            "registration and store it in the secret",
            name,
            not_after.date().isoformat(),
        )
    return ClientCertificate(
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
        certificate_pem=leaf.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        # SHA-1 only to match what the portal shows; MSAL itself uses SHA-256 (x5t#S256).
        sha1_thumbprint=leaf.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303
        not_after=not_after,
    )


def certificate_not_after(text: str, name: str) -> datetime:
    """The notAfter of the client certificate in secret `name`, expired or not (the expiry
    watch reports it; SecretError when the secret holds no usable certificate)."""
    return read_certificate(text, name).not_after


def read_certificate(text: str, name: str) -> ClientCertificate:
    """The client certificate in secret `name`, expired or not (for the expiry watch)."""
    return load_client_certificate(text, name, now=_LONG_AGO)


_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)  # "now" for which no certificate is expired yet
_Bad = Callable[[str], SecretError]


def _read_pem(text: str, bad: _Bad) -> tuple[object, list[x509.Certificate]]:
    keys: list[object] = []
    certificates: list[x509.Certificate] = []
    for block in _PEM_BLOCK.finditer(text):
        label, pem = block.group(1), block.group(0).encode("ascii", "replace")
        if label == "CERTIFICATE":
            try:
                certificates.append(x509.load_pem_x509_certificate(pem))
            except ValueError:
                raise bad("a certificate in it cannot be read") from None
        elif label in _KEY_LABELS:
            if label == "ENCRYPTED PRIVATE KEY":
                raise bad("its private key is encrypted")
            try:
                keys.append(serialization.load_pem_private_key(pem, password=None))
            except TypeError:  # a legacy PEM with a Proc-Type: ENCRYPTED header
                raise bad("its private key is encrypted") from None
            except (ValueError, UnsupportedAlgorithm):
                raise bad("its private key cannot be read") from None
    if len(keys) != 1:
        raise bad("it holds no private key" if not keys else "it holds more than one private key")
    return keys[0], certificates


def _read_pfx(text: str, bad: _Bad) -> tuple[object, list[x509.Certificate]]:
    try:
        blob = base64.b64decode("".join(text.split()), validate=True)
        key, cert, extra = pkcs12.load_key_and_certificates(blob, password=None)
    except (binascii.Error, ValueError):
        raise bad("it is neither PEM nor base64 PKCS#12 without a password") from None
    if key is None:
        raise bad("it holds no private key")
    return key, ([cert] if cert else []) + list(extra)


def build_client_credential(
    settings: Settings,
    secrets: SecretStore,
    *,
    token_source: TokenSource | None = None,
    fresh: bool = False,
) -> ClientCredential:
    """MSAL's `client_credential` for `settings.credential_type` (see the module docstring).

    `token_source` replaces the ManagedIdentityCredential (managed_identity only); `fresh` reads
    the secret past any cache (Entra rejected the cached one)."""
    kind = settings.credential_type
    read = secrets.refresh if fresh else secrets.get
    if kind == "secret":
        return _client_secret(read, settings.client_secret_name)
    if kind == "certificate":
        name = settings.client_certificate_name
        certificate = load_client_certificate(read(name), name)
        REDACTOR.register(certificate.private_key_pem)
        log.info(
            "client credential: certificate from secret %r (SHA-1 thumbprint %s, expires %s)",
            name,
            certificate.sha1_thumbprint,
            certificate.not_after.date().isoformat(),
        )
        return {
            "private_key": certificate.private_key_pem,
            "public_certificate": certificate.certificate_pem,
        }
    if kind == "managed_identity":
        return {"client_assertion": _managed_identity_assertion(settings, token_source)}
    assert_never(kind)  # Settings.from_env admits only the three types above


def _client_secret(read: Callable[[str], str], name: str) -> str:
    value = read(name).strip()  # a pasted trailing newline is never part of a secret
    if not value:
        raise SecretError(
            f"secret {name!r} is empty; store the client secret's value (not its id) there"
        )
    REDACTOR.register(value)
    log.info("client credential: client secret from secret %r", name)
    return value


def _managed_identity_assertion(
    settings: Settings, token_source: TokenSource | None
) -> ManagedIdentityAssertion:
    client_id = settings.managed_identity_client_id
    if not client_id:
        raise ConfigError(
            [
                "AZURE_CLIENT_ID is missing: CLIENT_CREDENTIAL_TYPE=managed_identity needs the "
                "client id of the user-assigned identity federated with the app registration"
            ]
        )
    if token_source is None:
        from azure.identity import ManagedIdentityCredential

        token_source = ManagedIdentityCredential(client_id=client_id)
    scope = exchange_scope(settings.authority_host)
    log.info("client credential: federated managed identity %s (%s)", client_id, scope)
    return ManagedIdentityAssertion(token_source, scope)
