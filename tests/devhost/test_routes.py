"""Functions route templates: matching, parameters, constraints, precedence, 404 vs 405 (pure)."""

from __future__ import annotations

import pytest

from devhost.routes import RouteTable, compile_template
from shared.errors import ConfigError


@pytest.mark.parametrize(
    ("template", "path", "params"),
    [
        ("health", "/api/health", {}),
        ("health", "/api/HEALTH", {}),  # literals match case-insensitively
        ("health", "/api/health/", {}),
        ("health", "/api/healthz", None),
        ("health", "/health", None),
        ("mailboxes/{mailbox_id}", "/api/mailboxes/a%40b", {"mailbox_id": "a%40b"}),
        ("mailboxes/{mailbox_id}", "/api/mailboxes/Ab-1/x", None),
        (
            "mailboxes/{mailbox_id}/events/{event_id}",
            "/api/mailboxes/m/events/e",
            {"mailbox_id": "m", "event_id": "e"},
        ),
        ("items/{id:int}", "/api/items/-12", {"id": "-12"}),
        ("items/{id:int}", "/api/items/x1", None),
        (
            "items/{id:guid}",
            "/api/items/0f8fad5b-d9cb-469f-a165-70867728950e",
            {"id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ),
        ("items/{flag:bool}", "/api/items/True", {"flag": "True"}),
        ("items/{name:alpha}", "/api/items/abc1", None),
        ("opt/{name?}", "/api/opt", {}),
        ("opt/{name?}", "/api/opt/x", {"name": "x"}),
        ("opt/{n:int?}", "/api/opt/x", None),
        ("files/{*rest}", "/api/files", {}),
        ("files/{*rest}", "/api/files/a/b/c", {"rest": "a/b/c"}),
        ("files/{**rest}", "/api/files/a/b", {"rest": "a/b"}),
        ("files/{name}.{ext}", "/api/files/report.v2.pdf", {"name": "report.v2", "ext": "pdf"}),
        ("", "/api", {}),
    ],
)
def test_template_matching(template: str, path: str, params: dict[str, str] | None) -> None:
    """Each template matches exactly the paths the Functions host would route to it."""
    pattern, _ = compile_template("api", template)
    found = pattern.match(path)
    if params is None:
        assert found is None
    else:
        assert found is not None
        assert {k: v for k, v in found.groupdict().items() if v is not None} == params


def test_route_prefix_can_be_empty() -> None:
    """With routePrefix "" routes sit at the root."""
    pattern, _ = compile_template("", "health")
    assert pattern.match("/health")
    assert not pattern.match("/api/health")


def test_most_specific_route_wins_whatever_the_order() -> None:
    """literal > constrained > plain > optional > catch-all, regardless of declaration order."""
    table: RouteTable[str] = RouteTable("api")
    table.add("things/{*rest}", "catch-all", None)
    table.add("things/{name?}", "optional", None)
    table.add("things/{name}", "plain", None)
    table.add("things/{id:int}", "constrained", None)
    table.add("things/new", "literal", None)
    assert table.match("GET", "/api/things/new") == ("literal", {})
    assert table.match("GET", "/api/things/7") == ("constrained", {"id": "7"})
    assert table.match("GET", "/api/things/x") == ("plain", {"name": "x"})
    assert table.match("GET", "/api/things") == ("optional", {})
    assert table.match("GET", "/api/things/a/b") == ("catch-all", {"rest": "a/b"})


def test_method_mismatch_reports_allowed_methods() -> None:
    """A path served for other methods yields the allowed set (405); an unknown path None (404)."""
    table: RouteTable[str] = RouteTable("api")
    table.add("x", "get", ("GET",))
    table.add("x", "post", ("post",))
    assert table.match("POST", "/api/x") == ("post", {})
    assert table.match("DELETE", "/api/x") == {"GET", "POST"}
    assert table.match("GET", "/api/y") is None


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("a/{*rest}/b", "must be the last segment"),
        ("a/{id:regex(x)}", "is not served by the dev host"),
        ("a/{id=5}", "default values"),
        ("a/{x}-{y?}", "must fill a segment"),
        ("a/{1x}", "not a valid parameter name"),
        ("a/{x}/{x}", "route 'a/{x}/{x}'"),
        ("a/{x", "unbalanced brace"),
    ],
)
def test_bad_templates_are_refused_naming_the_route(template: str, words: str) -> None:
    """A template the dev host cannot serve faithfully is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=words):
        compile_template("api", template)
