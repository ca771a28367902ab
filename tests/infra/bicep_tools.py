"""Helpers for the offline checks of infra/: paths, pycep parsing, checkov runs.

pycep is checkov's Bicep parser; it runs in checkov's own interpreter, never imported here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
SKIP_FILE = INFRA / "checkov-skips.yaml"
TIMEOUT = 240

# Parses each file named on the command line with pycep; prints {path: {"error"|"model": ...}}.
_PARSE = """
import json, sys
from pycep import BicepParser
out = {}
for path in sys.argv[1:]:
    try:
        out[path] = {"model": BicepParser().parse(text=open(path, encoding="utf-8").read())}
    except Exception as exc:
        out[path] = {"error": type(exc).__name__ + ": " + str(exc).splitlines()[0]}
print(json.dumps(out, default=str))
"""


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def parse_bicep(python: str, paths: list[Path]) -> dict[str, dict[str, Any]]:
    """pycep's result per file: {"model": ...} or {"error": "..."}, keyed by the given path."""
    done = subprocess.run(
        [python, "-c", _PARSE, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"pycep run failed: {done.stderr[-2000:]}"
    result: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return result


def run_checkov(checkov: Path, directory: Path, *extra: str) -> subprocess.Popen[str]:
    """Start checkov over `directory` with JSON output (read it with `checkov_result`)."""
    return subprocess.Popen(
        [str(checkov), "-d", str(directory), "-o", "json", *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def checkov_result(process: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    """Exit code and the bicep report of a checkov run started by `run_checkov`."""
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {process.returncode}): {stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    bicep = [r for r in reports if isinstance(r, dict) and r.get("check_type") == "bicep"]
    if not bicep:  # a bare summary: checkov found no Bicep file at all
        pytest.fail(f"checkov scanned no Bicep (exit {process.returncode}): {stdout[-2000:]}")
    return process.returncode or 0, bicep[0]


# Flags for a run without the skip file (the same as in infra/checkov-skips.yaml).
RAW_FLAGS = ("--framework", "bicep", "--skip-download", "--quiet", "--compact")
