"""MAILBOX_PROVIDERS: which tenants are Exchange Server (EWS), validated with clear messages,
and Exchange Online refused with the retirement explained (shared/ews_settings.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.errors import ConfigError
from shared.ews_settings import is_exchange_online
from shared.settings import Settings

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER = "33333333-3333-3333-3333-333333333333"


def settings(providers: Any) -> Settings:
    return Settings.from_env(
        {
            "TENANT_IDS": f"{TENANT},{OTHER}",
            "CLIENT_ID": "22222222-2222-2222-2222-222222222222",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "MAILBOX_PROVIDERS": providers if isinstance(providers, str) else json.dumps(providers),
        }
    )


def ews(**over: Any) -> dict[str, Any]:
    return {
        "provider": "ews",
        "ewsUrl": "https://mail.contoso.com/EWS/Exchange.asmx",
        "username": "CONTOSO\\svc",
        **over,
    }


def test_ews_tenant_and_graph_default() -> None:
    """A tenant named with provider ews gets its settings (NTLM by default); others are Graph."""
    s = settings({TENANT: ews(exchangeVersion="Exchange2019")})
    found = s.ews_for(TENANT.upper())
    assert found is not None
    assert (found.auth, found.version, found.password_secret_name) == (
        "NTLM",
        "Exchange2019",
        "ews-password",
    )
    assert s.ews_for(OTHER) is None
    assert settings("").ews_tenants == ()
    assert settings({TENANT: {"provider": "graph"}}).ews_for(TENANT) is None


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        ("{not json", "MAILBOX_PROVIDERS is not JSON"),
        ([1], "must be a JSON object keyed by tenant id"),
        ({"44444444-4444-4444-4444-444444444444": ews()}, "not in TENANT_IDS"),
        ({TENANT: ews(provider="imap")}, "is not 'graph' or 'ews'"),
        (
            {TENANT: ews(ewsUrl="http://mail.contoso.com/EWS/Exchange.asmx")},
            "must be the https URL",
        ),
        (
            {TENANT: ews(ewsUrl="https://outlook.office365.com/EWS/Exchange.asmx")},
            "blocked by default from October 2026, switched off in April 2027",
        ),
        ({TENANT: ews(exchangeVersion="Exchange2003")}, "exchangeVersion 'Exchange2003'"),
        ({TENANT: ews(auth="Kerberos")}, "is not 'NTLM' or 'Basic'"),
        ({TENANT: ews(username="")}, "ApplicationImpersonation"),
        ({TENANT: ews(passwordSecretName="a b")}, "not a valid secret name"),
        ({TENANT: ews(ewsurl="typo")}, "unknown keys ewsurl"),
    ],
)
def test_bad_providers_are_named(providers: Any, message: str) -> None:
    """Each bad MAILBOX_PROVIDERS value is one problem of the ConfigError, saying what to do."""
    with pytest.raises(ConfigError) as caught:
        settings(providers)
    assert any(message in p for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("url", "online"),
    [
        ("https://outlook.office365.com/EWS/Exchange.asmx", True),
        ("https://outlook.office.com/EWS/Exchange.asmx", True),
        ("https://eur.outlook.com/EWS/Exchange.asmx", True),
        ("https://outlook.office365.us/EWS/Exchange.asmx", True),
        ("https://partner.outlook.cn/EWS/Exchange.asmx", True),
        ("https://mail.contoso.com/EWS/Exchange.asmx", False),
        ("https://outlook.contoso.com/EWS/Exchange.asmx", False),
        ("https://notoutlook.com/EWS/Exchange.asmx", False),
    ],
)
def test_exchange_online_hosts_are_recognised(url: str, online: bool) -> None:
    """Exchange Online's EWS hosts (all clouds) are recognised; on-premises names are not."""
    assert is_exchange_online(url) is online
