from __future__ import annotations

import json

import pytest

from dockyard.errors import UsageError
from dockyard.scan.findings import Finding, Report

REPORT = Report("demo:1", (
    Finding("image/setuid", "medium", "setuid file /usr/bin/su", "/usr/bin/su", "mode 4755", "chmod u-s"),
    Finding("dockerfile/root-user", "high", "runs as root", "Dockerfile", "", "add USER", 7),
    Finding("DL3008", "low", "pin apt versions", "Dockerfile", "", "", 3),
), ("OSV database is 40 days old",))


@pytest.mark.parametrize(("threshold", "fails"), [("low", True), ("medium", True), ("high", True), ("critical", False)])
def test_fail_on_gates_at_or_above_the_threshold(threshold: str, fails: bool) -> None:
    assert REPORT.fails(threshold) is fails


def test_empty_report_never_fails_and_has_no_worst_severity() -> None:
    empty = Report("x")
    assert empty.worst_severity() is None and not empty.fails("low")


def test_unknown_fail_on_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--fail-on"):
        REPORT.fails("severe")


def test_table_sorts_by_severity_and_shows_warnings() -> None:
    lines = REPORT.to_table().splitlines()
    assert lines[1] == "warning: OSV database is 40 days old"
    assert lines[3].startswith("HIGH") and "Dockerfile:7" in lines[3]
    assert lines[-1] == "3 finding(s): 1 high, 1 medium, 1 low"


def test_json_round_trips_every_finding() -> None:
    body = json.loads(REPORT.to_json())
    assert body["worst_severity"] == "high"
    assert [f["rule_id"] for f in body["findings"]] == ["dockerfile/root-user", "image/setuid", "DL3008"]


def test_sarif_is_2_1_0_with_rules_levels_and_lines() -> None:
    doc = json.loads(REPORT.to_sarif())
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {"image/setuid", "dockerfile/root-user", "DL3008"}
    first = run["results"][0]
    assert (first["ruleId"], first["level"]) == ("dockerfile/root-user", "error")
    assert first["locations"][0]["physicalLocation"]["region"] == {"startLine": 7}
    assert run["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"].startswith("OSV")


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--format"):
        REPORT.render("xml")


def test_combine_merges_findings_and_warnings_without_duplicates() -> None:
    merged = Report.combine("all", REPORT, REPORT, Report("b", (), ("other",)))
    assert len(merged.findings) == 3 and merged.warnings == ("OSV database is 40 days old", "other")
