"""Findings and the scan report, with table / JSON / SARIF 2.1.0 renderers.

Every scanner (lint, image audit, vulnerabilities, model files) returns a
:class:`Report`; ``Report.combine`` merges them so the CLI prints one thing and
gates on one ``--fail-on`` threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import UsageError

#: Ordered from least to most severe; ``--fail-on`` takes one of the last four.
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
FAIL_ON_CHOICES: tuple[str, ...] = ("low", "medium", "high", "critical")

# GitHub code scanning reads "security-severity" (a CVSS-like score) to bucket results.
_SECURITY_SEVERITY = {"info": "0.0", "low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}
_SARIF_LEVEL = {"info": "note", "low": "note", "medium": "warning", "high": "error", "critical": "error"}


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (unknown names raise)."""
    try:
        return SEVERITIES.index(severity.lower())
    except ValueError:
        raise UsageError(
            f"unknown severity {severity!r}",
            f"use one of: {', '.join(FAIL_ON_CHOICES)}",
        ) from None


@dataclass(frozen=True)
class Finding:
    """One thing a scanner wants a person to look at."""

    rule_id: str
    severity: str
    title: str
    location: str
    detail: str = ""
    fix: str = ""
    line: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"bad severity {self.severity!r} for {self.rule_id}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity,
            "title": self.title,
            "location": self.location,
            "line": self.line,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class Report:
    """Findings for one target plus what the scan itself did.

    ``checks`` names every check that ran (and which external tool ran it); ``not_checked`` names
    every requested check that could not run, with why. A scan with anything not checked fails
    any ``--fail-on`` gate: green must mean "checked and clean".
    """

    target: str
    findings: tuple[Finding, ...] = ()
    warnings: tuple[str, ...] = ()
    extras: tuple[tuple[str, Any], ...] = field(default=(), compare=False)
    checks: tuple[str, ...] = ()
    not_checked: tuple[str, ...] = ()

    @staticmethod
    def combine(target: str, *reports: Report) -> Report:
        findings: list[Finding] = []
        warnings: list[str] = []
        extras: list[tuple[str, Any]] = []
        checks: list[str] = []
        not_checked: list[str] = []
        for report in reports:
            findings.extend(f for f in report.findings if f not in findings)
            warnings.extend(w for w in report.warnings if w not in warnings)
            extras.extend(report.extras)
            checks.extend(c for c in report.checks if c not in checks)
            not_checked.extend(n for n in report.not_checked if n not in not_checked)
        return Report(target, tuple(findings), tuple(warnings), tuple(extras), tuple(checks), tuple(not_checked))

    def extra(self, key: str) -> Any:
        """Side results a scanner attached (``"sbom"``, ``"packages"``...), or None."""
        for name, value in self.extras:
            if name == key:
                return value
        return None

    def sorted_findings(self) -> tuple[Finding, ...]:
        return tuple(
            sorted(
                self.findings,
                key=lambda f: (-severity_rank(f.severity), f.rule_id, f.location, f.line or 0),
            )
        )

    def worst_severity(self) -> str | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=severity_rank)

    def fails(self, threshold: str | None) -> bool:
        """True when the ``--fail-on`` gate fails: a finding at or above ``threshold``, or a
        requested check that could not run (fail closed)."""
        return self.gate(threshold) is not None

    def gate(self, threshold: str | None) -> str | None:
        """Why ``--fail-on threshold`` fails: "findings", "not-checked", or None when it passes."""
        if threshold is None:
            return None
        if threshold.lower() not in FAIL_ON_CHOICES:
            raise UsageError(
                f"--fail-on {threshold!r} is not a severity",
                f"use one of: {', '.join(FAIL_ON_CHOICES)}",
            )
        worst = self.worst_severity()
        if worst is not None and severity_rank(worst) >= severity_rank(threshold.lower()):
            return "findings"
        return "not-checked" if self.not_checked else None

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}

    # -- renderers ---------------------------------------------------------------------------

    def to_table(self) -> str:
        lines = [f"scan of {self.target}"]
        if self.checks:
            lines.append(f"checked: {', '.join(self.checks)}")
        for missing in self.not_checked:
            lines.append(f"NOT CHECKED: {missing}")
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        findings = self.sorted_findings()
        if not findings:
            lines.append("no findings" if not self.not_checked else "no findings in what was checked")
            return "\n".join(lines) + "\n"
        rows = [("SEVERITY", "RULE", "LOCATION", "TITLE")]
        for f in findings:
            where = f"{f.location}:{f.line}" if f.line else f.location
            rows.append((f.severity.upper(), f.rule_id, where, f.title))
        widths = [min(max(len(r[i]) for r in rows), 60) for i in range(3)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            lines.append("  ".join(cells + [row[3]]).rstrip())
        summary = ", ".join(f"{n} {s}" for s, n in reversed(self.counts().items()) if n)
        lines.append(f"{len(findings)} finding(s): {summary}")
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        body = {
            "target": self.target,
            "worst_severity": self.worst_severity(),
            "counts": self.counts(),
            "checks": list(self.checks),
            "not_checked": list(self.not_checked),
            "warnings": list(self.warnings),
            "findings": [f.as_dict() for f in self.sorted_findings()],
        }
        return json.dumps(body, indent=2) + "\n"

    def to_sarif(self, tool_version: str = "0.1.0") -> str:
        findings = self.sorted_findings()
        rules: dict[str, dict[str, Any]] = {}
        for f in findings:
            rule = rules.setdefault(
                f.rule_id,
                {
                    "id": f.rule_id,
                    "shortDescription": {"text": f.title},
                    "help": {"text": f.fix or f.title},
                    "properties": {"security-severity": _SECURITY_SEVERITY[f.severity]},
                },
            )
            # One rule id can carry several severities; the rule shows the worst.
            rule["properties"]["security-severity"] = max(
                rule["properties"]["security-severity"], _SECURITY_SEVERITY[f.severity], key=float
            )
        results = [_sarif_result(f) for f in findings]
        run: dict[str, Any] = {
            "tool": {
                "driver": {
                    "name": "dockyard",
                    "version": tool_version,
                    "informationUri": "https://github.com/dockyard/dockyard",
                    "rules": list(rules.values()),
                }
            },
            "results": results,
        }
        if self.warnings or self.not_checked:
            run["invocations"] = [
                {
                    "executionSuccessful": not self.not_checked,
                    "toolExecutionNotifications": [
                        {"level": "error", "message": {"text": f"not checked: {n}"}} for n in self.not_checked
                    ] + [{"level": "warning", "message": {"text": w}} for w in self.warnings],
                }
            ]
        doc = {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [run],
        }
        return json.dumps(doc, indent=2) + "\n"

    def render(self, fmt: str) -> str:
        renderers = {"table": self.to_table, "json": self.to_json, "sarif": self.to_sarif}
        if fmt not in renderers:
            raise UsageError(f"unknown output format {fmt!r}", "use --format table, json or sarif")
        return renderers[fmt]()


def _sarif_result(f: Finding) -> dict[str, Any]:
    text = f.title if not f.detail else f"{f.title}: {f.detail}"
    if f.fix:
        text += f" (fix: {f.fix})"
    location: dict[str, Any] = {"artifactLocation": {"uri": f.location.lstrip("/") or f.location}}
    if f.line:
        location["region"] = {"startLine": f.line}
    return {
        "ruleId": f.rule_id,
        "level": _SARIF_LEVEL[f.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": location}],
        "properties": {"severity": f.severity},
    }
