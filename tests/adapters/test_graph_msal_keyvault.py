"""Graph, MSAL and Key Vault adapters against the simulator over TLS: real MSAL, httpx and
SecretClient; errors mapped to the project's hierarchy with Entra's and Graph's codes."""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from graphsim.testing import SimHandle, run_simulator
from shared.adapters.graph_httpx import GraphClient
from shared.adapters.keyvault import KeyVaultSecrets
from shared.adapters.msal_tokens import MsalTokens
from shared.core import graph as g
from shared.core import graph_types as t
from shared.core import oplog
from shared.core.model import MailboxKey, Window
from shared.core.paging import iter_delta_pages, iter_subscriptions
from shared.errors import (
    DeltaExpired,
    EntraUnreachable,
    GraphUnreachable,
    NotFoundError,
    SecretNotFound,
    SubscriptionGone,
    Throttled,
    TokenError,
)
from shared.settings import Settings

pytestmark = pytest.mark.integration
SECRET = "adapter-test-secret-value"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=3) as handle:
        yield handle


@pytest.fixture(scope="module")
def world(sim: SimHandle) -> dict[str, str]:
    tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
    seeded = sim.control.seed(
        tenants=[{"id": tenant, "domain": "fabrikam.example"}],
        apps=[{"client_id": client, "tenant": tenant, "secrets": [{"value": SECRET}]}],
        consents=[
            {"tenant": tenant, "client_id": client, "roles": ["Calendars.Read", "User.Read.All"]}
        ],
        users=[{"tenant": tenant, "upn": "megan@fabrikam.example"}],
        vault_tenant=tenant,
        secrets=[{"name": "graph-client-secret", "value": SECRET}],
    )
    return {"tenant": tenant, "client": client, "user": seeded["users"]["megan@fabrikam.example"]}


def _settings(sim: SimHandle, world: dict[str, str]) -> Settings:
    return Settings.from_env(
        {
            "TENANT_IDS": world["tenant"],
            "CLIENT_ID": world["client"],
            "GRAPH_BASE_URL": sim.graph_base_url,
            "AUTHORITY_HOST": sim.authority_host,
            "CA_BUNDLE": sim.ca_pem_path,
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        }
    )


@pytest.fixture
def closing() -> Iterator[list[MsalTokens | GraphClient]]:
    """Clients a test opens, closed when it ends (no socket left to the garbage collector)."""
    opened: list[MsalTokens | GraphClient] = []
    yield opened
    for thing in opened:
        thing.close()


def _tokens(
    sim: SimHandle,
    world: dict[str, str],
    closing: list[MsalTokens | GraphClient],
    secret: str = SECRET,
    settings: Settings | None = None,
) -> MsalTokens:
    tokens = MsalTokens(settings or _settings(sim, world), lambda: secret)
    closing.append(tokens)
    return tokens


def _graph(
    sim: SimHandle, world: dict[str, str], closing: list[MsalTokens | GraphClient]
) -> GraphClient:
    http = httpx.Client(verify=ssl.create_default_context(cafile=sim.ca_pem_path))
    graph = GraphClient(http, sim.graph_base_url, _tokens(sim, world, closing))
    closing.append(graph)
    return graph


def test_msal_gets_a_token_and_graph_answers(
    sim: SimHandle, world: dict[str, str], closing: list[MsalTokens | GraphClient]
) -> None:
    """Real MSAL through the CA-pinned session gets a token that Graph accepts."""
    graph = _graph(sim, world, closing)
    user = t.decode_user(graph.send(g.user_lookup(world["tenant"], "megan@fabrikam.example")))
    assert user.id.lower() == world["user"].lower()
    assert user.user_principal_name == "megan@fabrikam.example"


