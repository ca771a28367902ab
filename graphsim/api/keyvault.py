"""Azure Key Vault secrets: `GET /secrets/{name}[/{version}]` with the real challenge flow.

Rule: a request without a valid bearer token gets 401 and a `WWW-Authenticate: Bearer
authorization="<authority>/<tenant>", resource="<vault resource>"` challenge first, exactly what
azure-keyvault-secrets' ChallengeAuthPolicy expects; the token must be for the vault resource and
the vault's tenant and unexpired on the virtual clock. Secrets carry `exp`/`nbf` attributes,
which Key Vault reports but does not enforce on read; a disabled secret is 403.
Sources: learn.microsoft.com/rest/api/keyvault/secrets/get-secret and
learn.microsoft.com/azure/key-vault/general/authentication.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from graphsim.simulator import Simulator


def _kv_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def get_secret(request: Request) -> JSONResponse:
    sim: Simulator = request.app.state.sim
    name = request.path_params["name"]
    version = request.path_params.get("version", "")
    response = _answer(sim, request, name, version)
    sim.counters.request("keyvault.get_secret", response.status_code, None)
    return response


def _answer(sim: Simulator, request: Request, name: str, version: str) -> JSONResponse:
    vault = sim.vault
    tenant_id = vault.tenant_id or next(iter(sim.directory.tenants.values())).id
    challenge = {
        "WWW-Authenticate": f'Bearer authorization="{sim.urls.authority_host}/{tenant_id}", '
        f'resource="{sim.urls.key_vault_resource}"'
    }
    if "api-version" not in request.query_params:
        return _kv_error(
            400, "BadParameter", "The 'api-version' query parameter is missing; add it."
        )
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        return _kv_error(
            401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", challenge
        )
    claims = sim.signer.claims(auth[7:])
    if claims is None:
        return _kv_error(401, "Unauthorized", "AKV10031: Invalid token signature.", challenge)
    if claims.get("aud") != sim.urls.key_vault_resource:
        return _kv_error(
            401,
            "Unauthorized",
            f"AKV10022: Invalid audience. Expected "
            f"{sim.urls.key_vault_resource}, found: {claims.get('aud')}.",
            challenge,
        )
    if str(claims.get("tid", "")).lower() != tenant_id.lower():
        return _kv_error(
            401,
            "Unauthorized",
            f"AKV10032: Invalid issuer. Expected one of "
            f"https://sts.windows.net/{tenant_id}/, found {claims.get('iss')}.",
            challenge,
        )
    if float(claims.get("exp", 0)) <= sim.clock.timestamp():
        return _kv_error(
            401,
            "Unauthorized",
            "AKV10013: Token expired: the lifetime validation failed.",
            challenge,
        )
    secret = vault.find(name, version)
    if secret is None:
        what = f"{name}/{version}" if version else name
        return _kv_error(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {what} was not found in this key vault. If you recently "
            "deleted this secret you may be able to recover it using the correct recovery "
            "command.",
        )
    if not secret.enabled:
        return _kv_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.")
    attributes: dict[str, Any] = {
        "enabled": secret.enabled,
        "created": secret.created,
        "updated": secret.created,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    }
    if secret.exp is not None:
        attributes["exp"] = secret.exp
    if secret.nbf is not None:
        attributes["nbf"] = secret.nbf
    body: dict[str, Any] = {
        "value": secret.value,
        "id": f"{sim.urls.key_vault_url}/secrets/{name}/{secret.version}",
        "attributes": attributes,
        "tags": secret.tags,
    }
    if secret.content_type:
        body["contentType"] = secret.content_type
    return JSONResponse(body)
