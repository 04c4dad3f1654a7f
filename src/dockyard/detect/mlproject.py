"""MLflow ``MLproject`` files: entry points with their parameters, and the environment file they name.

Entry point commands stay templates (``python train.py {alpha}``): ``main`` becomes dockyard's
train command as written, and every run renders it (``render_command``) from the declared
parameters (type-checked, defaults filled in, values shell-quoted as MLflow does) and the run's
``--param`` values, so what the record says ran is what ran. The ``python_env`` (MLflow's
python_env.yaml) and ``conda_env`` references are followed: the project declares there how it
runs, so detection prefers them over guessing from file names.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dockyard.errors import DetectError, UsageError

from ._files import Reason, load_yaml_mapping, read_text, rel, yaml_sequence_lines
from .requirements import RequirementsResult, parse_requirement_lines

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)\}")


@dataclass(frozen=True)
class Param:
    """One declared parameter of an entry point (MLflow types: float, int, string, path, uri)."""

    name: str
    type: str
    default: str | None  # None: the run must give it

    def describe(self) -> str:
        return f"{self.name} ({self.type}" + (f", default {self.default})" if self.default is not None else ", required)")


@dataclass(frozen=True)
class MLProject:
    file: str
    name: str | None
    entry_points: Mapping[str, str]  # name -> command template ({alpha} placeholders kept)
    python_env: str | None  # project-relative path of the referenced python_env.yaml
    conda_env: str | None  # project-relative path of the referenced conda file
    docker_image: str | None
    warnings: tuple[str, ...]
    reasons: tuple[Reason, ...] = field(default=())
    parameters: Mapping[str, Mapping[str, Param]] = field(default_factory=dict)  # entry -> name -> Param


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
    parameters: dict[str, Mapping[str, Param]] = {}
    for entry, spec in raw_entries.items():
        command, params = _read_entry(str(entry), spec, name)
        entries[str(entry)] = command
        parameters[str(entry)] = MappingProxyType(params)
        missing = [p.name for p in params.values() if p.default is None]
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
        reasons=tuple(Reason(f"entry point '{k}': {v}", f"from {name}" + _params_note(parameters[k]))
                      for k, v in entries.items()),
        parameters=MappingProxyType(parameters),
    )


def _params_note(params: Mapping[str, Param]) -> str:
    if not params:
        return ""
    return "; parameters " + ", ".join(p.describe() for p in params.values()) + " (train --param NAME=VALUE)"


_TYPES = ("float", "int", "integer", "string", "str", "path", "uri")


def _read_entry(entry: str, spec: Any, name: str) -> tuple[str, dict[str, Param]]:
    if not isinstance(spec, dict) or not isinstance(spec.get("command"), str):
        raise DetectError(
            f"{name}: entry point '{entry}' has no 'command'",
            f"add 'command: python ...' under entry_points.{entry}",
        )
    raw = spec.get("parameters") or {}
    if not isinstance(raw, dict):
        raise DetectError(
            f"{name}: entry_points.{entry}.parameters must be a mapping", "write 'alpha: {type: float, default: 0.1}'"
        )
    params: dict[str, Param] = {}
    for param, pspec in raw.items():
        # Long form {type, default} or the short form 'alpha: float' (no default).
        kind = str((pspec.get("type") if isinstance(pspec, dict) else pspec) or "string").lower()
        if kind not in _TYPES:
            raise DetectError(
                f"{name}: entry_points.{entry}.parameters.{param}: unknown type {kind!r}",
                f"use one of {', '.join(_TYPES)}",
            )
        default = pspec.get("default") if isinstance(pspec, dict) else None
        params[str(param)] = Param(str(param), kind, None if default is None else str(default))
    return " ".join(spec["command"].split()), params


def placeholders(command: str) -> list[str]:
    """``{name}`` placeholders of a command template, in order, each once."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(command)))


