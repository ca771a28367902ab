"""Secrets from Azure Key Vault (azure-keyvault-secrets), cached for a TTL so a rotated secret is
picked up within `ttl` seconds without a read per use; `refresh` reads past the cache, for a value
Entra has just rejected (the fixed secret is then used at once, not after the TTL). Maps the SDK's
errors to shared.errors in one place; messages name the secret and the vault, never the value."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from azure.core.exceptions import AzureError, ClientAuthenticationError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from shared.errors import SecretError, SecretNotFound
from shared.redact import REDACTOR


class KeyVaultSecrets:
    """The secrets port over an already built SecretClient."""

    def __init__(
        self,
        client: SecretClient,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}
        self._expiry: dict[str, datetime | None] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        return self._store(name, now)

    def refresh(self, name: str) -> str:
        """Read `name` from the vault now, whatever the cache holds, and cache that."""
        return self._store(name, self._clock())

    def expires_on(self, name: str) -> datetime | None:
        """The secret's expiry (its `exp` attribute; None: it has none), read with the value:
        from the cache within the TTL, else from the vault."""
        self.get(name)
        with self._lock:
            return self._expiry.get(name)

    def _store(self, name: str, now: float) -> str:
        value = self._read(name)
        REDACTOR.register(value)
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def _read(self, name: str) -> str:
        vault = self._client.vault_url
        try:
            secret = self._client.get_secret(name)
        except ResourceNotFoundError:
            raise SecretNotFound(name, f"Key Vault {vault}") from None
        except ClientAuthenticationError as exc:
            raise SecretError(
                f"Key Vault {vault} refused to read secret {name!r} ({type(exc).__name__}): grant "
                "the app's managed identity the 'Key Vault Secrets User' role on the vault"
            ) from None
        except AzureError as exc:
            raise SecretError(
                f"Key Vault {vault} could not be read for secret {name!r} "
                f"({type(exc).__name__}); retry later"
            ) from None
        if not secret.value:
            raise SecretNotFound(name, f"Key Vault {vault} (it exists but has no value)")
        with self._lock:
            self._expiry[name] = secret.properties.expires_on
        return secret.value
