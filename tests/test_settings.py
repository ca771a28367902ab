"""Settings: one frozen object from the environment; every problem reported at once, by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.settings import SETTINGS, Settings

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
BASE = {
    "TENANT_IDS": TENANT,
    "CLIENT_ID": CLIENT,
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def test_defaults_point_at_the_public_cloud() -> None:
    """Without overrides Graph and Entra are the public-cloud endpoints; secret mode is default."""
    s = Settings.from_env(BASE)
    assert s.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.graph_scope == "https://graph.microsoft.com/.default"
    assert s.credential_type == "secret"
    assert s.tenant_ids == (TENANT,)
    assert s.notification_url is None


def test_sovereign_cloud_scope_follows_the_graph_host() -> None:
    """The token scope is derived from GRAPH_BASE_URL, so sovereign clouds need no extra key."""
    s = Settings.from_env(BASE | {"GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0/"})
    assert s.graph_base_url == "https://graph.microsoft.us/v1.0"
    assert s.graph_scope == "https://graph.microsoft.us/.default"


def test_public_base_url_gives_both_callback_urls() -> None:
    """PUBLIC_BASE_URL yields the notification and lifecycle URLs Graph calls back."""
    s = Settings.from_env(BASE | {"PUBLIC_BASE_URL": "https://app.example.net/"})
    assert s.notification_url == "https://app.example.net/api/notifications"
    assert s.lifecycle_url == "https://app.example.net/api/lifecycle"


def test_every_problem_is_reported_in_one_error() -> None:
    """Missing and invalid values are collected into one ConfigError naming each setting."""
    env = {
        "CLIENT_ID": "not-a-guid",
        "GRAPH_BASE_URL": "http://graph.local",
        "CLIENT_CREDENTIAL_TYPE": "password",
        "SECRET_CACHE_SECONDS": "soon",
        "CA_BUNDLE": "/nonexistent/ca.pem",
    }
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    text = str(info.value)
    for name in (
        "TENANT_IDS",
        "CLIENT_ID",
        "GRAPH_BASE_URL",
        "CLIENT_CREDENTIAL_TYPE",
        "SECRET_CACHE_SECONDS",
        "CA_BUNDLE",
        "AzureWebJobsStorage",
    ):
        assert name in text, name
    assert len(info.value.problems) == 7


def test_managed_identity_credential_needs_the_identity_client_id() -> None:
    """The secretless mode names AZURE_CLIENT_ID when it is missing."""
    with pytest.raises(ConfigError, match="AZURE_CLIENT_ID"):
        Settings.from_env(BASE | {"CLIENT_CREDENTIAL_TYPE": "managed_identity"})


def test_identity_based_storage_needs_managedidentity_credential() -> None:
    """An account name without `__credential=managedidentity` is refused with its name."""
    env = {k: v for k, v in BASE.items() if k != "AzureWebJobsStorage"}
    with pytest.raises(ConfigError, match="AzureWebJobsStorage__credential"):
        Settings.from_env(env | {"AzureWebJobsStorage__accountName": "acct"})
    ok = Settings.from_env(
        env
        | {
            "AzureWebJobsStorage__accountName": "acct",
            "AzureWebJobsStorage__credential": "managedidentity",
        }
    )
    assert ok.storage.table_endpoint == "https://acct.table.core.windows.net"


def test_settings_are_frozen() -> None:
    """The settings object cannot be changed after it is built."""
    s = Settings.from_env(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.client_id = "x"  # type: ignore[misc]


def test_every_setting_is_documented_in_the_readme() -> None:
    """The README's settings table lists every key the code reads, with its default."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for doc in SETTINGS:
        assert f"`{doc.name}`" in readme, f"README settings table lacks {doc.name}"


def test_graph_scope_overrides_the_derived_scope() -> None:
    """GRAPH_SCOPE, when set, is the token scope, whatever GRAPH_BASE_URL's host is."""
    s = Settings.from_env(
        BASE
        | {
            "GRAPH_BASE_URL": "https://graph-proxy.example.net/v1.0",
            "GRAPH_SCOPE": "https://graph.microsoft.com/.default",
        }
    )
    assert s.graph_scope == "https://graph.microsoft.com/.default"
    assert Settings.from_env(BASE | {"GRAPH_SCOPE": ""}).graph_scope == (
        "https://graph.microsoft.com/.default"
    )


@pytest.mark.parametrize(
    "scope", ["https://graph.microsoft.com", "Calendars.Read", "https:///.default", "x/.default"]
)
def test_graph_scope_must_be_an_app_only_scope(scope: str) -> None:
    """A GRAPH_SCOPE that is not `<resource>/.default` is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match="GRAPH_SCOPE") as info:
        Settings.from_env(BASE | {"GRAPH_SCOPE": scope})
    assert len(info.value.problems) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:7071/", "http://localhost:7071"),
        ("http://127.0.0.1:7071", "http://127.0.0.1:7071"),
        ("http://[::1]:7071", "http://[::1]:7071"),
        ("https://app.example.net", "https://app.example.net"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ],
)
def test_public_base_url_may_be_http_only_on_loopback(url: str, expected: str) -> None:
    """Plain http is accepted for localhost, 127.0.0.1 and ::1 (as Graph allows); https always."""
    s = Settings.from_env(BASE | {"PUBLIC_BASE_URL": url})
    assert s.public_base_url == expected
    assert s.notification_url == f"{expected}/api/notifications"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://app.example.net", "plain http for host 'app.example.net'"),
        ("http://10.0.0.5:7071", "plain http for host '10.0.0.5'"),
        ("http://localhost.example.net", "plain http for host 'localhost.example.net'"),
        ("ftp://app.example.net", "must be an absolute https:// URL"),
        ("app.example.net", "must be an absolute https:// URL"),
    ],
)
def test_public_base_url_must_be_https_elsewhere(url: str, says: str) -> None:
    """Any non-loopback http (or non-URL) PUBLIC_BASE_URL is one ConfigError saying why."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env(BASE | {"PUBLIC_BASE_URL": url})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"PUBLIC_BASE_URL {url!r}")
    assert says in info.value.problems[0]


def test_window_margin_and_safety_net_days() -> None:
    """WINDOW_MARGIN_DAYS (0-28) and SAFETY_NET_DAYS (1-28) default to 7; out of range or not
    whole numbers they are ConfigErrors naming the key."""
    s = Settings.from_env(BASE)
    assert (s.window_margin_days, s.safety_net_days) == (7, 7)
    s = Settings.from_env(BASE | {"WINDOW_MARGIN_DAYS": "0", "SAFETY_NET_DAYS": "1"})
    assert (s.window_margin_days, s.safety_net_days) == (0, 1)
    for key, bad in [
        ("WINDOW_MARGIN_DAYS", "29"),
        ("SAFETY_NET_DAYS", "0"),
        ("SAFETY_NET_DAYS", "x"),
    ]:
        with pytest.raises(ConfigError, match=key):
            Settings.from_env(BASE | {key: bad})
