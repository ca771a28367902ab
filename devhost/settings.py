"""local.settings.json for the dev host, read the way Core Tools reads it.

Rule: `Values` become environment variables (app settings) without overriding a variable that
is already set, so a shell export always wins, as with `func start`. `Host.LocalHttpPort` is the
default port. An encrypted file or a non-string value is refused with a message saying what to
do. Values are never logged: only their names.
Doc: https://learn.microsoft.com/azure/azure-functions/functions-develop-local#local-settings-file
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import ConfigError

# The keys the dev host itself reads (besides the connection settings the triggers name).
FUNCTION_KEY_SETTING = "DEVHOST_FUNCTION_KEY"
MASTER_KEY_SETTING = "DEVHOST_MASTER_KEY"
DEFAULT_HTTP_PORT = 7071


@dataclass(frozen=True)
class LocalSettings:
    """The parts of local.settings.json the dev host uses."""

    values: dict[str, str] = field(default_factory=dict)
    local_http_port: int | None = None


def read_local_settings(path: Path) -> LocalSettings:
    """Parse local.settings.json; a missing file is an empty one. ConfigError lists problems."""
    if not path.exists():
        return LocalSettings()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError([f"{path} is not valid JSON ({exc})"]) from None
    if not isinstance(doc, dict):
        raise ConfigError([f"{path} must hold a JSON object with a Values object"])
    if doc.get("IsEncrypted") is True:
        raise ConfigError(
            [f"{path} is encrypted (IsEncrypted: true); decrypt it with `func settings decrypt`"]
        )
    problems: list[str] = []
    raw_values = doc.get("Values", {})
    raw_values = {} if raw_values is None else raw_values
    if not isinstance(raw_values, dict):
        raise ConfigError([f"{path}: Values must be a JSON object of name: string"])
    values: dict[str, str] = {}
    for name, value in raw_values.items():
        if isinstance(value, str):
            values[name] = value
        else:
            problems.append(
                f"{path}: Values.{name} is a {type(value).__name__}; app settings are strings, "
                f'so write it in quotes (e.g. "{value}")'
            )
    host = doc.get("Host") or {}
    port = host.get("LocalHttpPort") if isinstance(host, dict) else None
    if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
        problems.append(f"{path}: Host.LocalHttpPort {port!r} must be a port number 1..65535")
        port = None
    if problems:
        raise ConfigError(problems)
    return LocalSettings(values=values, local_http_port=port)


def apply_values(
    values: dict[str, str], environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Set each value that is not already set; return the names that were applied."""
    env = os.environ if environ is None else environ
    applied = []
    for name, value in values.items():
        if name not in env:
            env[name] = value
            applied.append(name)
    return applied
