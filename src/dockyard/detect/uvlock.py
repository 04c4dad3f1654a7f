"""``uv.lock``: the most precise dependency source, installed with ``uv sync --frozen``.

The lock is used as-is by the build (``uv export --frozen`` / ``uv sync --frozen``); here we only
list what it will install, for ``plan`` and framework detection. The list is the runtime closure:
walk from the project's own ``dependencies`` (not its dev groups), following requested extras, so
pytest in a dev group does not count as something the image installs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from dockyard.errors import DetectError

from ._files import Reason, load_toml, rel

_LOCAL_SOURCES = ("virtual", "editable", "directory", "path")


@dataclass(frozen=True)
class UvLock:
    file: str
    packages: tuple[tuple[str, str], ...]  # (name, version) of the runtime closure, sorted
    requirements: tuple[str, ...]  # "name==version"
    requires_python: str | None
    warnings: tuple[str, ...]
    reasons: tuple[Reason, ...]


def read_uv_lock(path: Path, project_dir: Path) -> UvLock:
    """List the packages a frozen install of ``uv.lock`` brings in."""
    name = rel(path, project_dir)
    data = load_toml(path, project_dir)
    raw = data.get("package", [])
    if not isinstance(raw, list) or not all(isinstance(p, dict) and "name" in p for p in raw):
        raise DetectError(
            f"{name}: [[package]] entries are missing or malformed",
            "regenerate the lock with 'uv lock'",
        )
    packages = [_Package.of(p) for p in raw]
    roots = [p for p in packages if p.source_kind in ("virtual", "editable") and p.source_path == "."]
    warnings: list[str] = []
    if not (path.parent / "pyproject.toml").is_file():
        warnings.append(f"{name} has no pyproject.toml beside it; 'uv sync --frozen' needs both")
    if roots:
        closure = _closure(roots, packages)
        why = f"from {name}: runtime dependencies of {', '.join(r.name for r in roots)} (dev groups excluded)"
    else:
        closure = packages
        why = f"from {name}: every locked package (no project entry with source '.')"
    installable = sorted({(p.name, p.version) for p in closure if p.source_kind not in _LOCAL_SOURCES and p.version})
    requires_python = data.get("requires-python")
    return UvLock(
        file=name,
        packages=tuple(installable),
        requirements=tuple(f"{n}=={v}" for n, v in installable),
        requires_python=requires_python if isinstance(requires_python, str) else None,
        warnings=tuple(warnings),
        reasons=(Reason(f"{len(installable)} locked packages", why),),
    )


@dataclass(frozen=True)
class _Package:
    name: str
    version: str
    source_kind: str
    source_path: str
    dependencies: tuple[dict[str, Any], ...]
    optional: dict[str, tuple[dict[str, Any], ...]]

    @classmethod
    def of(cls, raw: dict[str, Any]) -> _Package:
        source = raw.get("source", {})
        kind, where = next(iter(source.items()), ("", "")) if isinstance(source, dict) else ("", "")
        optional = raw.get("optional-dependencies", {})
        return cls(
            name=canonicalize_name(str(raw["name"])),
            version=str(raw.get("version", "")),
            source_kind=str(kind),
            source_path=str(where),
            dependencies=tuple(d for d in raw.get("dependencies", []) if isinstance(d, dict)),
            optional={str(k): tuple(v) for k, v in optional.items()} if isinstance(optional, dict) else {},
        )


def _closure(roots: list[_Package], packages: list[_Package]) -> list[_Package]:
    by_name: dict[str, list[_Package]] = {}
    for pkg in packages:
        by_name.setdefault(pkg.name, []).append(pkg)
    seen: dict[tuple[str, str], _Package] = {}
    queue: deque[tuple[_Package, tuple[str, ...]]] = deque((r, ()) for r in roots)
    expanded: set[tuple[str, str, tuple[str, ...]]] = set()
    while queue:
        pkg, extras = queue.popleft()
        key = (pkg.name, pkg.version, extras)
        if key in expanded:
            continue
        expanded.add(key)
        seen[(pkg.name, pkg.version)] = pkg
        edges = list(pkg.dependencies)
        for extra in extras:
            edges += pkg.optional.get(extra, ())
        for dep in edges:
            for target in _targets(dep, by_name):
                queue.append((target, tuple(sorted(dep.get("extra", [])))))
    return list(seen.values())


def _targets(dep: dict[str, Any], by_name: dict[str, list[_Package]]) -> list[_Package]:
    # A resolution fork locks several versions of one name; the edge then names its version.
    candidates = by_name.get(canonicalize_name(str(dep.get("name", ""))), [])
    if "version" in dep:
        candidates = [c for c in candidates if c.version == str(dep["version"])]
    return candidates
