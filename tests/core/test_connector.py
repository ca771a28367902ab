"""The raw Graph request's rules: only the enrolled mailbox's calendar data, allowed methods."""

from __future__ import annotations

import re

import pytest

from shared.core.connector import raw_method, raw_path, raw_query
from shared.errors import ForbiddenError, InputError

UID = "0f1e2d3c-aaaa-bbbb-cccc-000000000001"
UPN = "ada@contoso.example"


@pytest.mark.parametrize(
    ("given", "wanted"),
    [
        (f"/users/{UID}/calendars", f"users/{UID}/calendars"),
        (f"/users/{UPN}/events/AAMk%2Fx=", f"users/{UID}/events/AAMk%2Fx="),
        (f"users/{UPN.upper()}/calendarView", f"users/{UID}/calendarView"),
        (f"/users/{UID}/calendars('AQMk')/events", f"users/{UID}/calendars('AQMk')/events"),
    ],
)
def test_paths_of_the_mailbox_are_kept_with_its_id(given: str, wanted: str) -> None:
    """A path of the mailbox (by id or UPN) is sent as users/{id}/..., encoding kept."""
    assert raw_path(given, user_id=UID, upn=UPN) == wanted


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("https://evil.example/users/x/events", "no other host"),
        ("/users/someone-else@contoso.example/events", "only address the enrolled mailbox"),
        (f"/users/{UID}/messages", "may only reach"),
        (f"/users/{UID}/../other/events", "'..' segments"),
        (f"/users/{UID}/events%2F..%2F..%2Fusers%2Fother", "'..' segments"),
        (f"/users/{UID}/events/%252e%252e", "percent-encoding"),
        ("/groups/x/calendar", "must be /users/{id}"),
        (f"/users/{UID}", "must be /users/{id}"),
        (f"/users/{UID}//events", "empty"),
    ],
)
def test_paths_outside_the_mailbox_are_forbidden(given: str, words: str) -> None:
    """Another host, user or resource, dot segments (even encoded), double encoding: 403."""
    with pytest.raises(ForbiddenError, match=re.escape(words)):
        raw_path(given, user_id=UID, upn=UPN)


def test_methods_and_queries_are_checked() -> None:
    """Allowed methods pass upper-cased; PUT is forbidden; a bad query key is an input error."""
    assert raw_method("patch") == "PATCH"
    with pytest.raises(ForbiddenError, match="PUT is not allowed"):
        raw_method("PUT")
    assert raw_query({"$top": "5", "startDateTime": "x"}) == (("$top", "5"), ("startDateTime", "x"))
    with pytest.raises(InputError, match="not a Graph query parameter"):
        raw_query({"a b": "1"})
    with pytest.raises(InputError, match=r"query\.\$top must be a string"):
        raw_query({"$top": 5})
    with pytest.raises(InputError, match="must not hold a query"):
        raw_path(f"/users/{UID}/events?$top=1", user_id=UID, upn=UPN)