@pytest.mark.parametrize(
    ("tenant", "secret", "code"),
    [("unknown", SECRET, 90002), ("known", "wrong-secret-value", 7000215)],
)
def test_entra_refusals_carry_their_aadsts_code(
    sim: SimHandle,
    world: dict[str, str],
    closing: list[MsalTokens | GraphClient],
    tenant: str,
    secret: str,
    code: int,
) -> None:
    """Unknown tenant and wrong secret become TokenError with the AADSTS code and a hint."""
    settings = _settings(sim, world)
    tenant_id = str(uuid.uuid4()) if tenant == "unknown" else world["tenant"]
    tokens = _tokens(sim, world, closing, secret, replace(settings, tenant_ids=(tenant_id,)))
    with pytest.raises(TokenError) as info:
        tokens.token(tenant_id)
    assert info.value.aadsts == code
    assert secret not in str(info.value)


@pytest.mark.parametrize(
    ("secret", "status", "error"),
    [(SECRET, 200, ""), ("wrong-secret-value", 400, "AADSTS7000215")],
    ids=["granted", "refused"],
)
def test_entra_requests_are_recorded_without_secrets(
    sim: SimHandle, world: dict[str, str], secret: str, status: int, error: str
) -> None:
    """Each request MSAL makes to Entra is one outbound record: method, host and path, status,
    duration, Entra's refusal code; never the secret, the token or a query."""
    records: list[oplog.LogRecord] = []
    tokens = MsalTokens(_settings(sim, world), lambda: secret, observe=records.append)
    try:
        if status == 200:
            token = tokens.token(world["tenant"])
        else:
            token = ""
            with pytest.raises(TokenError):
                tokens.token(world["tenant"])
    finally:
        tokens.close()
    host = urlsplit(sim.authority_host).netloc
    posts = [r for r in records if r.kind == "token"]
    assert posts
    assert {(r.method, r.path, r.status, r.error) for r in posts} == {
        ("POST", f"{host}/{world['tenant']}/oauth2/v2.0/token", status, error)
    }
    assert all(r.direction == "out" and r.duration_ms >= 0 for r in records)
    assert all(r.client_request_id for r in posts)
    shown = repr(records)
    assert secret not in shown
    assert not token or token not in shown
    assert "?" not in "".join(r.path for r in records)


def test_graph_statuses_map_to_project_errors(
    sim: SimHandle, world: dict[str, str], closing: list[MsalTokens | GraphClient]
) -> None:
    """429 → Throttled(retry_after); 404 on a subscription → SubscriptionGone; 404 on a user →
    NotFoundError; 410 → expired; the delta pages and the subscription list are followed."""
    graph = _graph(sim, world, closing)
    tenant, user = world["tenant"], world["user"]
    sim.control.fault(429, count=1, path_contains=f"users/{user}", retry_after_s=2.5)
    with pytest.raises(Throttled) as info:
        graph.send(g.user_lookup(tenant, user))
    assert info.value.retry_after == 2.5
    when = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(SubscriptionGone):
        graph.send(g.subscription_renew(tenant, str(uuid.uuid4()), when))
    with pytest.raises(NotFoundError, match=r"nobody@fabrikam\.example"):
        graph.send(g.user_lookup(tenant, "nobody@fabrikam.example"))
    assert list(iter_subscriptions(g.subscription_list(tenant), graph.send)) == []
    key = MailboxKey(tenant, user)
    window = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    pages = list(iter_delta_pages(g.delta_start(key, window, body_type="text"), graph.send))
    link = pages[-1].delta_link
    assert link
    assert all(p.next_link for p in pages[:-1])
    sim.control.expire_delta("megan@fabrikam.example")
    with pytest.raises(DeltaExpired):
        graph.send(g.delta_follow(key, link, body_type="text"))


