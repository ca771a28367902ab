"""The Bicep parses (pycep, checkov's parser: there is no Bicep compiler offline) and hangs
together: modules exist and get exactly the parameters they declare, outputs used exist,
main.parameters.json matches main.bicep, and every parameter explains itself to the deployer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bicep_tools import INFRA, parse_bicep

from shared.settings import CREDENTIAL_TYPES

MAIN = INFRA / "main.bicep"


def model(bicep_models: dict[Path, dict[str, Any]], path: Path) -> dict[str, Any]:
    entry = bicep_models[path]
    assert "model" in entry, f"{path.relative_to(INFRA)} does not parse: {entry.get('error')}"
    result: dict[str, Any] = entry["model"]
    return result


def decorators(param: dict[str, Any]) -> dict[str, Any]:
    return {d["type"]: d.get("argument") for d in param.get("decorators", [])}


def test_every_bicep_file_parses(bicep_models: dict[Path, dict[str, Any]]) -> None:
    """pycep parses each infra/**/*.bicep; a failure names the file and the parser's message."""
    assert MAIN in bicep_models
    broken = {
        str(p.relative_to(INFRA)): e["error"] for p, e in bicep_models.items() if "error" in e
    }
    assert not broken, f"Bicep files that do not parse: {broken}"


def test_a_broken_file_is_reported_with_its_position(checkov_python: str, tmp_path: Path) -> None:
    """The parse check fails for an unclosed resource and says where (so it can fail at all)."""
    broken = tmp_path / "broken.bicep"
    broken.write_text("param n string\nresource s 'Microsoft.Web/sites@2024-04-01' = {\n name: n\n")
    (result,) = parse_bicep(checkov_python, [broken]).values()
    assert "line" in result["error"]


def test_modules_get_exactly_the_parameters_they_declare(
    bicep_models: dict[Path, dict[str, Any]],
) -> None:
    """Each module call passes only declared parameters and every one without a default."""
    problems = []
    for path in bicep_models:
        for symbol, module in (model(bicep_models, path).get("modules") or {}).items():
            target = (path.parent / module["detail"]["path"]).resolve()
            assert target in bicep_models, f"{path.name}: module {symbol} -> missing {target}"
            declared = model(bicep_models, target).get("parameters") or {}
            given = set(module["config"].get("params") or {})
            required = {name for name, p in declared.items() if p.get("default") is None}
            if unknown := given - set(declared):
                problems.append(f"{symbol} ({target.name}) has no parameter {sorted(unknown)}")
            if missing := required - given:
                problems.append(f"{symbol} ({target.name}) needs {sorted(missing)}")
    assert not problems, problems


def test_module_outputs_used_in_main_exist(bicep_models: dict[Path, dict[str, Any]]) -> None:
    """Every `<module>.outputs.<name>` in main.bicep names an output that module declares."""
    modules = model(bicep_models, MAIN)["modules"]
    used = set(re.findall(r"\b(\w+)\.outputs\.(\w+)", MAIN.read_text(encoding="utf-8")))
    assert used
    missing = []
    for symbol, output in sorted(used):
        target = (MAIN.parent / modules[symbol]["detail"]["path"]).resolve()
        if output not in (model(bicep_models, target).get("outputs") or {}):
            missing.append(f"{symbol}.outputs.{output}")
    assert not missing, f"outputs that their modules do not declare: {missing}"


def test_every_parameter_has_a_description(bicep_models: dict[Path, dict[str, Any]]) -> None:
    """Each parameter of each file has @description: azd and the portal show it when asking."""
    bare = [
        f"{path.relative_to(INFRA)}:{name}"
        for path in bicep_models
        for name, param in (model(bicep_models, path).get("parameters") or {}).items()
        if not decorators(param).get("description")
    ]
    assert not bare, f"parameters without @description: {bare}"


def test_required_parameters_reject_empty_and_wrong_values(
    bicep_models: dict[Path, dict[str, Any]],
) -> None:
    """Missing tenant or client ids fail validation naming the parameter (minLength), and the
    credential type accepts exactly the values the code accepts."""
    params = model(bicep_models, MAIN)["parameters"]
    required = {name for name, p in params.items() if p.get("default") is None}
    assert {"tenantIds", "clientId"} <= required
    for name in required - {"environmentName", "location"}:
        assert decorators(params[name]).get("min_length"), f"{name} needs @minLength"
    assert decorators(params["clientId"])["max_length"] == 36
    assert tuple(decorators(params["clientCredentialType"])["allowed"]) == CREDENTIAL_TYPES


def test_parameters_file_matches_main(bicep_models: dict[Path, dict[str, Any]]) -> None:
    """main.parameters.json sets only parameters main.bicep has, and maps every required one to
    an azd environment value (azd prompts for it when that value is empty)."""
    params = model(bicep_models, MAIN)["parameters"]
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert set(mapped) <= set(params), f"unknown parameters: {set(mapped) - set(params)}"
    required = {name for name, p in params.items() if p.get("default") is None}
    assert required <= set(mapped), f"required but not mapped: {required - set(mapped)}"
    assert mapped["tenantIds"]["value"] == "${TENANT_IDS}"
    assert mapped["clientId"]["value"] == "${CLIENT_ID}"


def test_no_template_handles_keys_or_secret_values() -> None:
    """No Bicep lists storage keys or secrets, builds a key connection string or takes a secure
    parameter: credentials never pass through a template or a deployment's history."""
    pattern = re.compile(r"listKeys|listSecrets|AccountKey=|@secure|SharedAccessSignature")
    found = [
        f"{path.relative_to(INFRA)}:{n}"
        for path in sorted(INFRA.rglob("*.bicep"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line.split("//", 1)[0])
    ]
    assert not found, found
