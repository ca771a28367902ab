"""Azure Key Vault's secrets as data: named secrets with versions and attributes. Pure.

Rule: a secret is a list of versions, newest last; reading without a version gives the newest.
`exp`/`nbf` are kept as POSIX seconds, as Key Vault reports them
(https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret). One vault has
one tenant (`tenant_id`), the one its challenge names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class SecretVersion:
    value: str
    version: str
    created: int
    exp: int | None = None
    nbf: int | None = None
    enabled: bool = True
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class Vault:
    def __init__(self) -> None:
        self.tenant_id: str = ""
        self.secrets: dict[str, list[SecretVersion]] = {}

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        now: datetime,
        exp: datetime | None = None,
        nbf: datetime | None = None,
        enabled: bool = True,
        content_type: str | None = None,
    ) -> SecretVersion:
        version = SecretVersion(
            value=value,
            version=uuid.uuid4().hex,
            created=int(now.timestamp()),
            exp=int(exp.timestamp()) if exp else None,
            nbf=int(nbf.timestamp()) if nbf else None,
            enabled=enabled,
            content_type=content_type,
        )
        self.secrets.setdefault(name.lower(), []).append(version)
        return version

    def find(self, name: str, version: str) -> SecretVersion | None:
        versions = self.secrets.get(name.lower(), [])
        if not version:
            return versions[-1] if versions else None
        return next((v for v in versions if v.version == version), None)
