"""Second opinions from other scanners, used when they are installed, and saying which ran.

picklescan and fickling judge pickle-family model files next to dockyard's own allow-list
(scan.models). They may only make a verdict stricter: a file they call dangerous and we call
clean gets a finding; nothing they say can clear a file we refuse.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from dockyard.scan.findings import Finding, Report

log = logging.getLogger(__name__)

# fickling rates imports whose name starts with "__" as likely overtly malicious; numpy pickles
# every RandomState/Generator (which fitted sklearn models keep) through these constructors.
# They build only the bit-generator class they are given, which must itself be allow-listed.
FICKLING_NAME_HEURISTIC = ("__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor")
#: vulnerability and inventory scanners dockyard looks for on PATH
VULN_TOOLS = ("trivy", "grype", "osv-scanner", "syft")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def picklescan_dangerous(path: Path) -> list[str] | None:
    """The dangerous globals picklescan reports, or None when picklescan is not installed."""
    try:
        from picklescan.scanner import scan_file_path  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    try:
        result = scan_file_path(str(path))
    except Exception as exc:  # noqa: BLE001 (a crash in a second opinion must not end the scan)
        log.info("picklescan failed on %s: %s", path, exc)
        return []
    if not result.infected_files:
        return []
    return sorted({f"{g.module}.{g.name}" for g in result.globals if str(g.safety).endswith("DANGEROUS")}) or ["?"]


def fickling_dangerous(path: Path) -> list[str] | None:
    """fickling's overtly-malicious messages (minus its name heuristic), or None when not installed."""
    try:
        import fickling  # type: ignore[import-not-found,import-untyped,unused-ignore]
        from fickling.analysis import Severity  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    try:
        result = fickling.scan_file(str(path))
    except Exception as exc:  # noqa: BLE001 (fickling cannot parse joblib or zip members: no verdict)
        log.info("fickling failed on %s: %s", path, exc)
        return []
    messages = [str(getattr(a, "message", a)) for r in result.results for a in getattr(r, "results", [r])
                if getattr(a, "severity", Severity.LIKELY_SAFE) >= Severity.LIKELY_OVERTLY_MALICIOUS]
    return [m for m in messages if not any(name in m for name in FICKLING_NAME_HEURISTIC)]


def second_opinion(files: Iterable[tuple[Path, str]], target: str) -> Report:
    """Run picklescan and fickling (when installed) on ``(path, our status)`` pairs."""
    files = list(files)
    tools = [(name, fn, _version(name)) for name, fn in (("picklescan", picklescan_dangerous),
                                                          ("fickling", fickling_dangerous))]
    ran = [(name, fn, version) for name, fn, version in tools if version is not None]
    if not ran:
        return Report(target, warnings=("no second opinion on model files: install picklescan or fickling",))
    findings: list[Finding] = []
    for path, ours in files:
        for name, fn, _ in ran:
            flagged = fn(path)
            if flagged and ours == "clean":
                findings.append(Finding(
                    "model/second-opinion", "high", f"{name} calls this model file dangerous", str(path),
                    "; ".join(flagged)[:300], "inspect it before loading; report a gap in dockyard's allow-list"))
    checks = tuple(f"second opinion on {len(files)} model file(s): {name} {version}" for name, _, version in ran)
    return Report(target, tuple(findings), checks=checks)


def vulnerability_tools() -> dict[str, str]:
    """External vulnerability/inventory scanners found on PATH: name -> path."""
    return {name: found for name in VULN_TOOLS if (found := shutil.which(name))}
