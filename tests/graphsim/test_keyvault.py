"""Key Vault secrets against the running simulator, read by the real azure-keyvault-secrets."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from simworld import World, make_world

from graphsim.testing import SimHandle

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kv_world(sim: SimHandle) -> World:
    """One vault tenant for the module: SecretClient caches the vault's challenge (and so its
    tenant) per process, as it would for a real vault, which belongs to one tenant."""
    world = make_world(sim)
    sim.control.seed(vault_tenant=world.tenant_id)
    return world


def secret_client(world: World) -> SecretClient:
    sim = world.sim
    credential = ClientSecretCredential(
        world.tenant_id,
        world.client_id,
        world.secret,
        authority=sim.authority_host,
        connection_verify=sim.ca_pem_path,
        disable_instance_discovery=True,
    )
    # verify_challenge_resource stays at its default (True): the challenge resource is
    # chosen so that the SDK's own domain check accepts the loopback vault.
    return SecretClient(sim.key_vault_url, credential, connection_verify=sim.ca_pem_path)


def test_secret_client_reads_secret_and_exp(kv_world: World) -> None:
    """SecretClient + ClientSecretCredential read a secret's value, version and exp."""
    expires = dt.datetime(2031, 5, 1, 12, 0, tzinfo=dt.UTC)
    kv_world.sim.control.seed(
        secrets=[
            {"name": "graph-client-secret", "value": "s3cr3t-value", "exp": expires.isoformat()}
        ],
    )
    client = secret_client(kv_world)
    secret = client.get_secret("graph-client-secret")
    assert secret.value == "s3cr3t-value"
    assert secret.properties.expires_on == expires
    assert secret.properties.enabled is True
    assert secret.name == "graph-client-secret"
    assert secret.properties.version


def test_secret_versions_are_addressable(kv_world: World) -> None:
    """The newest version answers by default; an older one by its version id."""
    first = kv_world.sim.control.seed(secrets=[{"name": "rot", "value": "v1"}])
    kv_world.sim.control.seed(secrets=[{"name": "rot", "value": "v2"}])
    client = secret_client(kv_world)
    assert client.get_secret("rot").value == "v2"
    assert client.get_secret("rot", first["secret_versions"]["rot"]).value == "v1"


def test_missing_secret_is_404(kv_world: World) -> None:
    """An unknown name is SecretNotFound (ResourceNotFoundError in the SDK)."""
    with pytest.raises(ResourceNotFoundError, match="SecretNotFound"):
        secret_client(kv_world).get_secret("does-not-exist")


def test_first_request_gets_the_bearer_challenge(kv_world: World) -> None:
    """Without a token: 401 with WWW-Authenticate naming the authority+tenant and resource."""
    sim = kv_world.sim
    sim.control.seed(secrets=[{"name": "x", "value": "y"}])
    response = httpx.get(f"{sim.key_vault_url}/secrets/x?api-version=7.6", verify=sim.ssl_context())
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert f'authorization="{sim.authority_host}/{kv_world.tenant_id}"' in challenge
    assert f'resource="{sim.key_vault_resource}"' in challenge


def test_graph_token_is_refused_by_the_vault(kv_world: World) -> None:
    """A token for Graph's audience is 401 at the vault (audience is checked)."""
    sim = kv_world.sim
    sim.control.seed(secrets=[{"name": "x", "value": "y"}])
    response = httpx.get(
        f"{sim.key_vault_url}/secrets/x?api-version=7.6",
        headers={"Authorization": f"Bearer {kv_world.token()}"},
        verify=sim.ssl_context(),
    )
    assert response.status_code == 401
    assert "AKV10022" in response.json()["error"]["message"]