def test_unreachable_graph_and_entra_are_transient_errors(
    sim: SimHandle, world: dict[str, str], closing: list[MsalTokens | GraphClient]
) -> None:
    """No answer from Graph is GraphUnreachable, from Entra EntraUnreachable: both transient."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{s.getsockname()[1]}"
    http = httpx.Client(verify=ssl.create_default_context(cafile=sim.ca_pem_path))
    graph = GraphClient(http, f"{dead}/v1.0", _tokens(sim, world, closing))
    closing.append(graph)
    with pytest.raises(GraphUnreachable) as info:
        graph.send(g.user_lookup(world["tenant"], world["user"]))
    assert info.value.transient
    assert info.value.status is None
    tokens = _tokens(
        sim, world, closing, settings=replace(_settings(sim, world), authority_host=dead)
    )
    with pytest.raises(EntraUnreachable) as refused:
        tokens.token(world["tenant"])
    assert refused.value.transient


def test_an_outdated_cached_token_is_replaced_once(
    sim: SimHandle, world: dict[str, str], closing: list[MsalTokens | GraphClient]
) -> None:
    """When Graph says 401 to MSAL's cached token, one fresh token is fetched and used."""
    graph = _graph(sim, world, closing)
    lookup = g.user_lookup(world["tenant"], world["user"])
    graph.send(lookup)
    sim.control.advance(2 * 3600)  # the cached token is now expired in Graph's eyes
    user = t.decode_user(graph.send(lookup))
    assert user.id.lower() == world["user"].lower()


def test_key_vault_secrets_are_read_cached_and_named_when_missing(
    sim: SimHandle, world: dict[str, str]
) -> None:
    """SecretClient reads through the challenge flow; the TTL cache serves repeats; a missing
    secret is SecretNotFound naming it, never a value."""
    credential = ClientSecretCredential(
        world["tenant"],
        world["client"],
        SECRET,
        authority=sim.authority_host,
        connection_verify=sim.ca_pem_path,
        disable_instance_discovery=True,
    )
    client = SecretClient(sim.key_vault_url, credential, connection_verify=sim.ca_pem_path)
    clock = [0.0]
    secrets = KeyVaultSecrets(client, ttl=60, clock=lambda: clock[0])
    assert secrets.get("graph-client-secret") == SECRET
    sim.control.seed(secrets=[{"name": "graph-client-secret", "value": "rotated-secret-value"}])
    assert secrets.get("graph-client-secret") == SECRET  # cached
    clock[0] = 61.0
    assert secrets.get("graph-client-secret") == "rotated-secret-value"
    with pytest.raises(SecretNotFound, match="no-such-secret"):
        secrets.get("no-such-secret")
    client.close()
    credential.close()


def _self_signed() -> tuple[str, str]:
    """A fresh RSA key and self-signed certificate, as PEM (key, certificate)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calsync test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_credential_signs_in_end_to_end(
    sim: SimHandle, world: dict[str, str], closing: list[MsalTokens | GraphClient]
) -> None:
    """CLIENT_CREDENTIAL_TYPE=certificate: the PEM from the secrets port signs an assertion that
    Entra accepts; an unregistered certificate is refused with AADSTS700027."""
    from shared.credentials import build_client_credential
    from shared.secrets import EnvSecrets

    key_pem, cert_pem = _self_signed()
    client = str(uuid.uuid4())
    sim.control.seed(
        apps=[{"client_id": client, "tenant": world["tenant"], "certificates": [cert_pem]}],
        consents=[{"tenant": world["tenant"], "client_id": client, "roles": ["Calendars.Read"]}],
    )
    settings = replace(_settings(sim, world), client_id=client, credential_type="certificate")
    secrets = EnvSecrets({"SECRET_GRAPH_CLIENT_CERTIFICATE": key_pem + cert_pem})
    tokens = MsalTokens(settings, lambda: build_client_credential(settings, secrets))
    closing.append(tokens)
    assert tokens.token(world["tenant"])
    other_key, other_cert = _self_signed()
    stranger = EnvSecrets({"SECRET_GRAPH_CLIENT_CERTIFICATE": other_key + other_cert})
    refused = MsalTokens(settings, lambda: build_client_credential(settings, stranger))
    closing.append(refused)
    with pytest.raises(TokenError) as info:
        refused.token(world["tenant"])
    assert info.value.aadsts == 700027
