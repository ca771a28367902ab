"""Entra client credentials against the running simulator, driven by the real MSAL library."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from simworld import World

from graphsim.testing import SimHandle

pytestmark = pytest.mark.integration


def msal_app(
    sim: SimHandle, tenant: str, client_id: str, credential: Any
) -> msal.ConfidentialClientApplication:
    session = requests.Session()
    session.verify = sim.ca_pem_path
    # requests lets REQUESTS_CA_BUNDLE override Session.verify unless trust_env is off.
    session.trust_env = False
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=f"{sim.authority_host}/{tenant}",
        http_client=session,
        instance_discovery=False,
    )


def self_signed() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calsync test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def test_msal_acquires_token_with_client_secret(world: World) -> None:
    """Real MSAL gets a Graph token by secret; it carries tid, appid, roles and the Graph aud."""
    sim = world.sim
    app = msal_app(sim, world.tenant_id, world.client_id, world.secret)
    result = app.acquire_token_for_client(scopes=[sim.graph_scope])
    assert result.get("token_type") == "Bearer", result
    assert result["expires_in"] == 3599
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["tid"] == world.tenant_id
    assert claims["appid"] == world.client_id
    assert claims["aud"] == sim.authority_host
    assert sorted(claims["roles"]) == ["Calendars.ReadWrite", "User.Read.All"]


def test_msal_accepts_tenant_domain_as_authority(world: World) -> None:
    """The authority may name the tenant by its domain, as login.microsoftonline.com allows."""
    app = msal_app(world.sim, world.domain, world.client_id, world.secret)
    result = app.acquire_token_for_client(scopes=[world.sim.graph_scope])
    assert "access_token" in result, result


@pytest.mark.parametrize("by_thumbprint", [False, True])
def test_msal_acquires_token_with_client_assertion(world: World, by_thumbprint: bool) -> None:
    """A signed client assertion (PS256 + x5t#S256, or RS256 + SHA-1 x5t) is accepted."""
    key_pem, cert_pem = self_signed()
    client_id = str(uuid.uuid4())
    world.sim.control.seed(
        apps=[{"client_id": client_id, "tenant": world.tenant_id, "certificates": [cert_pem]}],
        consents=[{"tenant": world.tenant_id, "client_id": client_id, "roles": ["Calendars.Read"]}],
    )
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    credential: dict[str, str] = {"private_key": key_pem}
    if by_thumbprint:
        credential["thumbprint"] = cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303
    else:
        credential["public_certificate"] = cert_pem
    app = msal_app(world.sim, world.tenant_id, client_id, credential)
    result = app.acquire_token_for_client(scopes=[world.sim.graph_scope])
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["appidacr"] == "2"
    assert claims["roles"] == ["Calendars.Read"]


def test_assertion_signed_by_unregistered_key_is_refused(world: World) -> None:
    """An assertion from a certificate the app does not have: AADSTS700027."""
    key_pem, cert_pem = self_signed()
    app = msal_app(
        world.sim,
        world.tenant_id,
        world.client_id,
        {"private_key": key_pem, "public_certificate": cert_pem},
    )
    result = app.acquire_token_for_client(scopes=[world.sim.graph_scope])
    assert result["error_codes"] == [700027]
    assert result["error"] == "invalid_client"


def test_unknown_tenant_is_aadsts90002(sim: SimHandle) -> None:
    """Discovery of an unknown tenant fails with AADSTS90002, which MSAL raises at construction."""
    with pytest.raises(ValueError, match="Unable to get authority configuration") as caught:
        msal_app(sim, "no-such-tenant.example", str(uuid.uuid4()), "x")
    assert "AADSTS90002" in str(caught.value.__context__)
    response = requests.post(
        f"{sim.authority_host}/{uuid.uuid4()}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials"},
        verify=sim.ca_pem_path,
        timeout=10,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: ")


def test_unknown_app_is_aadsts700016(world: World) -> None:
    """A client id with no registration or service principal in the tenant: AADSTS700016."""
    app = msal_app(world.sim, world.tenant_id, str(uuid.uuid4()), "whatever")
    result = app.acquire_token_for_client(scopes=[world.sim.graph_scope])
    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]
    assert result["error_description"].startswith("AADSTS700016: ")


def test_app_of_another_tenant_without_consent_is_aadsts700016(
    world: World, sim: SimHandle
) -> None:
    """An app registered elsewhere and never consented here is not found in this tenant."""
    from simworld import make_world

    other = make_world(sim)
    app = msal_app(sim, world.tenant_id, other.client_id, other.secret)
    assert app.acquire_token_for_client(scopes=[sim.graph_scope])["error_codes"] == [700016]


def test_wrong_secret_is_aadsts7000215(world: World) -> None:
    """A wrong client secret: invalid_client, AADSTS7000215."""
    app = msal_app(world.sim, world.tenant_id, world.client_id, "not-the-secret")
    result = app.acquire_token_for_client(scopes=[world.sim.graph_scope])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert "not-the-secret" not in result["error_description"]


def test_expired_secret_is_aadsts7000222(world: World) -> None:
    """A secret past its end date (on the virtual clock): AADSTS7000222."""
    world.sim.control.add_app_secret(world.client_id, "short-lived", expires={"in_s": 60})
    app = msal_app(world.sim, world.tenant_id, world.client_id, "short-lived")
    assert "access_token" in app.acquire_token_for_client(scopes=[world.sim.graph_scope])
    world.sim.control.advance(120)
    fresh = msal_app(world.sim, world.tenant_id, world.client_id, "short-lived")
    result = fresh.acquire_token_for_client(scopes=[world.sim.graph_scope])
    assert result["error_codes"] == [7000222]
    assert result["error_description"].startswith("AADSTS7000222: ")


def test_no_admin_consent_is_aadsts65001(world: World) -> None:
    """An app present in the tenant without admin consent: invalid_grant, AADSTS65001."""
    client_id, secret = world.new_app(roles=None)
    app = msal_app(world.sim, world.tenant_id, client_id, secret)
    result = app.acquire_token_for_client(scopes=[world.sim.graph_scope])
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [65001]


def test_revoked_consent_is_aadsts65001(world: World) -> None:
    """Revoking admin consent makes the next token request fail with AADSTS65001."""
    world.sim.control.revoke_consent(world.tenant_id, world.client_id)
    app = msal_app(world.sim, world.tenant_id, world.client_id, world.secret)
    assert app.acquire_token_for_client(scopes=[world.sim.graph_scope])["error_codes"] == [65001]


def test_unknown_resource_is_aadsts500011(world: World) -> None:
    """A scope for a resource the simulator does not host: AADSTS500011, invalid_resource."""
    app = msal_app(world.sim, world.tenant_id, world.client_id, world.secret)
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert result["error"] == "invalid_resource"
    assert result["error_codes"] == [500011]


def test_openid_configuration_has_what_msal_needs(world: World) -> None:
    """Discovery answers token_endpoint and authorization_endpoint under the tenant's id."""
    response = requests.get(
        f"{world.sim.authority_host}/{world.domain}/v2.0/.well-known/openid-configuration",
        verify=world.sim.ca_pem_path,
        timeout=10,
    )
    doc = response.json()
    assert (
        doc["token_endpoint"] == f"{world.sim.authority_host}/{world.tenant_id}/oauth2/v2.0/token"
    )
    assert doc["authorization_endpoint"].startswith(world.sim.authority_host)
