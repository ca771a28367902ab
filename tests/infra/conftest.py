"""Fixtures for the offline checks of infra/: where checkov lives, its runs, and pycep's parse.

checkov has its own venv (.tools/checkov, made by scripts/bootstrap; CI may point CHECKOV at
another install). Missing checkov FAILS these tests: an unchecked template must not pass CI.
pycep is checkov's Bicep parser; it runs in checkov's interpreter, never imported here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from bicep_tools import (
    INFRA,
    RAW_FLAGS,
    REPO,
    SKIP_FILE,
    bicep_files,
    checkov_result,
    parse_bicep,
    run_checkov,
)


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The checkov executable: $CHECKOV, else .tools/checkov/bin/checkov. Fails if absent."""
    given = os.environ.get("CHECKOV", "")
    found = (shutil.which(given) if given and os.sep not in given else given) or str(
        REPO / ".tools" / "checkov" / "bin" / "checkov"
    )
    path = Path(found)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"checkov not found at {path}: run `WITH_CHECKOV=1 bash scripts/bootstrap`, "
            "or set CHECKOV to a checkov executable"
        )
    return path


@pytest.fixture(scope="session")
def checkov_python(checkov: Path) -> str:
    """The interpreter checkov runs on (its shebang), which can import pycep."""
    first = checkov.read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    interpreter = first[2:].strip() if first.startswith("#!") else ""
    if interpreter and Path(interpreter).is_file():
        return interpreter
    sibling = checkov.parent / "python"
    if sibling.is_file():
        return str(sibling)
    pytest.fail(f"cannot find the Python interpreter of {checkov} (no usable shebang)")


@pytest.fixture(scope="session")
def bicep_models(checkov_python: str) -> dict[Path, dict[str, Any]]:
    """Every infra/**/*.bicep parsed by pycep, keyed by path (each {"model"} or {"error"})."""
    parsed = parse_bicep(checkov_python, bicep_files())
    return {Path(k): v for k, v in parsed.items()}


@pytest.fixture(scope="session")
def checkov_runs(checkov: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    """Two checkov runs over infra/, side by side: with the skip file, and without it."""
    with_skips = run_checkov(checkov, INFRA, "--config-file", str(SKIP_FILE))
    raw = run_checkov(checkov, INFRA, *RAW_FLAGS)
    return {"with_skips": checkov_result(with_skips), "raw": checkov_result(raw)}
