"""Poetry projects: ``[tool.poetry.dependencies]`` in pyproject.toml, pinned by ``poetry.lock``.

Poetry's constraints become PEP 440: ``^1.2.3`` -> ``>=1.2.3,<2.0.0`` (``^0.2.3`` -> ``<0.3.0``),
``~1.2.3`` -> ``>=1.2.3,<1.3.0``, ``1.2.3`` -> ``==1.2.3``, ``*`` -> any; PEP 440 operators stay
as written. ``python`` becomes the requires-python range. Optional and git/path dependencies are
left out and reported. With ``poetry.lock``, its main-group packages install at their locked
versions (every one of them, as ``poetry install --only main`` would).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement

from ._files import Reason, load_toml, rel
from .requirements import normalise_requirement

_CARET = re.compile(r"^\^\s*(\d+(?:\.\d+)*)$")
_TILDE = re.compile(r"^~(?!=)\s*(\d+(?:\.\d+)*)$")
_BARE = re.compile(r"^\d+(?:\.\d+)*(?:\.\*)?$")


@dataclass(frozen=True)
class PoetryDeps:
    file: str
    requirements: tuple[str, ...]
    python: str | None  # PEP 440 range, e.g. ">=3.10,<4.0"
    locked: bool
    warnings: tuple[str, ...]


def read_poetry(project_dir: Path) -> PoetryDeps | None:
    path = project_dir / "pyproject.toml"
    if not path.is_file():
        return None
    tool = load_toml(path, project_dir).get("tool", {})
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    deps = poetry.get("dependencies") if isinstance(poetry, dict) else None
    if not isinstance(deps, dict):
        return None
    name = rel(path, project_dir)
    python = to_pep440(str(deps["python"])) if isinstance(deps.get("python"), str) else None
    reqs, warnings = [], []
    for pkg, spec in deps.items():
        if pkg.lower() == "python":
            continue
        text, warning = _entry(pkg, spec, name)
        reqs += [text] if text else []
        warnings += [warning] if warning else []
    lock = project_dir / "poetry.lock"
    if lock.is_file():
        locked = _locked(lock, project_dir)
        if locked:
            return PoetryDeps(rel(lock, project_dir), locked, python, True, tuple(warnings))
    return PoetryDeps(name, tuple(reqs), python, False, tuple(warnings))


def to_pep440(constraint: str) -> str:
    """One Poetry constraint (possibly comma- or space-separated parts) as a PEP 440 specifier."""
    parts = [p.strip() for p in re.split(r"\s*,\s*|\s+(?=[<>=!~^])", constraint.strip()) if p.strip()]
    out = []
    for part in parts:
        if part in ("*", ""):
            continue
        if m := _CARET.match(part):
            out.append(_caret(m.group(1)))
        elif m := _TILDE.match(part):
            out.append(_tilde(m.group(1)))
        elif _BARE.match(part):
            out.append(f"=={part}")
        else:
            out.append(part)
    return ",".join(out)


def _caret(version: str) -> str:
    nums = [int(n) for n in version.split(".")]
    first = next((i for i, n in enumerate(nums) if n != 0), len(nums) - 1)
    upper = nums[: first + 1]
    upper[-1] += 1
    return f">={version},<{'.'.join(map(str, upper + [0] * (len(nums) - len(upper))))}"


def _tilde(version: str) -> str:
    nums = [int(n) for n in version.split(".")]
    upper = [nums[0] + 1] if len(nums) == 1 else [nums[0], nums[1] + 1]
    return f">={version},<{'.'.join(map(str, upper + [0] * (max(len(nums), 2) - len(upper))))}"


def _entry(pkg: str, spec: Any, where: str) -> tuple[str | None, str | None]:
    extras: list[str] = []
    markers = None
    if isinstance(spec, list):
        return None, f"{where}: {pkg} has several constraints (one per platform); left out, pin it in requirements.txt"
    if isinstance(spec, dict):
        if spec.get("optional"):
            return None, None
        if any(k in spec for k in ("git", "path", "url")):
            return None, f"{where}: {pkg} comes from {spec.get('git') or spec.get('path') or spec.get('url')}; left out"
        extras = list(spec.get("extras", []))
        markers = spec.get("markers")  # a per-dependency `python = "..."` limit is not carried over
        spec = spec.get("version", "*")
    text = pkg + (f"[{','.join(extras)}]" if extras else "") + to_pep440(str(spec)) + (f"; {markers}" if markers else "")
    try:
        return normalise_requirement(text), None
    except InvalidRequirement:
        return None, f"{where}: {pkg} = {spec!r} is not a constraint dockyard can read; left out"


def _locked(path: Path, project_dir: Path) -> tuple[str, ...]:
    out = []
    for pkg in load_toml(path, project_dir).get("package", []):
        if not isinstance(pkg, dict) or "name" not in pkg or "version" not in pkg:
            continue
        groups = pkg.get("groups") or ([pkg["category"]] if "category" in pkg else ["main"])
        if "main" in groups and not pkg.get("optional", False):
            out.append(f"{pkg['name']}=={pkg['version']}")
    return tuple(out)


def reason(deps: PoetryDeps) -> Reason:
    if deps.locked:
        return Reason(f"{len(deps.requirements)} locked versions", f"main group of {deps.file}")
    return Reason(f"{len(deps.requirements)} requirements", f"[tool.poetry.dependencies] in {deps.file}, "
                                                            "constraints (^, ~) written as PEP 440")
