"""The secrets port and its local implementation.

In Azure, secrets come from Key Vault (`adapters.keyvault.KeyVaultSecrets`); locally, from
environment variables named `SECRET_<NAME>` (upper case, '-' as '_'), e.g. the secret
`graph-client-secret` is `SECRET_GRAPH_CLIENT_SECRET`. Errors name the secret, never its value;
every value read is registered with the log redactor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from shared.errors import SecretNotFound
from shared.redact import REDACTOR


class SecretStore(Protocol):
    """Reads a secret by name; raises SecretNotFound or SecretError."""

    def get(self, name: str) -> str: ...

    def refresh(self, name: str) -> str:
        """Read `name` again past any cache (its cached value was just rejected)."""
        ...


@runtime_checkable
class ExpiringSecrets(Protocol):
    """A store that knows when a secret expires (Key Vault's `exp` attribute)."""

    def expires_on(self, name: str) -> datetime | None: ...


def env_name(name: str) -> str:
    """The environment variable that holds secret `name` locally."""
    return "SECRET_" + name.upper().replace("-", "_")


class EnvSecrets:
    """Secrets from environment variables: for local runs and tests only."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if environ is None else environ

    def get(self, name: str) -> str:
        value = self._env.get(env_name(name), "")
        if not value:
            raise SecretNotFound(name, f"the environment (set {env_name(name)})")
        REDACTOR.register(value)
        return value

    def refresh(self, name: str) -> str:
        return self.get(name)  # nothing cached
