"""`GET /applications(appId='{appId}')`: the app registration's own credentials (their dates,
never a value), as the credential expiry watch reads them.

Rule (api/application-get, resources/passwordcredential, resources/keycredential): needs
Application.Read.All, Application.ReadWrite.All, Directory.Read.All or Directory.ReadWrite.All,
else 403 Authorization_RequestDenied; the application object lives in its home tenant only, so
a token of another tenant (where the app is a service principal) gets 404
Request_ResourceNotFound. `secretText` is always null and `hint` is the value's first three
characters, as Graph returns them; `$select` of other properties than these is 400.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography import x509

from graphsim.api.calls import GraphResult
from graphsim.api.pipeline import Ctx, access_denied, check_query, route
from graphsim.errors import GraphRequestError
from graphsim.model.calendar.timezones import format_timestamp

APPLICATIONS = frozenset(
    {
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_SELECTABLE = {"id", "appId", "displayName", "passwordCredentials", "keyCredentials"}


def _when(value: Any) -> str | None:
    return format_timestamp(value) if value is not None else None


@route("GET", "/applications(appId='{a}')", "applications.get", frozenset())
async def get_application(ctx: Ctx) -> GraphResult:
    query = check_query(ctx.call, {"$select"})
    if not APPLICATIONS & ctx.roles:
        raise access_denied(directory=True)
    app = ctx.sim.directory.apps.get(ctx.args[0].lower())
    if app is None or app.home_tenant.lower() != ctx.tenant_id.lower():
        raise GraphRequestError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{ctx.args[0]}' does not exist or one of its queried reference-property "
            "objects are not present.",
        )
    passwords = [
        {
            "customKeyIdentifier": None,
            "displayName": None,
            "endDateTime": _when(s.expires),
            "hint": s.value[:3],
            "keyId": s.key_id,
            "secretText": None,
            "startDateTime": None,
        }
        for s in app.secrets
    ]
    keys = []
    for cert in app.certificates:
        parsed = x509.load_pem_x509_certificate(cert.pem)
        keys.append(
            {
                "customKeyIdentifier": cert.sha1_b64,
                "displayName": parsed.subject.rfc4514_string(),
                "endDateTime": _when(parsed.not_valid_after_utc),
                "keyId": hashlib.sha256(cert.pem).hexdigest()[:32],
                "startDateTime": _when(parsed.not_valid_before_utc),
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            }
        )
    doc: dict[str, Any] = {
        "id": hashlib.sha256(app.client_id.encode()).hexdigest()[:32],
        "appId": app.client_id,
        "displayName": app.display_name,
        "passwordCredentials": passwords,
        "keyCredentials": keys,
    }
    selected = [s.strip() for s in query.get("$select", "").split(",") if s.strip()]
    unknown = [s for s in selected if s not in _SELECTABLE]
    if unknown:
        raise GraphRequestError(
            400, "Request_BadRequest", f"Could not find a property named '{unknown[0]}'."
        )
    if selected:
        doc = {k: v for k, v in doc.items() if k in selected}
    context = f"{ctx.sim.urls.graph_base_url}/$metadata#applications/$entity"
    return GraphResult(200, {"@odata.context": context, **doc})
