"""Test connection against the simulator's Entra and Graph: each failure cause an administrator
meets is named with its fix, steps that depend on a failed one are skipped, and no secret is
ever part of the report."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

import function_app
from graphsim.testing import SimHandle, run_simulator
from shared.compose import Services, build_services
from shared.core import diagnostics as dx
from shared.secrets import EnvSecrets
from shared.services.diagnostics import run_test_connection
from tests.services.simworld import app_settings

pytestmark = pytest.mark.integration
SECRET = "diagnostics-secret-value-0123456789"
GUIDE_ROLES = ["Calendars.Read", "User.ReadBasic.All"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with run_simulator(seed=7) as handle:
        yield handle


def _world(
    sim: SimHandle, *, roles: list[str] | None = GUIDE_ROLES, **secret: Any
) -> dict[str, str]:
    tenant, client = str(uuid.uuid4()), str(uuid.uuid4())
    domain = f"t{tenant[:8]}.example"
    seeded = sim.control.seed(
        tenants=[{"id": tenant, "domain": domain}],
        apps=[{"client_id": client, "tenant": tenant, "secrets": [{"value": SECRET, **secret}]}],
        consents=[] if roles is None else [{"tenant": tenant, "client_id": client, "roles": roles}],
        users=[{"tenant": tenant, "upn": f"diego@{domain}"}],
    )
    upn = f"diego@{domain}"
    return {"tenant": tenant, "client": client, "user": seeded["users"][upn], "upn": upn}


def _services(
    sim: SimHandle, azurite: str, world: dict[str, str], *, secret: str | None = SECRET, **env: str
) -> Services:
    settings = app_settings(sim, azurite, world["tenant"], world["client"], **env)
    values = {} if secret is None else {"SECRET_GRAPH_CLIENT_SECRET": secret}
    return build_services(settings, secrets=EnvSecrets(values), ensure=False)


def _run(svc: Services, tenant: str, mailbox: str = "") -> tuple[dx.Report, dict[str, dx.Step]]:
    report = run_test_connection(svc, tenant, mailbox)
    text = json.dumps(report.as_dict())
    assert SECRET not in text  # never a secret, even partially
    assert "wrong-secret" not in text
    svc.graph.close()
    return report, {s.name: s for s in report.steps}


def test_everything_right_passes_every_step(sim: SimHandle, azurite: str) -> None:
    """The guide's permissions and a real mailbox: every step ok, the callback URL warned."""
    world = _world(sim)
    report, steps = _run(_services(sim, azurite, world), world["tenant"], world["upn"])
    assert report.ok
    assert [s.status for s in report.steps] == ["ok", "ok", "ok", "ok", "ok", "ok", "warning"]
    assert "Calendars.Read" in steps["permissions"].detail
    assert all(s.duration_ms >= 0 for s in report.steps)


@pytest.mark.parametrize(
    ("kind", "code", "cause"),
    [
        ("tenant", "90002", "wrong tenant id"),
        ("client", "700016", "wrong client id"),
        ("secret", "7000215", "wrong client secret"),
        ("expired", "7000222", "expired"),
        ("consent", "65001", "admin consent is missing"),
    ],
)
def test_token_failures_name_their_cause(
    sim: SimHandle, azurite: str, kind: str, code: str, cause: str
) -> None:
    """Entra's refusals become causes with fixes; permissions and mailbox are then skipped."""
    world = _world(
        sim,
        roles=None if kind == "consent" else GUIDE_ROLES,
        **({"expires": "2020-01-01T00:00:00Z"} if kind == "expired" else {}),
    )
    if kind == "tenant":
        world = world | {"tenant": str(uuid.uuid4())}
    if kind == "client":
        world = world | {"client": str(uuid.uuid4())}
    secret = "a-wrong-secret-0123456789abcdef" if kind == "secret" else SECRET
    report, steps = _run(
        _services(sim, azurite, world, secret=secret), world["tenant"], world["upn"]
    )
    assert not report.ok
    token = steps["token"]
    assert (token.status, token.code) == ("failed", code)
    assert cause in token.cause
    assert token.fix
    assert steps["permissions"].status == steps["mailbox"].status == "skipped"


def test_a_missing_permission_is_named_with_what_needs_it(sim: SimHandle, azurite: str) -> None:
    """Calendars.Read alone: the user lookup is named as missing, and the mailbox step says why."""
    world = _world(sim, roles=["Calendars.Read"])
    report, steps = _run(_services(sim, azurite, world), world["tenant"], world["upn"])
    assert not report.ok
    assert steps["permissions"].status == "failed"
    assert "user lookup (enrolment) needs" in steps["permissions"].cause
    assert "User.ReadBasic.All" in steps["permissions"].cause
    assert steps["mailbox"].code == "Authorization_RequestDenied"


def test_an_unknown_mailbox_is_a_404_cause(sim: SimHandle, azurite: str) -> None:
    """A UPN Graph does not know: the mailbox step fails with 'no such user'."""
    world = _world(sim)
    report, steps = _run(
        _services(sim, azurite, world), world["tenant"], "nobody@" + world["upn"].split("@")[1]
    )
    assert not report.ok
    assert (steps["mailbox"].code, steps["mailbox"].cause) == ("404", "no such user in this tenant")


def test_a_missing_secret_stops_before_entra(sim: SimHandle, azurite: str) -> None:
    """No secret stored under the configured name: credential fails, the token is not asked."""
    world = _world(sim)
    _, steps = _run(_services(sim, azurite, world, secret=None), world["tenant"])
    assert steps["credential"].status == "failed"
    assert "SECRET_GRAPH_CLIENT_SECRET" in steps["credential"].cause
    assert steps["token"].status == "skipped"


def test_a_tenant_outside_the_settings_fails_at_once(sim: SimHandle, azurite: str) -> None:
    """A tenant that is not in TENANT_IDS fails the settings step and nothing else runs."""
    world = _world(sim)
    report, _ = _run(_services(sim, azurite, world), str(uuid.uuid4()))
    assert [s.name for s in report.steps] == ["settings"]
    assert not report.ok


def test_the_route_refuses_a_body_that_is_not_an_object() -> None:
    """POST /api/diagnostics/test-connection with a JSON list: 400 naming the expected shape."""
    request = func.HttpRequest(
        "POST", "http://localhost/api/diagnostics/test-connection", body=b"[1]"
    )
    response = function_app.test_connection(request)
    assert response.status_code == 400
    assert "tenantId" in json.loads(response.get_body())["detail"]


def test_a_mailbox_outside_an_access_policy_is_named(sim: SimHandle, azurite: str) -> None:
    """An application access policy that leaves the app other mailboxes only: the user is found,
    its calendar is refused, and the cause names the policy; lifting the policy passes."""
    world = _world(sim)
    other = "other@" + world["upn"].split("@")[1]
    sim.control.seed(users=[{"tenant": world["tenant"], "upn": other}])
    sim.control.restrict_access(world["tenant"], world["client"], [other])
    report, steps = _run(_services(sim, azurite, world), world["tenant"], world["upn"])
    assert not report.ok
    assert steps["mailbox"].code == "ErrorAccessDenied"
    assert "application access policy" in steps["mailbox"].cause
    _, allowed = _run(_services(sim, azurite, world), world["tenant"], other)
    assert allowed["mailbox"].status == "ok"
    sim.control.restrict_access(world["tenant"], world["client"], None)
    _, lifted = _run(_services(sim, azurite, world), world["tenant"], world["upn"])
    assert lifted["mailbox"].status == "ok"
