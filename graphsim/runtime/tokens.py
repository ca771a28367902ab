"""Entra's token primitives: the AADSTS error type, the access-token signer, client assertions.

Rule: access tokens are RS256 JWTs signed by a key made at start and verified once per token
string (cached: the Graph hot path must not re-verify); a client assertion is checked as Entra
does (registered certificate by x5t/x5t#S256, signature, aud, iss = sub = client id, time
window) against the wall clock, because the client signs it with its own clock.
Source: learn.microsoft.com/entra/identity-platform/certificate-credentials.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from graphsim.model.directory import App, Tenant

# PyJWT checks only the signature: the claims are judged by the caller, on the right clock
# (the virtual one for access tokens, the wall clock for client assertions).
_SIGNATURE_ONLY = {
    "verify_exp": False,
    "verify_aud": False,
    "verify_nbf": False,
    "verify_iat": False,
}


class EntraError(Exception):
    def __init__(self, code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.error = error
        self.description = description


class TokenSigner:
    """Signs access tokens and verifies them, caching verification by token string."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self._public = self._key.public_key()
        self._verified: dict[str, dict[str, Any]] = {}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this simulator signed, or None (bad signature or shape)."""
        hit = self._verified.get(token)
        if hit is not None:
            return hit
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                options=_SIGNATURE_ONLY,
            )
        except jwt.PyJWTError:
            return None
        if len(self._verified) > 50_000:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}


def aadsts(code: int, error: str, text: str) -> EntraError:
    return EntraError(code, error, f"AADSTS{code}: {text}")


def check_assertion(app: App, tenant: Tenant, form: dict[str, str], url: str) -> None:
    if (
        form.get("client_assertion_type")
        != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ):
        raise aadsts(
            700026,
            "invalid_client",
            "Client assertion type must be "
            "'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
        )
    assertion = form["client_assertion"]
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise aadsts(50027, "invalid_client", "The client assertion is not a valid JWT.") from None
    thumb = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
    certs = [c for c in app.certificates if thumb in (c.sha1_b64, c.sha256_b64)]
    if not certs:
        raise aadsts(
            700027,
            "invalid_client",
            f"The certificate with identifier used to sign the client assertion is not "
            f"registered on application. [Reason - The key was not found., Thumbprint of key "
            f"used by client: '{thumb}'. Please visit the Azure Portal to upload the certificate "
            f"for app '{app.client_id}'.]",
        )
    key = x509.load_pem_x509_certificate(certs[0].pem).public_key()
    try:
        claims = jwt.decode(
            assertion,
            key,  # type: ignore[arg-type]
            algorithms=["RS256", "PS256"],
            options=_SIGNATURE_ONLY,
        )
    except jwt.PyJWTError:
        raise aadsts(
            700027, "invalid_client", "Client assertion contains an invalid signature."
        ) from None
    accepted_aud = {url, url.replace(f"/{tenant.domain}/", f"/{tenant.id}/")}
    if claims.get("aud") not in accepted_aud and not str(claims.get("aud", "")).endswith(
        f"/{tenant.id}/oauth2/v2.0/token"
    ):
        raise aadsts(
            700212,
            "invalid_client",
            f"No matching federated identity record found for presented assertion audience "
            f"'{claims.get('aud')}'.",
        )
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise aadsts(
            700023,
            "invalid_client",
            "Client assertion audience claim does not match Realm issuer or the iss and sub "
            "claims are not the client id.",
        )
    now = time.time()
    if not (float(claims.get("nbf", 0)) - 300 <= now < float(claims.get("exp", 0)) + 300):
        raise aadsts(
            700024, "invalid_client", "Client assertion is not within its valid time range."
        )
