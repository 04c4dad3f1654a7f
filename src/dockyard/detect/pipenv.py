"""Pipenv projects: ``Pipfile.lock`` (exact versions, ``default`` group) or else ``Pipfile``.

Pipfile values become PEP 440: ``"*"`` -> any version, ``">=1.0"`` as written, ``"==1.2"`` as
written; a table's ``version``, ``extras`` and ``markers`` are kept; ``git``/``path``/``editable``
entries cannot be installed by name and are reported. ``[requires] python_version`` pins Python.
``dev-packages`` are development tools and are left out, as ``pipenv install --deploy`` does.

A Pipfile for a Python dockyard cannot build (``python_version = "3.6"``): Pipfile.lock pins
releases made for that Python (numpy 1.16 has no wheel for 3.10), so it is never installed on
another one. With a Pipfile beside it, the image is built on the supported Python nearest to the
one asked, from the Pipfile's own ``[packages]`` (resolved afresh), with a warning that says the
lock was not used; with only a lock, detection refuses and says how to re-lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement

from dockyard.compat.resolver import nearest_python
from dockyard.errors import DetectError

from ._files import Reason, load_toml, read_text, rel
from .python_version import DEFAULT_PYTHON_CANDIDATES, parse_minor
from .requirements import normalise_requirement


@dataclass(frozen=True)
class PipenvDeps:
    file: str
    requirements: tuple[str, ...]
    python: str | None  # "3.11"
    warnings: tuple[str, ...]
    locked: bool
    python_why: str | None = None  # set when ``python`` replaces an unsupported one the Pipfile asked for
    skipped_lock: str | None = None  # Pipfile.lock, read but not installed (made for that unsupported Python)


def read_pipenv(project_dir: Path, candidates: tuple[str, ...] = DEFAULT_PYTHON_CANDIDATES) -> PipenvDeps | None:
    lock, pipfile = project_dir / "Pipfile.lock", project_dir / "Pipfile"
    python = _pipfile_python(pipfile, project_dir) if pipfile.is_file() else None
    if lock.is_file():
        deps = _from_lock(lock, project_dir, python)
        asked = parse_minor(deps.python or "")
        if asked is None or asked in candidates:
            return deps
        if not pipfile.is_file():
            raise DetectError(
                f"{deps.file} pins releases for Python {asked}, which dockyard cannot build "
                f"(it builds {', '.join(candidates)}), and there is no Pipfile to install from instead",
                f"re-lock on a supported Python, e.g. `pipenv --python {nearest_python(asked, candidates)} lock`",
            )
        return _unsupported(_from_pipfile(pipfile, project_dir, None), asked, candidates, deps.file)
    if not pipfile.is_file():
        return None
    deps = _from_pipfile(pipfile, project_dir, python)
    asked = parse_minor(deps.python or "")
    return deps if asked is None or asked in candidates else _unsupported(deps, asked, candidates, None)


def _unsupported(deps: PipenvDeps, asked: str, candidates: tuple[str, ...], lock: str | None) -> PipenvDeps:
    """Build on the nearest supported Python from Pipfile's [packages], and say so loudly."""
    chosen = nearest_python(asked, candidates)
    pinned = [r for r in deps.requirements if "==" in r]
    warning = (f"{deps.file} asks for Python {asked}, which dockyard cannot build (it builds {', '.join(candidates)}): "
               f"building on Python {chosen}, the nearest, from {deps.file}'s [packages] resolved afresh for {chosen}")
    if lock:
        warning += (f"; {lock} pins releases made for Python {asked} and is NOT installed (to pin again, re-lock: "
                    f"`pipenv --python {chosen} lock`)")
    if pinned:
        warning += f"; {deps.file} itself pins {', '.join(pinned)}, which may have no wheel for Python {chosen}"
    why = f"{deps.file} asks for Python {asked}, which dockyard cannot build: {chosen} is the supported Python nearest to it"
    return PipenvDeps(deps.file, deps.requirements, chosen, (*deps.warnings, warning), False, why, lock)


def _pipfile_python(path: Path, project_dir: Path) -> str | None:
    requires = load_toml(path, project_dir).get("requires", {})
    value = requires.get("python_version") if isinstance(requires, dict) else None
    return str(value) if value else None


def _from_lock(path: Path, project_dir: Path, python: str | None) -> PipenvDeps:
    name = rel(path, project_dir)
    try:
        data = json.loads(read_text(path, project_dir))
    except json.JSONDecodeError as exc:
        return PipenvDeps(name, (), python, (f"{name} is not valid JSON ({exc.msg}); not used",), True)
    reqs, warnings = [], []
    default = data.get("default", {}) if isinstance(data, dict) else {}
    if python is None and isinstance(data, dict):
        requires = data.get("_meta", {}).get("requires", {})
        python = requires.get("python_version") if isinstance(requires, dict) else None
    for pkg, spec in sorted(default.items()) if isinstance(default, dict) else ():
        text, warning = _entry(pkg, spec, name)
        reqs += [text] if text else []
        warnings += [warning] if warning else []
    return PipenvDeps(name, tuple(reqs), python, tuple(warnings), True)


def _from_pipfile(path: Path, project_dir: Path, python: str | None) -> PipenvDeps:
    name = rel(path, project_dir)
    packages = load_toml(path, project_dir).get("packages", {})
    reqs, warnings = [], []
    for pkg, spec in packages.items() if isinstance(packages, dict) else ():
        text, warning = _entry(pkg, spec, name)
        reqs += [text] if text else []
        warnings += [warning] if warning else []
    return PipenvDeps(name, tuple(reqs), python, tuple(warnings), False)


def _entry(pkg: str, spec: Any, where: str) -> tuple[str | None, str | None]:
    version, extras, markers = (spec, [], None) if isinstance(spec, str) else ("*", [], None)
    if isinstance(spec, dict):
        if any(k in spec for k in ("git", "path", "file", "editable")):
            return None, f"{where}: {pkg} comes from {spec.get('git') or spec.get('path') or spec.get('file')}; " \
                         "not installable by name, left out (publish it, or pin it as 'NAME @ URL' in requirements.txt)"
        version, extras, markers = spec.get("version", "*"), spec.get("extras", []), spec.get("markers")
    text = pkg + (f"[{','.join(extras)}]" if extras else "") + ("" if version in ("*", "") else str(version))
    text += f"; {markers}" if markers else ""
    try:
        return normalise_requirement(text), None
    except InvalidRequirement:
        return None, f"{where}: {pkg} = {spec!r} is not a version dockyard can read; left out"


def reason(deps: PipenvDeps) -> Reason:
    what = "exact versions" if deps.locked else "requirements"
    skipped = f"; {deps.skipped_lock} not used: it pins releases for Python that dockyard cannot build" \
        if deps.skipped_lock else ""
    return Reason(f"{len(deps.requirements)} {what}", f"[default]/[packages] of {deps.file} (dev-packages left out){skipped}")
