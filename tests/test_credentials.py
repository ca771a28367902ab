"""The app's client credential for MSAL: one per CLIENT_CREDENTIAL_TYPE, fed to real MSAL.

MSAL's HTTP goes to a recording fake `http_client` (MSAL's own I/O seam); the managed identity is
a tiny HTTP server speaking the App Service protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER), used by
the real azure-identity ManagedIdentityCredential.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from shared.credentials import (
    REFRESH_MARGIN_SECONDS,
    ManagedIdentityAssertion,
    build_client_credential,
    exchange_scope,
    load_client_certificate,
)
from shared.errors import ConfigError, SecretError, SecretNotFound, TokenError
from shared.settings import Settings

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
MI_CLIENT = "99999999-8888-7777-6666-555555555555"
SECRET_VALUE = "Zq8~client.secret-value_NEVER-logged"
IDENTITY_HEADER = "identity-header-value-never-logged"
NOW = datetime.now(UTC)


class DictSecrets:
    """The secrets port over a dict (the store's own behaviour is tested in test_secrets.py)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str:
        if name not in self.values:
            raise SecretNotFound(name, "the test store")
        return self.values[name]

    def refresh(self, name: str) -> str:
        return self.get(name)


def settings(kind: str, **extra: str) -> Settings:
    env = {
        "TENANT_IDS": TENANT,
        "CLIENT_ID": CLIENT,
        "CLIENT_CREDENTIAL_TYPE": kind,
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    }
    return Settings.from_env(env | extra)


# ---- certificates ---------------------------------------------------------------------------


def _cert(
    key: Any,
    subject: str,
    *,
    issuer_key: Any = None,
    issuer: str = "",
    days: tuple[int, int] = (-1, 365),
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + timedelta(days=days[0]))
        .not_valid_after(NOW + timedelta(days=days[1]))
        .sign(issuer_key or key, hashes.SHA256())
    )


def _key_pem(
    key: Any,
    fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
    password: bytes | None = None,
) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def material() -> dict[str, Any]:
    """RSA keys and certificates made once for the module (key generation is the slow part)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert(ca_key, "calsync test CA")
    leaf = _cert(key, "calsync client", issuer_key=ca_key, issuer="calsync test CA")
    return {
        "key": key,
        "other": other,
        "leaf": leaf,
        "ca": ca,
        # Key Vault's PEM form: the private key, then the certificate (chain).
        "pem": _key_pem(key) + _cert_pem(leaf) + _cert_pem(ca),
    }


def test_secret_type_gives_msal_the_secret_string() -> None:
    """CLIENT_CREDENTIAL_TYPE=secret yields the secret's value, without a pasted newline."""
    store = DictSecrets({"graph-client-secret": SECRET_VALUE + "\n"})
    assert build_client_credential(settings("secret"), store) == SECRET_VALUE


def test_secret_type_reads_the_configured_secret_name() -> None:
    """CLIENT_SECRET_NAME chooses the secret; a missing one is SecretNotFound naming it."""
    store = DictSecrets({"other-name": SECRET_VALUE})
    assert build_client_credential(settings("secret", CLIENT_SECRET_NAME="other-name"), store)
    with pytest.raises(SecretNotFound, match="graph-client-secret"):
        build_client_credential(settings("secret"), store)


def test_empty_secret_is_an_error_naming_the_secret() -> None:
    """A blank secret fails at once, naming the secret, instead of an AADSTS error later."""
    with pytest.raises(SecretError, match="'graph-client-secret' is empty"):
        build_client_credential(settings("secret"), DictSecrets({"graph-client-secret": " \n"}))


