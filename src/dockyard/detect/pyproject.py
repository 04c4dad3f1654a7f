"""``pyproject.toml``: PEP 621 ``[project].dependencies`` and ``requires-python``.

Only the static PEP 621 table is read here; Poetry's ``[tool.poetry.dependencies]`` is read by
``poetry.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement

from dockyard.errors import DetectError

from ._files import Reason, load_toml, rel
from .requirements import normalise_requirement


@dataclass(frozen=True)
class PyprojectInfo:
    """What a pyproject.toml says about dependencies and Python."""

    file: str
    name: str | None
    dependencies: tuple[str, ...]
    declares_dependencies: bool  # a static [project].dependencies list exists (maybe empty)
    requires_python: str | None
    warnings: tuple[str, ...]
    reasons: tuple[Reason, ...]


def read_pyproject(path: Path, project_dir: Path) -> PyprojectInfo:
    """Read ``[project]`` from a pyproject.toml; invalid dependency strings are errors."""
    name = rel(path, project_dir)
    data = load_toml(path, project_dir)
    project = data.get("project", {})
    if not isinstance(project, dict):
        raise DetectError(f"{name}: [project] must be a table", f"fix the [project] section of {name}")
    warnings: list[str] = []
    reasons: list[Reason] = []

    raw_deps = project.get("dependencies")
    dependencies = _dependencies(raw_deps, name) if raw_deps is not None else ()
    if raw_deps is None:
        if "dependencies" in project.get("dynamic", []):
            warnings.append(
                f"{name}: [project].dependencies is dynamic, so dockyard cannot read it; "
                "list them statically or add a requirements.txt"
            )

    requires_python = project.get("requires-python")
    if requires_python is not None and not isinstance(requires_python, str):
        raise DetectError(
            f"{name}: [project].requires-python must be a string, found {type(requires_python).__name__}",
            'write it like requires-python = ">=3.10"',
        )
    project_name = project.get("name")
    if raw_deps is not None:
        reasons.append(Reason(f"{len(dependencies)} dependencies", f"from {name} [project].dependencies"))
    return PyprojectInfo(
        file=name,
        name=project_name if isinstance(project_name, str) else None,
        dependencies=dependencies,
        declares_dependencies=raw_deps is not None,
        requires_python=requires_python,
        warnings=tuple(warnings),
        reasons=tuple(reasons),
    )


def _dependencies(raw: Any, name: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise DetectError(
            f"{name}: [project].dependencies must be a list of strings",
            'write it like dependencies = ["numpy>=1.26"]',
        )
    out: list[str] = []
    for index, item in enumerate(raw):
        try:
            if not isinstance(item, str):
                raise InvalidRequirement(f"expected a string, found {type(item).__name__}")
            out.append(normalise_requirement(item))
        except InvalidRequirement as exc:
            raise DetectError(
                f"{name}: [project].dependencies[{index}] is not a valid requirement: {item!r} ({exc})",
                "write it as a PEP 508 requirement such as 'numpy>=1.26'",
            ) from None
    return tuple(out)