def render_command(template: str, declared: Mapping[str, Param], given: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The command a run executes and the parameter values it runs with (defaults filled in).

    Unknown names, values of the wrong type and missing required values are user errors that
    name the declared parameters; values are shell-quoted as MLflow quotes them."""
    names = ", ".join(p.describe() for p in declared.values()) or "none"
    for key in given:
        if key not in declared:
            raise UsageError(f"unknown --param {key!r}: the train command declares {names}",
                             "pass one of the declared parameters, or declare it in MLproject / the train command")
    values: dict[str, str] = {}
    for param in declared.values():
        value = given.get(param.name, param.default)
        if value is None:
            raise UsageError(f"parameter {param.name!r} has no default and was not given (declared: {names})",
                             f"pass --param {param.name}=VALUE")
        _check_type(param, value)
        values[param.name] = value

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        return shlex.quote(values[key]) if key in values else match.group(0)

    return _PLACEHOLDER.sub(substitute, template), values


def _check_type(param: Param, value: str) -> None:
    convert = {"float": float, "int": int, "integer": int}.get(param.type)
    if convert is None:
        return
    try:
        convert(value)
    except ValueError:
        raise UsageError(f"--param {param.name}={value!r} is not a{'n' if param.type.startswith('i') else ''} {param.type}",
                         f"pass a {param.type}, e.g. --param {param.name}={param.default or ('0.1' if param.type == 'float' else '1')}") from None


def command_parameters(project_dir: Path, command: str) -> dict[str, Param]:
    """What a train command template declares: the parameters of the MLproject entry point that
    has this command, plus any other ``{name}`` in it (a string, required)."""
    declared: dict[str, Param] = {}
    path = find_mlproject(project_dir)
    normal = " ".join(command.split())
    if path is not None and _PLACEHOLDER.search(normal):
        ml = read_mlproject(path, project_dir)
        for entry, template in ml.entry_points.items():
            if template == normal:
                declared.update(ml.parameters.get(entry, {}))
                break
    for name in placeholders(normal):
        declared.setdefault(name, Param(name, "string", None))
    return declared


def with_defaults(command: str, declared: Mapping[str, Param]) -> str:
    """The template with every defaulted parameter filled in (the image's own CMD)."""
    values = {p.name: p.default for p in declared.values() if p.default is not None}
    return _PLACEHOLDER.sub(lambda m: shlex.quote(values[m.group(1)]) if m.group(1) in values else m.group(0), command)


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


def _lines_for(text: str, key: str, items: list[object]) -> list[int]:
    lines = yaml_sequence_lines(text, key)
    return [lines[i] if i < len(lines) else 0 for i in range(len(items))]


def read_python_env(path: Path, project_dir: Path) -> PythonEnv:
    """Read MLflow's python_env.yaml (``python``, ``build_dependencies``, ``dependencies``)."""
    name = rel(path, project_dir)
    data = load_yaml_mapping(path, project_dir)
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise DetectError(f"{name}: 'dependencies' must be a list", f"write each requirement as '- name' in {name}")
    build = data.get("build_dependencies") or []
    if not isinstance(build, list):
        raise DetectError(f"{name}: 'build_dependencies' must be a list",
                          f"write each build dependency as '- name' in {name}")
    text = read_text(path, project_dir)
    # MLflow's virtualenv manager installs build_dependencies (pip, setuptools, wheel...) into the
    # environment before dependencies, so the project's code may rely on them: mlflow 2.x imports
    # pkg_resources, which only setuptools provides, and a fresh uv venv has no setuptools.
    # pip itself is the installer MLflow uses, not something the code imports: the image's venv is made
    # with uv and gets no pip unless the dependencies ask for it.
    numbered = [(ln, str(v)) for ln, v in zip(_lines_for(text, "build_dependencies", build), build)
                if not re.match(r"\s*pip\s*(?:[=<>!~;\[]|$)", str(v), re.IGNORECASE)]
    numbered += [(ln, str(v)) for ln, v in zip(_lines_for(text, "dependencies", deps), deps)]
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