def test_certificate_pem_gives_key_and_leaf_certificate(material: dict[str, Any]) -> None:
    """A Key Vault PEM (key, leaf, CA) in any order gives MSAL key + leaf, no SHA-1 thumbprint."""
    ca_first = _cert_pem(material["ca"]) + _key_pem(material["key"]) + _cert_pem(material["leaf"])
    for text in (material["pem"], ca_first):
        cred = build_client_credential(
            settings("certificate"), DictSecrets({"graph-client-certificate": text})
        )
        assert isinstance(cred, dict)
        assert set(cred) == {"private_key", "public_certificate"}
        assert cred["public_certificate"] == _cert_pem(material["leaf"])
        loaded = serialization.load_pem_private_key(cred["private_key"].encode(), None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        assert loaded.private_numbers() == material["key"].private_numbers()


def test_certificate_in_traditional_rsa_pem_is_accepted(material: dict[str, Any]) -> None:
    """An 'RSA PRIVATE KEY' (PKCS#1) block works as well as PKCS#8."""
    text = _key_pem(material["key"], serialization.PrivateFormat.TraditionalOpenSSL)
    got = load_client_certificate(text + _cert_pem(material["leaf"]), "c", now=NOW)
    assert got.certificate_pem == _cert_pem(material["leaf"])


def test_certificate_as_key_vault_pkcs12_is_accepted(material: dict[str, Any]) -> None:
    """Key Vault's default certificate secret (base64 PKCS#12, no password) is read too."""
    blob = pkcs12.serialize_key_and_certificates(
        b"calsync",
        material["key"],
        material["leaf"],
        [material["ca"]],
        serialization.NoEncryption(),
    )
    got = load_client_certificate(base64.b64encode(blob).decode(), "c", now=NOW)
    assert got.certificate_pem == _cert_pem(material["leaf"])
    expected = material["leaf"].fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
    assert got.sha1_thumbprint == expected


def _bad_cases(material: dict[str, Any]) -> dict[str, tuple[str, str]]:
    key, leaf, other = material["key"], material["leaf"], material["other"]
    pem = material["pem"]
    lines = _key_pem(key).splitlines()
    corrupt_key = "\n".join([lines[0], *(line[::-1] for line in lines[1:-1]), lines[-1]])
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "garbage": ("this is not a certificate at all !", "neither PEM nor base64 PKCS#12"),
        "pfx-with-password": (
            base64.b64encode(
                pkcs12.serialize_key_and_certificates(
                    b"x", key, leaf, None, serialization.BestAvailableEncryption(b"pw")
                )
            ).decode(),
            "neither PEM nor base64 PKCS#12 without a password",
        ),
        "certificate-only": (_cert_pem(leaf), "no private key"),
        "key-only": (_key_pem(key), "holds no certificate"),
        "corrupt-key": (corrupt_key + "\n" + _cert_pem(leaf), "private key cannot be read"),
        "corrupt-certificate": (
            _key_pem(key) + _cert_pem(leaf).replace("M", "A", 20),
            "certificate in it cannot",
        ),
        "encrypted-key": (_key_pem(key, password=b"pw") + _cert_pem(leaf), "encrypted"),
        "legacy-encrypted-key": (
            _key_pem(key, serialization.PrivateFormat.TraditionalOpenSSL, b"pw") + _cert_pem(leaf),
            "encrypted",
        ),
        "mismatched": (_key_pem(other) + _cert_pem(leaf), "matches its private key"),
        "two-keys": (_key_pem(other) + pem, "more than one private key"),
        "ec-key": (_key_pem(ec_key) + _cert_pem(_cert(ec_key, "ec")), "not an RSA key"),
        "expired": (_key_pem(key) + _cert_pem(_cert(key, "old", days=(-30, -1))), "expired on"),
    }


CASES = [
    "garbage",
    "pfx-with-password",
    "certificate-only",
    "key-only",
    "corrupt-key",
    "corrupt-certificate",
    "encrypted-key",
    "legacy-encrypted-key",
    "mismatched",
    "two-keys",
    "ec-key",
    "expired",
]


@pytest.mark.parametrize("case", CASES)
def test_unusable_certificate_error_names_secret_never_content(
    case: str, material: dict[str, Any]
) -> None:
    """Each unusable certificate secret is a SecretError naming the secret and the problem; no
    line of the secret appears in the message or the printed traceback."""
    text, reason = _bad_cases(material)[case]
    store = DictSecrets({"my-cert": text})
    with pytest.raises(SecretError) as info:
        build_client_credential(settings("certificate", CLIENT_CERTIFICATE_NAME="my-cert"), store)
    message = str(info.value)
    assert "'my-cert'" in message
    assert reason in message
    printed = "".join(traceback.format_exception(info.value))
    body = [ln for ln in text.splitlines() if len(ln) >= 16 and not ln.startswith("-----")]
    assert body  # the check below must have something to look for
    for line in body:  # no 16-character stretch of the content, anywhere in what is printed
        for start in range(0, len(line) - 15, 4):
            assert line[start : start + 16] not in printed


