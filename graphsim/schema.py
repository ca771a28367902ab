"""Check Graph payloads against Graph's own v1.0 schema (CSDL as JSON). Pure: reads one file.

Rule: a payload is valid when every property exists on its type or a base type (event ->
outlookItem -> entity), primitive values have their Edm type, enum values are members,
complex values recurse, collections are lists, and "(not null)" properties are not null.
OData annotations ("@odata.etag", "@odata.type", "@removed", "x@odata.nextLink") are always
allowed; an "@odata.type" naming a derived type switches to that type. Open types with no
declared properties (resourceData) take any property; `event` is open in the CSDL too, but
is checked as closed except for the dynamic properties Graph v1.0 is documented to return
(DYNAMIC), because a misspelt event property is far likelier than a real dynamic one.
The schema is $GRAPH_SCHEMA_PATH, else ../shared/graph-schema/ beside the repository, else the
copy vendored in graphsim/graph_schema/ (so a clean clone alone can run the fidelity tests).
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphsim.errors import GraphRequestError

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT.parent / "shared" / "graph-schema" / "graph-v1.0-calendar.json"
SCHEMA_ENV = "GRAPH_SCHEMA_PATH"
VENDORED_PATH = Path(__file__).resolve().parent / "graph_schema" / "graph-v1.0-calendar.json"

# Dynamic properties of open types that Graph v1.0 answers with: v1.0 event responses carry
# "occurrenceId" (e.g. api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties,
# response of the event example), though the v1.0 CSDL does not declare it.
DYNAMIC: dict[str, dict[str, str]] = {"event": {"occurrenceId": "Edm.String"}}

_INT32 = (-(2**31), 2**31 - 1)
_OFFSET_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,7})?)?$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


def schema_path() -> Path:
    """Where the schema is read from: $GRAPH_SCHEMA_PATH, beside the repository, or vendored."""
    env = os.environ.get(SCHEMA_ENV)
    if env:
        return Path(env)
    if SCHEMA_PATH.is_file():
        return SCHEMA_PATH
    if VENDORED_PATH.is_file():
        return VENDORED_PATH
    raise FileNotFoundError(
        f"Graph schema not found at {SCHEMA_PATH} nor {VENDORED_PATH}; set {SCHEMA_ENV} to "
        "graph-v1.0-calendar.json."
    )


@lru_cache(maxsize=1)
def types() -> dict[str, dict[str, Any]]:
    """The schema's types by name (loaded once)."""
    with schema_path().open(encoding="utf-8") as f:
        loaded: dict[str, dict[str, Any]] = json.load(f)["types"]
    return loaded


def _properties(type_name: str) -> dict[str, str]:
    """Declared, navigation and documented dynamic properties of a type and its bases."""
    out: dict[str, str] = {}
    name: str | None = type_name
    while name is not None:
        spec = types()[name]
        for table in (spec.get("navigationProperties", {}), spec.get("properties", {})):
            for prop, ptype in table.items():
                out.setdefault(prop, ptype)
        for prop, ptype in DYNAMIC.get(name, {}).items():
            out.setdefault(prop, ptype)
        name = spec.get("baseType")
    return out


def _type_named(odata_type: str) -> str | None:
    """The schema type an @odata.type names ("#microsoft.graph.fileAttachment"; Graph also
    writes "#Microsoft.Graph.Event" in notifications, so case does not matter)."""
    short = odata_type.lstrip("#")
    if short.lower().startswith("microsoft.graph."):
        short = short[len("microsoft.graph.") :]
    lowered = {t.lower(): t for t in types()}
    return lowered.get(short.lower())


def _derives(type_name: str, base: str) -> bool:
    name: str | None = type_name
    while name is not None:
        if name == base:
            return True
        name = types()[name].get("baseType")
    return False


def validate(type_name: str, payload: Any) -> list[str]:
    """Problems of `payload` as an instance of `type_name` (empty list: valid)."""
    if type_name not in types():
        raise KeyError(f"unknown type {type_name!r}; known: {', '.join(sorted(types()))}")
    problems: list[str] = []
    _check_value(f"graph.{type_name}", payload, type_name, problems)
    return problems


