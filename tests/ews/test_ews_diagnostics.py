"""Test connection for a tenant on Exchange Server: every EWS failure cause named with its code
and fix, against the EWS simulator (exchangelib for real, sockets for the endpoint)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import certifi
import pytest

from ewssim.testing import EwsSim, run_ewssim
from shared.compose import build_services
from shared.secrets import EnvSecrets
from shared.services.diagnostics import run_test_connection
from shared.settings import Settings

pytestmark = [pytest.mark.integration]
USER, PASSWORD = "CONTOSO\\svc-diag", "diag-Passw0rd"


@pytest.fixture(scope="module")
def sim() -> Iterator[EwsSim]:
    with run_ewssim() as handle:
        handle.add_account(USER, PASSWORD, ["*"])
        handle.add_account("CONTOSO\\plain", PASSWORD, [])
        yield handle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _report(
    sim: EwsSim,
    azurite: str,
    mailbox: str,
    *,
    user: str = USER,
    password: str | None = PASSWORD,
    url: str = "",
    ca: str = "",
    version: str = "Exchange2016",
) -> dict[str, dict[str, str]]:
    tenant = str(uuid.uuid4())
    provider = {
        "provider": "ews",
        "ewsUrl": url or sim.ews_url,
        "username": user,
        "exchangeVersion": version,
    }
    settings = Settings.from_env(
        {
            "TENANT_IDS": tenant,
            "CLIENT_ID": str(uuid.uuid4()),
            "CA_BUNDLE": ca or sim.ca_pem_path,
            "AzureWebJobsStorage": azurite,
            "MAILBOX_PROVIDERS": json.dumps({tenant: provider}),
        }
    )
    secrets = {} if password is None else {"SECRET_EWS_PASSWORD": password}
    svc = build_services(settings, secrets=EnvSecrets(secrets), ensure=False)
    try:
        report = run_test_connection(svc, tenant, mailbox).as_dict()
    finally:
        if svc.ews is not None:
            svc.ews.close()
        svc.graph.close()
    return {step["name"]: step for step in report["steps"]}


def test_a_working_mailbox_passes_every_step(sim: EwsSim, azurite: str) -> None:
    """Password, endpoint (TLS trusted), credentials, impersonation and calendar all pass."""
    smtp = f"ok{uuid.uuid4().hex[:6]}@contoso.example"
    sim.add_mailbox(smtp)
    steps = _report(sim, azurite, smtp)
    assert [(n, s["status"]) for n, s in steps.items()] == [
        ("settings", "ok"),
        ("EWS password", "ok"),
        ("EWS endpoint", "ok"),
        ("credentials", "ok"),
        ("impersonation", "ok"),
        ("calendar", "ok"),
    ]
    assert "Exchange version floor" in steps["settings"]["detail"]


@pytest.mark.parametrize(
    ("case", "step", "code", "words"),
    [
        ("password", "credentials", "Unauthorized", "HTTP 401"),
        (
            "impersonation",
            "impersonation",
            "ErrorImpersonateUserDenied",
            "ApplicationImpersonation",
        ),
        ("mailbox", "impersonation", "ErrorNonExistentMailbox", "primary SMTP address"),
        ("denied", "impersonation", "ErrorAccessDenied", "calendar folder"),
        ("no secret", "EWS password", "secret_not_found", "store the password"),
        ("closed port", "EWS endpoint", "ConnectionRefusedError", "VPN or ExpressRoute"),
        ("untrusted", "EWS endpoint", "SSLCertVerificationError", "certificate"),
    ],
)
def test_each_cause_is_named(
    sim: EwsSim, azurite: str, case: str, step: str, code: str, words: str
) -> None:
    """Each EWS failure fails its own step with EWS's code and a fix; later steps are skipped."""
    smtp = f"m{uuid.uuid4().hex[:6]}@contoso.example"
    if case != "mailbox":
        sim.add_mailbox(smtp)
    if case == "denied":
        sim.knob("deny-calendar", smtp=smtp)
    steps = _report(
        sim,
        azurite,
        smtp,
        user="CONTOSO\\plain" if case == "impersonation" else USER,
        password=None if case == "no secret" else "wrong" if case == "password" else PASSWORD,
        url=f"https://127.0.0.1:{_free_port()}/EWS/Exchange.asmx" if case == "closed port" else "",
        ca=certifi.where() if case == "untrusted" else "",
    )
    found = steps[step]
    assert found["status"] == "failed", steps
    assert found["code"] == code
    assert words in found["fix"] + found["cause"]
    names = list(steps)
    assert all(steps[n]["status"] == "skipped" for n in names[names.index(step) + 1 :])


def test_a_server_older_than_the_pinned_version_is_still_read(azurite: str) -> None:
    """Pinned at Exchange2016 against an Exchange 2013 server (ErrorInvalidServerVersion for
    the first request), the client steps down and the calendar is read."""
    with run_ewssim(server_version="Exchange2013") as old:
        old.add_account(USER, PASSWORD, ["*"])
        old.add_mailbox("ann@contoso.example")
        steps = _report(old, azurite, "ann@contoso.example", version="Exchange2016")
        assert [s["status"] for s in steps.values()] == ["ok"] * 6
