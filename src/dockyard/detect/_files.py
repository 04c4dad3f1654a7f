"""Reading project files for the detectors: text, TOML and YAML, with errors that name the file.

Every detector reads through these helpers so a broken file is always reported the same way:
``DetectError`` whose problem names ``path:line`` and whose fix says what to do.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dockyard.errors import DetectError

# Dependency and config files are small; a huge one is almost certainly not what we think it is.
MAX_PROJECT_FILE_BYTES = 5_000_000


@dataclass(frozen=True)
class Reason:
    """One choice detection made, and where it came from."""

    what: str  # e.g. "python 3.11"
    why: str  # e.g. "from .python-version"


def rel(path: Path, project_dir: Path) -> str:
    """Project-relative POSIX path for messages and results (absolute if outside the project)."""
    try:
        return path.resolve().relative_to(project_dir.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def read_text(path: Path, project_dir: Path) -> str:
    """Read a small UTF-8 project file, or raise a DetectError naming it."""
    name = rel(path, project_dir)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DetectError(f"{name} does not exist", f"create {name} or remove the reference to it") from None
    except OSError as exc:
        raise DetectError(f"cannot read {name}: {exc.strerror}", f"check the permissions of {name}") from None
    if size > MAX_PROJECT_FILE_BYTES:
        raise DetectError(
            f"{name} is {size} bytes, too large for a project file",
            f"keep {name} under {MAX_PROJECT_FILE_BYTES} bytes or remove it from the project",
        )
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: tolerate a BOM from Windows editors
    except UnicodeDecodeError as exc:
        raise DetectError(f"{name} is not valid UTF-8 (byte {exc.start})", f"save {name} as UTF-8") from None
    except OSError as exc:
        raise DetectError(f"cannot read {name}: {exc.strerror}", f"check the permissions of {name}") from None


def load_toml(path: Path, project_dir: Path) -> dict[str, Any]:
    """Parse a TOML file; tomllib's message already carries "(at line N, column M)"."""
    name = rel(path, project_dir)
    text = read_text(path, project_dir)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DetectError(f"{name} is not valid TOML: {exc}", f"fix the TOML syntax in {name}") from None


def load_yaml(path: Path, project_dir: Path) -> Any:
    """Parse a YAML file (safe loader), reporting the line of a syntax error."""
    name = rel(path, project_dir)
    text = read_text(path, project_dir)
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise DetectError(f"{where}: invalid YAML: {exc.problem}", f"fix the YAML syntax in {name}") from None
    except yaml.YAMLError as exc:
        raise DetectError(f"{name}: invalid YAML: {exc}", f"fix the YAML syntax in {name}") from None


def load_yaml_mapping(path: Path, project_dir: Path) -> dict[str, Any]:
    """Parse a YAML file whose top level must be a mapping (MLproject, environment.yml, ...)."""
    data = load_yaml(path, project_dir)
    if data is None:
        return {}
    if not isinstance(data, dict):
        name = rel(path, project_dir)
        raise DetectError(
            f"{name} must be a YAML mapping at the top level, found {type(data).__name__}",
            f"rewrite {name} as 'key: value' entries",
        )
    return data


def yaml_sequence_lines(text: str, *path: str) -> list[int]:
    """1-based line of each item of the YAML sequence at ``path`` (mapping keys, in order).

    A key may also match a one-key mapping inside a sequence, which is how conda nests ``pip:``
    under ``dependencies``. Returns [] when the path is not there. Lets errors in list-valued
    requirement entries name a real line.
    """
    node = yaml.compose(text)
    for key in path:
        node = _child(node, key)
        if node is None:
            return []
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                value: yaml.Node = v
                return value
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            nested = _child(item, key) if isinstance(item, yaml.MappingNode) else None
            if nested is not None:
                return nested
    return None
