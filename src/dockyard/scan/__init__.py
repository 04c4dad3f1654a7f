"""``dockyard scan``: Dockerfile lint, image audit, SBOM, OSV vulnerabilities and model files.

Entry points return a :class:`Report`; the CLI renders it (``report.render("table"|"json"|"sarif")``)
and gates on ``report.fails(fail_on)``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from dockyard.errors import ScanError
from dockyard.runtime.contract import MODEL_SUFFIXES, PICKLE_SUFFIXES
from dockyard.scan import external
from dockyard.scan.dockerignore import DockerIgnore
from dockyard.scan.findings import FAIL_ON_CHOICES, SEVERITIES, Finding, Report
from dockyard.scan.image import ImageFilesystem, audit_image, baked_model, read_image_tar, save_image
from dockyard.scan.lint import lint_dockerfile, lint_dockerfile_text
from dockyard.scan.models import ModelScanResult, is_model_file, scan_model_bytes, scan_model_file
from dockyard.scan.sbom import (
    Package,
    cyclonedx_json,
    inventory,
    inventory_from_directory,
    spdx_json,
    unpinned_requirements,
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
    "scan_models",
    "scan_path",
    "scan_target",
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
    tools = external.vulnerability_tools()
    unread = Report(name, not_checked=tuple(f"vulnerabilities in {u}" for u in unread_package_databases(fs)),
                    warnings=(f"external scanners on PATH that dockyard does not run yet: {', '.join(tools)}",)
                    if tools else ())
    combined = Report.combine(name, audit, vulns, unread, _baked_models(fs, name))
    return dataclasses.replace(combined, extras=(("packages", packages), ("filesystem", fs)))


def _baked_models(fs: ImageFilesystem, target: str) -> Report:
    """Judge the pickle-family files baked into the image (weights dir and app code)."""
    findings: list[Finding] = []
    not_checked: list[str] = []
    count = 0
    for path, entry in sorted(fs.files.items()):
        if entry.kind != "file" or not baked_model(path):
            continue
        count += 1
        if entry.content is None:
            not_checked.append(f"model file {path}: larger than the scanner reads from an image")
            continue
        result = scan_model_bytes(entry.content, path)
        findings.extend(result.findings)
        if result.status == "unscannable":
            not_checked.append(f"model file {path}: {result.findings[0].detail}")
    if not count:
        return Report(target)
    return Report(target, tuple(findings), checks=(f"model files in the image: {count} (pickle allow-list)",),
                  not_checked=tuple(not_checked))


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


def scan_models(paths: Iterable[Path], *, target: str | None = None, second_opinion: bool = True) -> Report:
    """Scan model files: each path is a file (scanned whatever its suffix) or a folder (every model
    file under it). Unscannable files are findings *and* "not checked": they fail any gate."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(p for p in _context_files(path) if p.is_file() and is_model_file(p))
        elif path.is_file():
            files.append(path)
        else:
            raise ScanError(f"{path} does not exist", "pass a model file, a folder of models, a project or an image")
    return _model_report(files, target or ", ".join(str(p) for p in paths), second_opinion=second_opinion)


def _model_report(files: list[Path], target: str, *, second_opinion: bool) -> Report:
    findings: list[Finding] = []
    not_checked: list[str] = []
    judged: list[tuple[Path, str]] = []
    for path in files:
        result = scan_model_file(path)
        findings.extend(result.findings)
        if result.status == "unscannable":
            not_checked.append(f"model file {path}: {result.findings[0].detail}")
        elif path.suffix.lower() in PICKLE_SUFFIXES or result.imports:
            judged.append((path, result.status))
    own = Report(target, tuple(findings), checks=(f"model files: {len(files)} (pickle allow-list)",),
                 not_checked=tuple(not_checked))
    if not second_opinion or not judged:
        return own
    return Report.combine(target, own, external.second_opinion(judged, target))


def scan_path(project_dir: Path, *, osv_db: Path | None = None, offline: bool = False,
              max_db_age_days: int = 30, hadolint: bool | None = None, vulns: bool = False,
              second_opinion: bool = True) -> Report:
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
    models: list[Path] = []
    count = 0
    for path in _context_files(root):
        rel = path.relative_to(root).as_posix()
        if ignore.excluded(rel):
            continue
        count += 1
        if is_model_file(path):
            models.append(path)
        findings.extend(_context_secret(path, rel))
    reports.append(Report(str(root), tuple(findings), checks=(f"build context: {count} files (secrets)",)))
    if models:
        reports.append(_model_report(models, str(root), second_opinion=second_opinion))
    if vulns:
        reports.append(scan_vulnerabilities(inventory_from_directory(root), target=str(root), osv_db=osv_db,
                                            offline=offline, max_db_age_days=max_db_age_days))
        loose = unpinned_requirements(root)
        if loose:  # no exact version: nothing to match, so not checked (lock them: dockyard lock)
            reports.append(Report(str(root), not_checked=(
                f"vulnerabilities of {len(loose)} unpinned requirement(s) ({', '.join(loose[:5])}): "
                "pin or lock them (dockyard lock) so versions can be matched",)))
    return Report.combine(str(root), *reports)


def scan_target(target: str, *, osv_db: Path | None = None, offline: bool = False, max_db_age_days: int = 30,
                vulns: bool = False) -> Report:
    """What ``dockyard scan TARGET`` scans: a project folder, a model file, a ``docker save``
    archive, or (anything else) a local image reference."""
    path = Path(target)
    if path.is_dir():
        return scan_path(path, osv_db=osv_db, offline=offline, max_db_age_days=max_db_age_days, vulns=vulns)
    if path.is_file():
        if _is_image_archive(path):
            return scan_image_archive(path, osv_db=osv_db, offline=offline, max_db_age_days=max_db_age_days)
        return scan_models([path], target=target)
    if is_path_like(target):
        raise ScanError(f"{target} does not exist",
                        "pass an existing model file, folder, `docker save` archive, or a local image name")
    return scan_image(target, osv_db=osv_db, offline=offline, max_db_age_days=max_db_age_days)


def is_path_like(target: str) -> bool:
    """A target that names a file (a model suffix, a .tar, an explicit path), never an image."""
    suffix = Path(target).suffix.lower()
    return suffix in MODEL_SUFFIXES or suffix == ".tar" or target.startswith((".", "/", "~"))


def _is_image_archive(path: Path) -> bool:
    import tarfile

    if path.suffix.lower() not in {".tar", ".gz", ".tgz"}:
        return False
    try:
        with tarfile.open(path, "r:*") as tar:
            names = set(tar.getnames()[:64])
    except (OSError, tarfile.TarError):
        return False
    return "manifest.json" in names or "index.json" in names


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