def test_certificate_close_to_expiry_is_logged_as_a_warning(
    material: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate with under 30 days left still works but logs a warning naming the secret."""
    soon = _cert(material["key"], "soon", days=(-300, 10))
    with caplog.at_level(logging.WARNING, logger="calsync.credentials"):
        load_client_certificate(_key_pem(material["key"]) + _cert_pem(soon), "cert-x", now=NOW)
    assert "'cert-x' expires on" in caplog.text


# ---- MSAL with a recording http_client --------------------------------------------------------


class _Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status_code = status
        self.text = json.dumps(body)
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}")


class RecordingEntra:
    """MSAL's http_client: serves the tenant's OpenID configuration and records token requests."""

    def __init__(self) -> None:
        self.base = f"https://login.microsoftonline.com/{TENANT}"
        self.token_url = f"{self.base}/oauth2/v2.0/token"
        self.forms: list[dict[str, str]] = []

    def get(self, url: str, params: Any = None, headers: Any = None, **_: Any) -> _Response:
        assert url == f"{self.base}/v2.0/.well-known/openid-configuration"
        return _Response(
            200,
            {
                "authorization_endpoint": f"{self.base}/oauth2/v2.0/authorize",
                "token_endpoint": self.token_url,
                "issuer": f"https://login.microsoftonline.com/{TENANT}/v2.0",
            },
        )

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **_: Any
    ) -> _Response:
        assert url == self.token_url
        self.forms.append(dict(data))
        return _Response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "access_token": f"graph-token-{len(self.forms)}",
            },
        )

    def close(self) -> None:
        pass


def acquire(credential: Any, entra: RecordingEntra) -> dict[str, str]:
    """Build a real MSAL app with `credential`, get a Graph token, return the posted form."""
    app = msal.ConfidentialClientApplication(
        CLIENT,
        client_credential=credential,
        authority=entra.base,
        http_client=entra,
        token_cache=msal.TokenCache(),
    )
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert result.get("access_token", "").startswith("graph-token-"), result
    return entra.forms[-1]


def test_msal_sends_the_client_secret() -> None:
    """MSAL posts the secret from the secret type as client_secret."""
    cred = build_client_credential(
        settings("secret"), DictSecrets({"graph-client-secret": SECRET_VALUE})
    )
    form = acquire(cred, RecordingEntra())
    assert form["client_secret"] == SECRET_VALUE
    assert "client_assertion" not in form


def test_msal_signs_an_assertion_entra_can_verify(material: dict[str, Any]) -> None:
    """With the certificate credential MSAL sends a PS256 assertion whose x5t#S256 is the leaf's
    SHA-256 thumbprint and whose signature verifies with the leaf's public key (Entra's check)."""
    cred = build_client_credential(
        settings("certificate"), DictSecrets({"graph-client-certificate": material["pem"]})
    )
    entra = RecordingEntra()
    form = acquire(cred, entra)
    assertion = form["client_assertion"]
    header = jwt.get_unverified_header(assertion)
    der = material["leaf"].public_bytes(serialization.Encoding.DER)
    thumb = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert header["alg"] == "PS256"
    # MSAL 1.39 keeps the base64url padding ('='); Entra compares the digest, so do we.
    assert header["x5t#S256"].rstrip("=") == thumb
    claims = jwt.decode(
        assertion, material["leaf"].public_key(), algorithms=["PS256"], audience=entra.token_url
    )
    assert claims["iss"] == claims["sub"] == CLIENT
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# ---- managed identity (App Service protocol on loopback) --------------------------------------


class IdentityEndpoint:
    """The App Service managed identity endpoint: GET ?api-version&resource&client_id with the
    X-IDENTITY-HEADER header; answers a token valid for `lifetime` seconds."""

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        self.lifetime = 3600
        self.status = 200
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                endpoint.requests.append(query)
                if self.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
                    self._send(401, {"statusCode": 401, "message": "bad identity header"})
                elif endpoint.status != 200:
                    self._send(
                        endpoint.status,
                        {"statusCode": endpoint.status, "message": "Identity not found"},
                    )
                else:
                    n = len(endpoint.requests)
                    self._send(
                        200,
                        {
                            "access_token": f"mi-token-{n}-never-logged",
                            "expires_on": str(int(time.time()) + endpoint.lifetime),
                            "resource": query.get("resource", [""])[0],
                            "token_type": "Bearer",
                            "client_id": query.get("client_id", [""])[0],
                        },
                    )

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/msi/token"


@pytest.fixture
def identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdentityEndpoint]:
    """A managed identity endpoint on loopback, announced the way App Service does (env vars)."""
    endpoint = IdentityEndpoint()
    thread = threading.Thread(target=endpoint.server.serve_forever, daemon=True)
    thread.start()
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()
    thread.join(timeout=5)


def test_msal_sends_the_managed_identity_token_as_assertion(identity: IdentityEndpoint) -> None:
    """With managed_identity MSAL posts the identity's token for api://AzureADTokenExchange (asked
    for the configured user-assigned identity) as the client assertion."""
    cred = build_client_credential(
        settings("managed_identity", AZURE_CLIENT_ID=MI_CLIENT), DictSecrets({})
    )
    form = acquire(cred, RecordingEntra())
    assert form["client_assertion"] == "mi-token-1-never-logged"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    (query,) = identity.requests
    assert query["resource"] == ["api://AzureADTokenExchange"]
    assert query["client_id"] == [MI_CLIENT]
    assert query["api-version"] == ["2019-08-01"]


def test_managed_identity_token_is_reused_across_token_requests(
    identity: IdentityEndpoint,
) -> None:
    """One identity token serves many MSAL token requests while it is far from expiry."""
    cred = build_client_credential(
        settings("managed_identity", AZURE_CLIENT_ID=MI_CLIENT), DictSecrets({})
    )
    assert isinstance(cred, dict)
    assertion = cred["client_assertion"]
    assert assertion() == assertion() == "mi-token-1-never-logged"
    assert len(identity.requests) == 1


def test_identity_endpoint_failure_is_a_token_error(identity: IdentityEndpoint) -> None:
    """An identity endpoint that refuses gives a TokenError pointing at AZURE_CLIENT_ID."""
    identity.status = 400
    cred = build_client_credential(
        settings("managed_identity", AZURE_CLIENT_ID=MI_CLIENT), DictSecrets({})
    )
    assert isinstance(cred, dict)
    with pytest.raises(TokenError) as info:
        cred["client_assertion"]()
    assert info.value.error == "managed_identity_unavailable"
    assert "AZURE_CLIENT_ID" in str(info.value)


class CountingSource:
    """A token source that hands out numbered tokens expiring `lifetime` seconds from `now`."""

    def __init__(self, clock: list[float], lifetime: float) -> None:
        self.clock, self.lifetime, self.scopes = clock, lifetime, list[str]()

    def get_token(self, *scopes: str) -> Any:
        self.scopes.extend(scopes)
        n = len(self.scopes)
        return type("Tok", (), {"token": f"t{n}", "expires_on": int(self.clock[0] + self.lifetime)})


def test_assertion_is_refreshed_only_near_expiry() -> None:
    """The cached identity token is used until REFRESH_MARGIN_SECONDS before it expires."""
    clock = [1_000_000.0]
    source = CountingSource(clock, lifetime=3600)
    assertion = ManagedIdentityAssertion(
        source, "api://AzureADTokenExchange/.default", clock=lambda: clock[0]
    )
    assert assertion() == "t1"
    clock[0] += 3600 - REFRESH_MARGIN_SECONDS - 1
    assert assertion() == "t1"
    clock[0] += 2
    assert assertion() == "t2"
    assert source.scopes == ["api://AzureADTokenExchange/.default"] * 2


@pytest.mark.parametrize(
    ("authority_host", "scope"),
    [
        ("https://login.microsoftonline.com", "api://AzureADTokenExchange/.default"),
        ("https://login.microsoftonline.us", "api://AzureADTokenExchangeUSGov/.default"),
        ("https://login.chinacloudapi.cn", "api://AzureADTokenExchangeChina/.default"),
        ("https://127.0.0.1:8443", "api://AzureADTokenExchange/.default"),
    ],
)
def test_exchange_audience_follows_the_cloud(authority_host: str, scope: str) -> None:
    """The identity token's audience is the one Entra accepts in that cloud."""
    assert exchange_scope(authority_host) == scope


