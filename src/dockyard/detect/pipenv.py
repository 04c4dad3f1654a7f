"""Pipenv projects: ``Pipfile.lock`` (exact versions, ``default`` group) or else ``Pipfile``.

Pipfile values become PEP 440: ``"*"`` -> any version, ``">=1.0"`` as written, ``"==1.2"`` as
written; a table's ``version``, ``extras`` and ``markers`` are kept; ``git``/``path``/``editable``
entries cannot be installed by name and are reported. ``[requires] python_version`` pins Python.
``dev-packages`` are development tools and are left out, as ``pipenv install --deploy`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement

from ._files import Reason, load_toml, read_text, rel
from .requirements import normalise_requirement


@dataclass(frozen=True)
class PipenvDeps:
    file: str
    requirements: tuple[str, ...]
    python: str | None  # "3.11"
    warnings: tuple[str, ...]
    locked: bool


def read_pipenv(project_dir: Path) -> PipenvDeps | None:
    lock, pipfile = project_dir / "Pipfile.lock", project_dir / "Pipfile"
    python = _pipfile_python(pipfile, project_dir) if pipfile.is_file() else None
    if lock.is_file():
        return _from_lock(lock, project_dir, python)
    return _from_pipfile(pipfile, project_dir, python) if pipfile.is_file() else None


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
    return Reason(f"{len(deps.requirements)} {what}", f"[default]/[packages] of {deps.file} (dev-packages left out)")
