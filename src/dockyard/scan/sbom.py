"""SBOM from an image's final filesystem: Python ``*.dist-info`` plus the Debian package list.

Output is CycloneDX 1.6 JSON (built and schema-validated offline with cyclonedx-python-lib) and
SPDX 2.3 JSON. The same :class:`Package` list feeds the OSV vulnerability matcher.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from dockyard.errors import ScanError
from dockyard.scan.image import ImageFilesystem

TOOL_NAME = "dockyard"
TOOL_VERSION = "0.1.0"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    ecosystem: str  # OSV ecosystem: "PyPI", "Debian:12", "Debian"
    purl: str
    license: str = ""
    location: str = ""
    # Debian advisories are filed against the *source* package and its version.
    source_name: str = ""
    source_version: str = ""


def normalize_pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- Python ---------------------------------------------------------------------------------


def parse_python_metadata(text: str, location: str = "") -> Package | None:
    msg = HeaderParser().parsestr(text)
    name, version = msg.get("Name"), msg.get("Version")
    if not name or not version:
        return None
    purl = PackageURL(type="pypi", name=normalize_pypi_name(name), version=version).to_string()
    return Package(name.strip(), version.strip(), "PyPI", purl, _python_license(msg), location)


def _python_license(msg: object) -> str:
    get = msg.get  # type: ignore[attr-defined]
    expression = get("License-Expression")
    if expression:
        return str(expression).strip()
    declared = str(get("License") or "").strip()
    if declared and "\n" not in declared and len(declared) <= 80 and declared.upper() != "UNKNOWN":
        return declared
    for classifier in msg.get_all("Classifier") or []:  # type: ignore[attr-defined]
        if str(classifier).startswith("License ::"):
            return str(classifier).split("::")[-1].strip()
    return ""


def python_packages(fs: ImageFilesystem) -> list[Package]:
    found = []
    for path, entry in sorted(fs.files.items()):
        if entry.content is not None and path.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO")):
            pkg = parse_python_metadata(entry.content.decode("utf-8", "replace"), path)
            if pkg:
                found.append(pkg)
    return found


# -- Debian ---------------------------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _paragraphs(text: str) -> Iterable[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in {" ", "\t"} and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def parse_dpkg_status(text: str, *, distro_id: str = "debian", distro_version: str = "",
                      location: str = "/var/lib/dpkg/status") -> list[Package]:
    ecosystem = distro_id.capitalize() + (f":{distro_version}" if distro_version else "")
    packages = []
    for para in _paragraphs(text):
        status = para.get("Status", "install ok installed")
        if not status.endswith(" installed") or "Package" not in para or "Version" not in para:
            continue
        name, version = para["Package"], para["Version"]
        source, _, source_version = para.get("Source", name).partition(" ")
        qualifiers = {"arch": para["Architecture"]} if para.get("Architecture") else {}
        if distro_version:
            qualifiers["distro"] = f"{distro_id}-{distro_version}"
        purl = PackageURL(type="deb", namespace=distro_id, name=name, version=version,
                          qualifiers=qualifiers).to_string()
        packages.append(Package(name, version, ecosystem, purl, "", location, source,
                                source_version.strip("()") or version))
    return packages


def debian_packages(fs: ImageFilesystem) -> list[Package]:
    release = parse_os_release(((fs.read("/etc/os-release") or fs.read("/usr/lib/os-release")) or b"").decode())
    distro_id = release.get("ID", "debian")
    version = release.get("VERSION_ID", "")
    found = []
    for path, entry in sorted(fs.files.items()):
        if entry.content is not None and (path == "/var/lib/dpkg/status" or path.startswith("/var/lib/dpkg/status.d/")):
            found.extend(parse_dpkg_status(entry.content.decode("utf-8", "replace"), distro_id=distro_id,
                                           distro_version=version, location=path))
    return found


def inventory(fs: ImageFilesystem) -> tuple[Package, ...]:
    """Every package in the image, deduplicated by (ecosystem, name, version)."""
    return _dedupe([*python_packages(fs), *debian_packages(fs)])


# Package databases dockyard cannot read yet: their packages are missing from the inventory, so
# a vulnerability scan of the image must say so instead of passing.
_UNREAD_DATABASES = (
    ("/lib/apk/db/installed", "Alpine apk"),
    ("/var/lib/rpm/", "RPM"),
    ("/usr/lib/sysimage/rpm/", "RPM"),
    ("/conda-meta/", "conda"),
)


def unread_package_databases(fs: ImageFilesystem) -> tuple[str, ...]:
    """What the inventory leaves out: one line per package database found but not read."""
    found: dict[str, str] = {}
    for path in fs.files:
        for marker, kind in _UNREAD_DATABASES:
            hit = path == marker or (marker.endswith("/") and (marker in path if marker == "/conda-meta/"
                                                                 else path.startswith(marker)))
            if hit and kind not in found:
                found[kind] = path if not marker.endswith("/") else path[: path.index(marker) + len(marker) - 1]
    return tuple(f"{kind} packages (database at {where}): dockyard does not read this package database"
                 for kind, where in sorted(found.items()))


def _dedupe(packages: Iterable[Package]) -> tuple[Package, ...]:
    seen: dict[tuple[str, str, str], Package] = {}
    for pkg in packages:
        key = (pkg.ecosystem, normalize_pypi_name(pkg.name) if pkg.ecosystem == "PyPI" else pkg.name, pkg.version)
        seen.setdefault(key, pkg)
    return tuple(seen.values())


def inventory_from_directory(root: Path) -> tuple[Package, ...]:
    """Python packages of a project: installed ``*.dist-info`` under it (a venv), else pinned requirements."""
    found = [pkg for meta in sorted(root.rglob("*.dist-info/METADATA"))
             if (pkg := parse_python_metadata(meta.read_text("utf-8", "replace"), str(meta.relative_to(root))))]
    if found:
        return _dedupe(found)
    for req in ("requirements.lock", "requirements.txt"):
        if (root / req).is_file():
            return _dedupe(_pinned_requirements((root / req).read_text("utf-8", "replace"), req))
    return ()


def unpinned_requirements(root: Path) -> tuple[str, ...]:
    """Requirement lines of a project without dist-info that name no exact version (not matchable)."""
    if any(root.rglob("*.dist-info/METADATA")):
        return ()
    for req in ("requirements.lock", "requirements.txt"):
        if (root / req).is_file():
            lines = [ln.split("#")[0].strip() for ln in (root / req).read_text("utf-8", "replace").splitlines()]
            reqs = [ln for ln in lines if ln and not ln.startswith(("-", "--"))]
            return tuple(ln for ln in reqs if not _pinned_requirements(ln, req))
    return ()


def _pinned_requirements(text: str, location: str) -> list[Package]:
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*([^\s;#\\]+)", line)
        if m:
            name, version = m.groups()
            purl = PackageURL(type="pypi", name=normalize_pypi_name(name), version=version).to_string()
            out.append(Package(name, version, "PyPI", purl, "", location))
    return out


# -- CycloneDX --------------------------------------------------------------------------------


def _license_factory() -> Any:
    try:
        from cyclonedx.contrib.license.factories import LicenseFactory
    except ImportError:  # cyclonedx-python-lib < 11
        from cyclonedx.factory.license import LicenseFactory
    return LicenseFactory()


def cyclonedx_json(packages: Iterable[Package], subject: str) -> str:
    """CycloneDX 1.6 JSON for ``packages``; raises ScanError if it fails the bundled schema."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    factory = _license_factory()
    bom = Bom()
    root = Component(type=ComponentType.CONTAINER, name=subject, bom_ref=f"subject:{subject}")
    bom.metadata.component = root
    components = []
    for pkg in sorted(packages, key=lambda p: p.purl):
        components.append(Component(
            type=ComponentType.LIBRARY, name=pkg.name, version=pkg.version,
            purl=PackageURL.from_string(pkg.purl), bom_ref=pkg.purl,
            licenses=[factory.make_from_string(pkg.license)] if pkg.license else [],
            properties=[Property(name="dockyard:location", value=pkg.location)] if pkg.location else [],
        ))
    for component in components:
        bom.components.add(component)
    # Everything found in the image is a direct part of it (we do not know the real graph).
    bom.register_dependency(root, components)
    text: str = JsonV1Dot6(bom).output_as_string(indent=2)
    validate_cyclonedx(text)
    return text


