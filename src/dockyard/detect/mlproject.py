"""MLflow ``MLproject`` files: entry points, and the environment file they name.

``entry_points`` commands are rendered with parameter defaults substituted (``{alpha}`` -> its
default, shell-quoted as MLflow does), so ``main`` can become dockyard's train command. The
``python_env`` (MLflow's python_env.yaml) and ``conda_env`` references are followed: the project
declares there how it runs, so detection prefers them over guessing from file names.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dockyard.errors import DetectError

from ._files import Reason, load_yaml_mapping, read_text, rel, yaml_sequence_lines
from .requirements import RequirementsResult, parse_requirement_lines

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)\}")


@dataclass(frozen=True)
class MLProject:
    file: str
    name: str | None
    entry_points: Mapping[str, str]  # name -> rendered command
    python_env: str | None  # project-relative path of the referenced python_env.yaml
    conda_env: str | None  # project-relative path of the referenced conda file
    docker_image: str | None
    warnings: tuple[str, ...]
    reasons: tuple[Reason, ...] = field(default=())


@dataclass(frozen=True)
class PythonEnv:
    """MLflow ``python_env.yaml``: a Python version plus pip requirement lines."""

    file: str
    python: str | None
    requirements: RequirementsResult


def find_mlproject(project_dir: Path) -> Path | None:
    """MLflow accepts any capitalisation of ``MLproject``."""
    for path in sorted(project_dir.iterdir()) if project_dir.is_dir() else ():
        if path.is_file() and path.name.lower() == "mlproject":
            return path
    return None


def read_mlproject(path: Path, project_dir: Path) -> MLProject:
    name = rel(path, project_dir)
    data = load_yaml_mapping(path, project_dir)
    warnings: list[str] = []
    raw_entries = data.get("entry_points") or {}
    if not isinstance(raw_entries, dict):
        raise DetectError(f"{name}: entry_points must be a mapping", "write 'entry_points: {main: {command: ...}}'")
    entries: dict[str, str] = {}
    for entry, spec in raw_entries.items():
        command, missing = _render_entry(str(entry), spec, name)
        entries[str(entry)] = command
        if missing:
            warnings.append(
                f"{name}: entry point '{entry}' parameters {', '.join(missing)} have no default; "
                "pass them when training"
            )
    python_env = _referenced(data, "python_env", path, project_dir)
    conda_env = _referenced(data, "conda_env", path, project_dir)
    docker = data.get("docker_env")
    image = docker.get("image") if isinstance(docker, dict) else None
    project_name = data.get("name")
    return MLProject(
        file=name,
        name=str(project_name) if project_name is not None else None,
        entry_points=MappingProxyType(entries),
        python_env=python_env,
        conda_env=conda_env,
        docker_image=str(image) if image else None,
        warnings=tuple(warnings),
        reasons=tuple(Reason(f"entry point '{k}': {v}", f"from {name}") for k, v in entries.items()),
    )


def _render_entry(entry: str, spec: Any, name: str) -> tuple[str, list[str]]:
    if not isinstance(spec, dict) or not isinstance(spec.get("command"), str):
        raise DetectError(
            f"{name}: entry point '{entry}' has no 'command'",
            f"add 'command: python ...' under entry_points.{entry}",
        )
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise DetectError(
            f"{name}: entry_points.{entry}.parameters must be a mapping", "write 'alpha: {type: float, default: 0.1}'"
        )
    defaults: dict[str, str] = {}
    missing: list[str] = []
    for param, pspec in params.items():
        # Long form {type, default} or the short form 'alpha: float' (no default).
        if isinstance(pspec, dict) and "default" in pspec:
            defaults[str(param)] = shlex.quote(str(pspec["default"]))
        else:
            missing.append(str(param))

    def substitute(match: re.Match[str]) -> str:
        return defaults.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(substitute, " ".join(spec["command"].split())), missing


def _referenced(data: dict[str, Any], key: str, mlproject: Path, project_dir: Path) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    target = mlproject.parent / str(value)
    if not target.is_file():
        raise DetectError(
            f"{rel(mlproject, project_dir)}: {key} names {value}, which does not exist",
            f"create {value} or remove '{key}' from {mlproject.name}",
        )
    return rel(target, project_dir)


def read_python_env(path: Path, project_dir: Path) -> PythonEnv:
    """Read MLflow's python_env.yaml (``python``, ``build_dependencies``, ``dependencies``)."""
    name = rel(path, project_dir)
    data = load_yaml_mapping(path, project_dir)
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise DetectError(f"{name}: 'dependencies' must be a list", f"write each requirement as '- name' in {name}")
    lines = yaml_sequence_lines(read_text(path, project_dir), "dependencies")
    numbered = [(lines[i] if i < len(lines) else 0, str(v)) for i, v in enumerate(deps)]
    python = data.get("python")
    if isinstance(python, float):  # YAML reads 3.10 as the number 3.1
        raise DetectError(
            f"{name}: python: {python} is a number, so 3.10 would read as 3.1",
            f'quote it in {name}: python: "3.10"',
        )
    return PythonEnv(
        file=name,
        python=str(python) if python is not None else None,
        requirements=parse_requirement_lines(numbered, origin=name, base_dir=path.parent, project_dir=project_dir),
    )
