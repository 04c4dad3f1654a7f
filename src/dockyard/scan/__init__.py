"""``dockyard scan``: Dockerfile lint, image audit, SBOM, OSV vulnerabilities and model files.

Entry points return a :class:`Report`; the CLI renders it (``report.render("table"|"json"|"sarif")``)
and gates on ``report.fails(fail_on)``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dockyard.errors import ScanError
from dockyard.scan.dockerignore import DockerIgnore
from dockyard.scan.findings import FAIL_ON_CHOICES, SEVERITIES, Finding, Report
from dockyard.scan.image import ImageFilesystem, audit_image, read_image_tar, save_image
from dockyard.scan.lint import lint_dockerfile, lint_dockerfile_text
from dockyard.scan.models import ModelScanResult, is_model_file, scan_model_file
from dockyard.scan.sbom import (
    Package,
    cyclonedx_json,
    inventory,
    inventory_from_directory,
    spdx_json,
    unread_package_databases,
)
from dockyard.scan.secrets import classify_file
from dockyard.scan.vulns import load_osv_database, scan_vulnerabilities

__all__ = [
    "FAIL_ON_CHOICES",
    "SEVERITIES",
    "DockerIgnore",
    "Finding",
    "ImageFilesystem",
    "ModelScanResult",
    "Package",
    "Report",
    "cyclonedx_json",
    "image_sbom",
    "lint_dockerfile",
    "lint_dockerfile_text",
    "load_osv_database",
    "read_image_tar",
    "scan_image",
    "scan_image_archive",
    "scan_model_file",
    "scan_path",
    "spdx_json",
]

_SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache"}


def scan_image_archive(archive: Path, *, target: str | None = None, osv_db: Path | None = None,
                       offline: bool = False, max_db_age_days: int = 30) -> Report:
    """Audit + SBOM + vulnerabilities for a ``docker save`` tar (pure: reads the file only).

    The report's extras carry ``"packages"`` (tuple of Package) and ``"filesystem"``.
    """
    fs = read_image_tar(Path(archive), ref=target)
    name = target or (fs.tags[0] if fs.tags else str(archive))
    packages = inventory(fs)
    audit = audit_image(fs, name)
    vulns = scan_vulnerabilities(packages, target=name, osv_db=osv_db, offline=offline,
                                 max_db_age_days=max_db_age_days)
    unread = Report(name, not_checked=tuple(f"vulnerabilities in {u}" for u in unread_package_databases(fs)))
    combined = Report.combine(name, audit, vulns, unread)
    return dataclasses.replace(combined, extras=(("packages", packages), ("filesystem", fs)))


def scan_image(ref: str, *, osv_db: Path | None = None, offline: bool = False,
               max_db_age_days: int = 30) -> Report:
    """``docker save`` a local image (never pulls) and scan the archive."""
    with tempfile.TemporaryDirectory(prefix="dockyard-scan-") as tmp:
        archive = save_image(ref, Path(tmp))
        return scan_image_archive(archive, target=ref, osv_db=osv_db, offline=offline,
                                  max_db_age_days=max_db_age_days)


def image_sbom(report: Report, fmt: str = "cyclonedx") -> str:
    """CycloneDX 1.6 or SPDX 2.3 JSON for the packages a ``scan_image*`` report found."""
    packages = report.extra("packages")
    if packages is None:
        raise ScanError("this report has no package inventory", "run scan_image or scan_image_archive first")
    if fmt == "cyclonedx":
        return cyclonedx_json(packages, report.target)
    if fmt == "spdx":
        return spdx_json(packages, report.target)
    raise ScanError(f"unknown SBOM format {fmt!r}", "use --sbom cyclonedx or --sbom spdx")


def _context_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath) / name
    # Of .git's internals only the config can hold a credential (a token in a remote URL).
    if (root / ".git" / "config").is_file():
        yield root / ".git" / "config"


def scan_path(project_dir: Path, *, osv_db: Path | None = None, offline: bool = False,
              max_db_age_days: int = 30, hadolint: bool | None = None, vulns: bool = False) -> Report:
    """Lint the Dockerfile, scan model files, and flag secrets that would reach the build context.

    ``vulns=True`` also matches the project's Python packages (venv dist-info or pinned
    requirements) against OSV.
    """
    root = Path(project_dir)
    if not root.is_dir():
        raise ScanError(f"{root} is not a directory", "pass a project folder or an image name")
    reports: list[Report] = []
    dockerfile = root / "Dockerfile"
    if dockerfile.is_file():
        reports.append(lint_dockerfile(dockerfile, hadolint=hadolint))
    ignore = DockerIgnore.for_context(root)
    findings: list[Finding] = []
    for path in _context_files(root):
        rel = path.relative_to(root).as_posix()
        if ignore.excluded(rel):
            continue
        if is_model_file(path):
            findings.extend(scan_model_file(path).findings)
        findings.extend(_context_secret(path, rel))
    reports.append(Report(str(root), tuple(findings)))
    if vulns:
        reports.append(scan_vulnerabilities(inventory_from_directory(root), target=str(root), osv_db=osv_db,
                                            offline=offline, max_db_age_days=max_db_age_days))
    return Report.combine(str(root), *reports)


def _context_secret(path: Path, rel: str) -> list[Finding]:
    head = b""
    try:
        if path.is_file() and path.stat().st_size <= 1 << 20:
            with path.open("rb") as fh:
                head = fh.read(4096)
    except OSError:
        return []
    verdict = classify_file("/" + rel, head)
    if verdict is None and rel == ".git/config":
        return [Finding("context/git-dir", "low", ".git is sent to the build context", rel,
                        "history and remotes end up in `COPY . .` layers", "add .git to .dockerignore")]
    if verdict is None:
        return []
    return [Finding("context/secret-file", verdict.severity, f"secret-looking file {rel} reaches the build context",
                    rel, verdict.reason, f"add {rel} to .dockerignore and pass it with --secret instead")]