def validate_or_raise(type_name: str, payload: Any) -> None:
    """Raise a 500 GraphRequestError naming every problem (for the simulator's own output)."""
    problems = validate(type_name, payload)
    if problems:
        raise GraphRequestError(
            500,
            "InternalServerError",
            f"Payload is not a valid {type_name}: " + "; ".join(problems[:10]),
        )


def _check_value(ptype: str, value: Any, path: str, problems: list[str]) -> None:
    not_null = ptype.endswith(" (not null)")
    ptype = ptype.removesuffix(" (not null)")
    if value is None:
        if not_null:
            problems.append(f"{path}: null is not allowed ({ptype} is not nullable)")
        return
    if ptype.startswith("Collection(") and ptype.endswith(")"):
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list ({ptype}), got {type(value).__name__}")
            return
        inner = ptype[len("Collection(") : -1]
        for i, item in enumerate(value):
            if item is None:
                problems.append(f"{path}[{i}]: null in a collection")
            else:
                _check_value(inner, item, f"{path}[{i}]", problems)
        return
    if ptype.startswith("Edm."):
        problem = _check_primitive(ptype, value)
        if problem:
            problems.append(f"{path}: {problem}")
        return
    name = ptype.removeprefix("graph.")
    spec = types().get(name)
    if spec is None:
        problems.append(f"{path}: the schema has no type {ptype}")
    elif spec["kind"] == "EnumType":
        if value not in spec["members"]:
            members = ", ".join(spec["members"])
            problems.append(f"{path}: {value!r} is not a member of {name} ({members})")
    else:
        _check_object(name, value, path, problems)


def _check_object(name: str, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected an object ({name}), got {type(value).__name__}")
        return
    declared = value.get("@odata.type")
    open_type = bool(types()[name].get("openType"))
    if isinstance(declared, str):
        derived = _type_named(declared)
        if derived is not None and _derives(derived, name):
            name = derived
        elif not open_type:  # an open type's @odata.type may describe what it refers to
            why = (
                "is not a type of the schema" if derived is None else f"does not derive from {name}"
            )
            problems.append(f"{path}: @odata.type {declared!r} {why}")
    props = _properties(name)
    open_any = bool(types()[name].get("openType")) and name not in DYNAMIC
    for key, item in value.items():
        if "@" in key:  # instance annotations: @odata.etag, @removed, prop@odata.nextLink
            continue
        ptype = props.get(key)
        if ptype is None:
            if not open_any:
                problems.append(f"{path}.{key}: no property {key!r} on {name} or its base types")
            continue
        _check_value(ptype, item, f"{path}.{key}", problems)


def _check_primitive(ptype: str, value: Any) -> str | None:
    ok: bool
    if ptype in ("Edm.String", "Edm.Duration"):
        ok = isinstance(value, str)
    elif ptype == "Edm.Boolean":
        ok = isinstance(value, bool)
    elif ptype in ("Edm.Int32", "Edm.Int64", "Edm.Int16", "Edm.Byte"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and ptype == "Edm.Int32" and not _INT32[0] <= value <= _INT32[1]:
            return f"{value} is out of range for Edm.Int32"
    elif ptype in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif ptype == "Edm.DateTimeOffset":
        ok = isinstance(value, str) and bool(_OFFSET_RE.match(value))
    elif ptype == "Edm.Date":
        ok = isinstance(value, str) and _is_date(value)
    elif ptype == "Edm.TimeOfDay":
        ok = isinstance(value, str) and bool(_TIME_RE.match(value))
    elif ptype == "Edm.Guid":
        ok = isinstance(value, str) and bool(_GUID_RE.match(value))
    elif ptype == "Edm.Binary":
        ok = isinstance(value, str) and bool(_BASE64_RE.match(value))
    else:
        return f"the validator does not know the primitive type {ptype}"
    return None if ok else f"{value!r} is not a valid {ptype}"


def _is_date(text: str) -> bool:
    if len(text) != 10:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
