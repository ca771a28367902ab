"""checkov over infra/ (framework bicep, offline): no failed check but the ones listed in
infra/checkov-skips.yaml, each with its reason, and none of those listed in vain."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from bicep_tools import RAW_FLAGS, SKIP_FILE, checkov_result, run_checkov

pytestmark = pytest.mark.slow

_ENTRY = re.compile(r"^\s*-\s*(CKV2?_[A-Z0-9_]+)\s*(?:#\s*(.*?))?\s*$")


def skip_entries() -> dict[str, str]:
    """Check id -> reason, from the skip-check list of the skip file (reason = trailing comment)."""
    entries: dict[str, str] = {}
    in_list = False
    for line in SKIP_FILE.read_text(encoding="utf-8").splitlines():
        if re.match(r"^[A-Za-z-]+:", line):
            in_list = line.startswith("skip-check:")
            continue
        match = _ENTRY.match(line)
        if in_list and match:
            assert match.group(1) not in entries, f"{match.group(1)} is listed twice"
            entries[match.group(1)] = match.group(2) or ""
    return entries


def failures(report: dict[str, Any]) -> list[str]:
    return sorted(
        f"{c['check_id']} {c['check_name']} ({c['file_path']}: {c['resource']})"
        for c in report["results"]["failed_checks"]
    )


def test_every_skipped_check_has_a_reason() -> None:
    """Each skip-check entry carries a comment saying why the deployment fails it on purpose."""
    entries = skip_entries()
    assert entries, "the skip file lists no checks: was it parsed?"
    vague = [check for check, reason in entries.items() if len(reason) < 20]
    assert not vague, f"give each of these a reason (a '# why' comment of a sentence): {vague}"


def test_checkov_passes_with_the_skip_file(checkov_runs: dict[str, Any]) -> None:
    """`checkov -d infra --config-file infra/checkov-skips.yaml` exits 0 with no failed check,
    no parsing error, and checks that did run."""
    code, report = checkov_runs["with_skips"]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, "checkov could not parse a Bicep file"
    assert failures(report) == [], "fix these, or list them with a reason in the skip file"
    assert summary["passed"] > 0
    assert summary["resource_count"] > 0
    assert code == 0


def test_only_skipped_checks_fail_and_every_skip_is_needed(checkov_runs: dict[str, Any]) -> None:
    """Without the skip file exactly the listed checks fail: nothing else, and no stale entry."""
    _, report = checkov_runs["raw"]
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    listed = set(skip_entries())
    unlisted = sorted(line for line in failures(report) if line.split()[0] not in listed)
    assert not unlisted, f"failing checks that the skip file does not list: {unlisted}"
    assert not listed - failed, f"skips no check fails any more (remove them): {listed - failed}"


def test_checkov_counts_a_broken_bicep_file_as_a_parsing_error(
    checkov: Path, tmp_path: Path
) -> None:
    """checkov exits 0 on a Bicep file it cannot parse and only counts it: why the runs above
    assert parsing_errors == 0 rather than trusting the exit code."""
    (tmp_path / "broken.bicep").write_text(
        "param name string\nresource s 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
        "  name: name\n  properties: {\n",
        encoding="utf-8",
    )
    code, report = checkov_result(run_checkov(checkov, tmp_path, *RAW_FLAGS))
    assert report["summary"]["parsing_errors"] == 1
    assert code == 0