def validate_cyclonedx(text: str) -> None:
    """Validate against the CycloneDX 1.6 JSON schema shipped inside cyclonedx-python-lib (offline)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise ScanError(f"generated CycloneDX SBOM is invalid: {error}",
                        "this is a bug in dockyard — please report it with the image name")


# -- SPDX 2.3 ---------------------------------------------------------------------------------


def _spdx_license(value: str) -> str:
    if not value:
        return "NOASSERTION"
    from cyclonedx.model.license import LicenseExpression

    made = _license_factory().make_from_string(value)
    if isinstance(made, LicenseExpression):
        return str(made.value)
    return str(made.id) if getattr(made, "id", None) else "NOASSERTION"


def spdx_json(packages: Iterable[Package], subject: str, *, created: datetime | None = None) -> str:
    when = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pkgs, rels = [], []
    for i, pkg in enumerate(sorted(packages, key=lambda p: p.purl), start=1):
        spdx_id = f"SPDXRef-Package-{i}"
        pkgs.append({
            "SPDXID": spdx_id,
            "name": pkg.name,
            "versionInfo": pkg.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": _spdx_license(pkg.license),
            "copyrightText": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": pkg.purl}],
        })
        rels.append({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                     "relatedSpdxElement": spdx_id})
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject,
        "documentNamespace": f"https://dockyard.invalid/spdx/{re.sub(r'[^A-Za-z0-9.-]+', '-', subject)}-{uuid.uuid4()}",
        "creationInfo": {"created": when, "creators": [f"Tool: {TOOL_NAME}-{TOOL_VERSION}"]},
        "packages": pkgs,
        "relationships": rels,
    }
    return json.dumps(doc, indent=2) + "\n"
