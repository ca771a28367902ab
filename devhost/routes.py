"""Functions route templates (ASP.NET Core syntax) compiled to regexes, and route matching.

Pure: no I/O. Supported: literal segments (matched case-insensitively), `{name}`, `{name?}`,
`{*rest}`/`{**rest}` (last segment), inline constraints `{id:int}` (int, long, bool, guid,
alpha, double, float, decimal, datetime), and parameters inside a segment (`{name}.{ext}`).
Anything else is refused when the app loads, naming the route, so a route is never silently
served differently than the host would. When several routes match, the most specific wins
(literal > constrained > plain > optional > catch-all), as in ASP.NET Core routing.
Doc: https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#customize-the-http-endpoint
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shared.errors import ConfigError

T = TypeVar("T")
_PARAM = re.compile(r"\{([^{}]+)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GUID = r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}"
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])",
    "guid": _GUID,
    "alpha": r"[A-Za-z]+",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "datetime": r"[^/]+",
}
# Specificity of a segment: lower sorts first (wins).
_LITERAL, _COMPLEX, _CONSTRAINED, _PLAIN, _OPTIONAL, _CATCH_ALL = range(6)


@dataclass(frozen=True)
class CompiledRoute(Generic[T]):
    template: str
    pattern: re.Pattern[str]
    rank: tuple[int, ...]
    target: T
    methods: frozenset[str] | None  # None: any method


@dataclass
class RouteTable(Generic[T]):
    """Routes under one prefix; `match` finds the handler, or tells 404 from 405."""

    prefix: str = "api"
    routes: list[CompiledRoute[T]] = field(default_factory=list)

    def add(self, template: str, target: T, methods: tuple[str, ...] | None) -> None:
        pattern, rank = compile_template(self.prefix, template)
        allowed = frozenset(m.upper() for m in methods) if methods else None
        self.routes.append(CompiledRoute(template, pattern, rank, target, allowed))
        self.routes.sort(key=lambda r: r.rank)

    def match(self, method: str, path: str) -> tuple[T, dict[str, str]] | set[str] | None:
        """(target, route params); or the allowed methods if only the method is wrong; or None."""
        allowed: set[str] = set()
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if route.methods is None or method.upper() in route.methods:
                params = {k: v for k, v in found.groupdict().items() if v is not None}
                return route.target, params
            allowed |= route.methods
        return allowed or None


def compile_template(prefix: str, template: str) -> tuple[re.Pattern[str], tuple[int, ...]]:
    """The regex matching request paths for `template` under `/prefix`, and its rank."""
    segments = [s for s in template.strip("/").split("/") if s] if template.strip("/") else []
    parts = [re.escape("/" + prefix)] if prefix else []
    rank: list[int] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        whole = _PARAM.fullmatch(segment)
        if whole and whole.group(1).startswith("*"):
            if not last:
                raise _bad(template, f"catch-all {segment} must be the last segment")
            name = _check_name(template, whole.group(1).lstrip("*"))
            parts.append(f"(?:/(?P<{name}>.*))?")
            rank.append(_CATCH_ALL)
        elif whole and whole.group(1).endswith("?"):
            name, regex = _parameter(template, whole.group(1)[:-1])
            parts.append(f"(?:/(?P<{name}>{regex}))?")
            rank.append(_OPTIONAL)
        elif whole:
            name, regex = _parameter(template, whole.group(1))
            parts.append(f"/(?P<{name}>{regex})")
            rank.append(_CONSTRAINED if ":" in whole.group(1) else _PLAIN)
        else:
            parts.append("/" + _complex_segment(template, segment))
            rank.append(_COMPLEX if "{" in segment else _LITERAL)
    if not parts:
        parts.append("")
    regex = "^" + "".join(parts) + "/?$"
    try:
        return re.compile(regex, re.IGNORECASE), tuple(rank)
    except re.error as exc:  # e.g. the same parameter name twice
        raise _bad(template, str(exc)) from None


def _complex_segment(template: str, segment: str) -> str:
    """A segment with literals and/or parameters, e.g. `report` or `{name}.{ext}`."""
    if "?" in segment or "*" in segment:
        raise _bad(template, f"{segment!r}: optional and catch-all parameters must fill a segment")
    out, pos = [], 0
    for match in _PARAM.finditer(segment):
        out.append(re.escape(segment[pos : match.start()]))
        name, regex = _parameter(template, match.group(1))
        # Greedy, so the rightmost literal splits: ASP.NET matches complex segments right to left.
        out.append(f"(?P<{name}>{regex})")
        pos = match.end()
    tail = segment[pos:]
    if "{" in tail or "}" in tail:
        raise _bad(template, f"{segment!r} has an unbalanced brace")
    out.append(re.escape(tail))
    return "".join(out)


def _parameter(template: str, body: str) -> tuple[str, str]:
    name, _, constraint = body.partition(":")
    name = _check_name(template, name)
    if not constraint:
        return name, "[^/]+"
    regex = _CONSTRAINTS.get(constraint.lower())
    if regex is None:
        known = ", ".join(sorted(_CONSTRAINTS))
        raise _bad(template, f"constraint {constraint!r} is not served by the dev host ({known})")
    return name, regex


def _check_name(template: str, name: str) -> str:
    if "=" in name:
        raise _bad(template, f"default values ({name!r}) are not served by the dev host")
    if not _NAME.match(name):
        raise _bad(template, f"{name!r} is not a valid parameter name")
    return name


def _bad(template: str, why: str) -> ConfigError:
    return ConfigError([f"route {template!r}: {why}"])
