"""Every app setting the code reads (shared/settings.py SETTINGS) is written by the Bicep, and the
Bicep writes nothing the code does not read, except the explicit allow-lists below."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bicep_tools import INFRA

from shared.settings import SETTINGS

# Written for the Functions platform; the app's code never reads them. (The Application
# Insights pair is read by the app too, since it exports its own telemetry: see SETTINGS.)
PLATFORM_SETTINGS: dict[str, str] = {}
# Read by the code, deliberately not written in Azure.
LOCAL_ONLY_SETTINGS = {
    "AzureWebJobsStorage": "a connection string (Azurite); Azure uses AzureWebJobsStorage__*",
    "CA_BUNDLE": "trusts the local simulator's CA; Azure uses the system trust store",
    "WEBHOOK_ALLOW_HTTP_LOOPBACK": "plain http receivers on loopback, for local runs only",
}
# Flex Consumption rejects these (functionAppConfig replaces them); writing one breaks the deploy.
FLEX_FORBIDDEN = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}
_LITERAL = re.compile(r"^var appSettings = \{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
_KEY = re.compile(r"^  (?:'([^']+)'|([A-Za-z_][A-Za-z0-9_]*))\s*:")


def settings_literal() -> tuple[Path, list[tuple[str, bool]]]:
    """The one Bicep file with `var appSettings = {...}`, and its keys, each with whether a
    comment line comes right before it."""
    hits = [
        (path, match)
        for path in sorted(INFRA.rglob("*.bicep"))
        if (match := _LITERAL.search(path.read_text(encoding="utf-8")))
    ]
    assert len(hits) == 1, f"expected one `var appSettings = {{` literal, found {len(hits)}"
    path, match = hits[0]
    keys: list[tuple[str, bool]] = []
    previous = ""
    for line in match.group(1).splitlines():
        if key := _KEY.match(line):
            keys.append((key.group(1) or key.group(2), previous.lstrip().startswith("//")))
        previous = line
    return path, keys


def written() -> set[str]:
    return {key for key, _ in settings_literal()[1]}


def read_by_code() -> set[str]:
    return {doc.name for doc in SETTINGS}


def test_bicep_writes_every_setting_the_code_reads() -> None:
    """Each SETTINGS name (but the local-only ones) is an app setting in the Bicep."""
    missing = sorted(read_by_code() - set(LOCAL_ONLY_SETTINGS) - written())
    assert not missing, f"add to `var appSettings` in infra/app/function.bicep: {missing}"


def test_bicep_writes_nothing_the_code_does_not_read() -> None:
    """Each app setting in the Bicep is read by the code (SETTINGS) or owned by the platform."""
    extra = sorted(written() - read_by_code() - set(PLATFORM_SETTINGS))
    assert not extra, f"not in shared/settings.py SETTINGS (add there, or drop here): {extra}"


def test_allow_lists_are_current() -> None:
    """Platform settings are written and not read by the code; local-only ones the reverse."""
    assert set(PLATFORM_SETTINGS) <= written() - read_by_code()
    assert set(LOCAL_ONLY_SETTINGS) <= read_by_code() - written()


def test_no_setting_flex_consumption_rejects() -> None:
    """None of the app settings that Flex Consumption refuses is written."""
    assert not written() & FLEX_FORBIDDEN


def test_every_setting_is_documented_and_written_once() -> None:
    """Each key of the literal has its own comment line above it and appears once."""
    _, keys = settings_literal()
    names = [key for key, _ in keys]
    assert len(names) == len(set(names)), "a setting is written twice"
    undocumented = [key for key, commented in keys if not commented]
    assert not undocumented, f"give each a `//` comment line above it: {undocumented}"


def test_the_literal_is_what_the_app_gets(bicep_models: dict[Path, dict[str, Any]]) -> None:
    """The sites/config 'appsettings' resource deploys exactly `appSettings` (pycep agrees with
    the keys read above), and no template sets app settings anywhere else."""
    path, _ = settings_literal()
    parsed = bicep_models[path]["model"]
    assert set(parsed["variables"]["appSettings"]["value"]) == written()
    configs = [
        r["config"]
        for r in parsed["resources"].values()
        if r["type"] == "Microsoft.Web/sites/config" and r["config"].get("name") == "appsettings"
    ]
    assert [c["properties"] for c in configs] == ["appSettings"]
    elsewhere = [
        str(p.relative_to(INFRA))
        for p in sorted(INFRA.rglob("*.bicep"))
        if re.search(r"\bappSettings\s*:", p.read_text(encoding="utf-8"))
    ]
    assert not elsewhere, f"app settings set outside the literal: {elsewhere}"
