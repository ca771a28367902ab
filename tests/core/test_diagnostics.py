"""The meanings of a connection test's findings: AADSTS codes, token roles, Graph's refusals."""

from __future__ import annotations

import base64
import json

import pytest

from shared.core import diagnostics as dx


def _jwt(claims: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJub25lIn0.{body}.sig"


@pytest.mark.parametrize(
    ("token", "roles"),
    [
        (
            _jwt({"roles": ["Calendars.Read", "User.ReadBasic.All"]}),
            {"Calendars.Read", "User.ReadBasic.All"},
        ),
        (_jwt({"roles": ["A", 5, None]}), {"A"}),
        (_jwt({}), set()),
        (_jwt([1, 2]), set()),
        ("opaque-token", None),
        ("a.!!!.c", None),
    ],
)
def test_roles_in_token(token: str, roles: set[str] | None) -> None:
    """The roles claim of a JWT, ignoring junk; None when the token cannot be read."""
    found = dx.roles_in_token(token)
    assert (None if found is None else set(found)) == roles


@pytest.mark.parametrize(
    ("roles", "missing"),
    [
        (["Calendars.Read", "User.ReadBasic.All"], []),
        (["Calendars.ReadWrite", "Directory.Read.All"], []),
        (["Calendars.Read"], ["user lookup (enrolment)"]),
        (["User.Read.All"], ["calendars (mirror, notifications)"]),
        ([], ["calendars (mirror, notifications)", "user lookup (enrolment)"]),
    ],
)
def test_missing_permissions(roles: list[str], missing: list[str]) -> None:
    """Required features not covered by the roles; writes are never required."""
    assert [n.feature for n in dx.missing_permissions(roles)] == missing


REGISTRATION = "app registration credential dates (expiry watch, optional)"


@pytest.mark.parametrize(
    ("roles", "missing"),
    [
        (["Calendars.Read", "User.ReadBasic.All"], ["writes (the write API)", REGISTRATION]),
        (["Calendars.ReadWrite", "User.ReadBasic.All"], [REGISTRATION]),
        (["Calendars.ReadWrite", "User.ReadBasic.All", "Application.Read.All"], []),
    ],
)
def test_writes_need_calendars_readwrite(roles: list[str], missing: list[str]) -> None:
    """The write API is optional and needs Calendars.ReadWrite; Calendars.Read does not do."""
    assert [n.feature for n in dx.missing_optional(roles)] == missing


@pytest.mark.parametrize(
    ("aadsts", "error", "words"),
    [
        (90002, "invalid_request", "wrong tenant id"),
        (700016, "unauthorized_client", "wrong client id"),
        (7000215, "invalid_client", "wrong client secret"),
        (7000222, "invalid_client", "expired"),
        (65001, "invalid_grant", "admin consent"),
        (None, "network_error", "could not be reached"),
        (12345, "x", "AADSTS12345"),
        (None, "", "an unknown error"),
    ],
)
def test_token_causes(aadsts: int | None, error: str, words: str) -> None:
    """Each common AADSTS code has its cause and a fix; others name the code to look up."""
    cause, fix = dx.explain_token_error(aadsts, error)
    assert words in cause
    assert fix


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (404, "ResourceNotFound", "no such user"),
        (404, "MailboxNotEnabledForRESTAPI", "no Exchange Online mailbox"),
        (403, "ErrorAccessDenied", "application access policy"),
        (403, "Authorization_RequestDenied", "may not read users"),
        (500, "InternalServerError", "Graph answered 500"),
    ],
)
def test_mailbox_causes(status: int, code: str, words: str) -> None:
    """Graph's refusals to show a mailbox, in an administrator's words."""
    cause, fix = dx.explain_mailbox_error(status, code)
    assert words in cause
    assert fix


def test_report_passes_unless_a_step_failed() -> None:
    """Warnings and skips do not fail a report; one failed step does."""
    ok = dx.Report(
        "t", steps=(dx.Step("a", "ok"), dx.Step("b", "warning"), dx.Step("c", "skipped"))
    )
    assert ok.ok
    assert ok.as_dict()["ok"] is True
    assert not dx.Report("t", steps=(dx.Step("a", "ok"), dx.Step("b", "failed"))).ok