def test_managed_identity_without_identity_client_id_is_a_config_error() -> None:
    """managed_identity without AZURE_CLIENT_ID fails naming the setting (no silent default)."""
    s = Settings(tenant_ids=(TENANT,), client_id=CLIENT, credential_type="managed_identity")
    with pytest.raises(ConfigError, match="AZURE_CLIENT_ID"):
        build_client_credential(s, DictSecrets({}))


def test_no_secret_value_reaches_the_logs(
    material: dict[str, Any], identity: IdentityEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """With every logger at DEBUG (ours, MSAL, azure-identity), a full token round trip of each
    credential type logs neither the secret, the private key, the identity token nor its header."""
    caplog.set_level(logging.DEBUG)
    store = DictSecrets(
        {"graph-client-secret": SECRET_VALUE, "graph-client-certificate": material["pem"]}
    )
    acquire(build_client_credential(settings("secret"), store), RecordingEntra())
    acquire(build_client_credential(settings("certificate"), store), RecordingEntra())
    acquire(
        build_client_credential(settings("managed_identity", AZURE_CLIENT_ID=MI_CLIENT), store),
        RecordingEntra(),
    )
    assert "client credential: certificate from secret" in caplog.text  # logging did happen
    key_lines = [ln for ln in _key_pem(material["key"]).splitlines() if not ln.startswith("-")]
    for needle in [SECRET_VALUE, IDENTITY_HEADER, "mi-token-1-never-logged", *key_lines]:
        assert needle not in caplog.text
