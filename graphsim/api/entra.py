"""Microsoft Entra, client-credentials flow only: discovery, token endpoint, token checks.

Rule: errors come back as Entra sends them (400, `error`, `error_description` starting with
"AADSTSnnnn: ", `error_codes`); access tokens carry tid, appid and roles claims (runtime/tokens.py
signs them). Client secrets expire on the virtual clock.
Sources: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
(request, answer and error shape) and
https://learn.microsoft.com/entra/identity-platform/reference-error-codes (the AADSTS codes).
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse

from graphsim.model.directory import App, Tenant
from graphsim.runtime.tokens import EntraError, TokenSigner, aadsts, check_assertion

__all__ = ["EntraError", "TokenSigner", "issue_token", "jwks", "openid_configuration", "token"]

if TYPE_CHECKING:
    from graphsim.simulator import Simulator


def error_response(exc: EntraError) -> JSONResponse:
    trace_id = str(uuid.uuid4())
    body = {
        "error": exc.error,
        "error_description": f"{exc.description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: "
        f"{trace_id}\r\nTimestamp: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%SZ')}",
        "error_codes": [exc.code],
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace_id,
        "correlation_id": trace_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={exc.code}",
    }
    return JSONResponse(body, status_code=400)


def _tenant(sim: Simulator, key: str) -> Tenant:
    tenant = sim.directory.find_tenant(key)
    if tenant is None:
        raise aadsts(
            90002,
            "invalid_tenant",
            f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID and "
            "are signing into the correct cloud. Check with your subscription administrator, "
            "this may happen if there are no active subscriptions for the tenant.",
        )
    return tenant


async def openid_configuration(request: Request) -> JSONResponse:
    sim: Simulator = request.app.state.sim
    try:
        tenant = _tenant(sim, request.path_params["tenant"])
    except EntraError as exc:
        return error_response(exc)
    base = f"{sim.urls.authority_host}/{tenant.id}"
    return JSONResponse(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{sim.urls.authority_host}/{tenant.id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{sim.urls.authority_host}/{tenant.id}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "graphsim",
        }
    )


async def jwks(request: Request) -> JSONResponse:
    sim: Simulator = request.app.state.sim
    return JSONResponse(sim.signer.jwks())


async def token(request: Request) -> JSONResponse:
    sim: Simulator = request.app.state.sim
    try:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        body = issue_token(sim, request.path_params["tenant"], form, str(request.url))
    except EntraError as exc:
        sim.counters.request("entra.token", 400, None)
        sim.counters.note(f"token_errors_AADSTS{exc.code}")
        return error_response(exc)
    sim.counters.request("entra.token", 200, None)
    return JSONResponse(body)


def issue_token(sim: Simulator, tenant_key: str, form: dict[str, str], url: str) -> dict[str, Any]:
    """Check a client-credentials form and return the token response body."""
    tenant = _tenant(sim, tenant_key)
    if form.get("grant_type") != "client_credentials":
        if "grant_type" not in form:
            raise aadsts(
                900144,
                "invalid_request",
                "The request body must contain the following parameter: 'grant_type'.",
            )
        raise aadsts(70003, "unsupported_grant_type", "The app requested an unsupported grant.")
    client_id = form.get("client_id", "")
    scope = form.get("scope", "")
    app = sim.directory.apps.get(client_id.lower())
    if app is None or client_id.lower() not in tenant.service_principals:
        raise aadsts(
            700016,
            "unauthorized_client",
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant.display_name}'. This can happen if the application has not been installed "
            "by the administrator of the tenant or consented to by any user in the tenant. You "
            "may have sent your authentication request to the wrong tenant.",
        )
    method = _authenticate(sim, app, tenant, form, url)
    resource = scope.removesuffix("/.default").rstrip("/")
    if not scope.endswith("/.default") or " " in scope:
        raise aadsts(
            70011,
            "invalid_scope",
            f"The provided value for the input parameter 'scope' is not valid. The scope {scope} "
            "is not valid. The client credentials flow takes exactly one '<resource>/.default'.",
        )
    roles: list[str] = []
    if resource == sim.urls.graph_resource:
        if client_id.lower() not in tenant.consented:
            raise aadsts(
                65001,
                "invalid_grant",
                f"The user or administrator has not consented to use the application with ID "
                f"'{client_id}' named '{app.display_name}'. Send an interactive authorization "
                "request for this user and resource.",
            )
        roles = sorted(tenant.service_principals[client_id.lower()])
    elif resource != sim.urls.key_vault_resource:
        raise aadsts(
            500011,
            "invalid_resource",
            f"The resource principal named {resource} was not found in the tenant named "
            f"{tenant.display_name}. This can happen if the application has not been installed "
            "by the administrator of the tenant or consented to by any user in the tenant.",
        )
    now = int(sim.clock.timestamp())
    lifetime = sim.knobs.token_lifetime_s
    claims: dict[str, Any] = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{tenant.id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": app.client_id,
        "appidacr": method,
        "idtyp": "app",
        "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.id}/{app.client_id}")),
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.id}/{app.client_id}")),
        "tid": tenant.id,
        "uti": uuid.uuid4().hex[:22],
        "ver": "1.0",
    }
    if roles:
        claims["roles"] = roles
    sim.counters.note("tokens_issued")
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": sim.signer.sign(claims),
    }


def _authenticate(sim: Simulator, app: App, tenant: Tenant, form: dict[str, str], url: str) -> str:
    """Check the secret or the assertion; returns appidacr ("1" secret, "2" certificate)."""
    if "client_secret" in form:
        given = form["client_secret"]
        matching = [s for s in app.secrets if hmac.compare_digest(s.value, given)]
        if not matching:
            raise aadsts(
                7000215,
                "invalid_client",
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{app.client_id}'.",
            )
        now = sim.clock.now()
        if all(s.expires is not None and s.expires <= now for s in matching):
            raise aadsts(
                7000222,
                "invalid_client",
                f"The provided client secret keys for app '{app.client_id}' are expired. Visit "
                "the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, "
                "or consider using certificate credentials for added security.",
            )
        return "1"
    if "client_assertion" in form:
        check_assertion(app, tenant, form, url)
        return "2"
    raise aadsts(
        7000216,
        "invalid_client",
        "'client_assertion', 'client_secret' or 'request' is required for the "
        "'client_credentials' grant type.",
    )
