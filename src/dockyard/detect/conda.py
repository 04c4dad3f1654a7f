"""Conda environment files (``environment.yml``, ``conda.yaml``, ...) mapped to PyPI.

The image installs with uv from PyPI, so every conda package is mapped through the data file
``conda_pypi.json`` (edit it, not this code): renamed (pytorch -> torch), dropped with a reason
(pip, cudatoolkit, mkl, ...), or unmappable (r-base, ffmpeg, ...: a warning names them). Any other
name is assumed to be the same on PyPI, which holds for most conda-forge Python packages.

Conda version specs become PEP 440: ``=1.2`` -> ``==1.2.*`` (conda's "fuzzy" equals),
``==1.2`` -> ``==1.2``, ``>=1.2,<2`` unchanged, ``1.2.3=build`` -> ``==1.2.3`` (build strings have
no PyPI meaning). ``python=3.10`` sets the Python version instead of a package.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from dockyard.errors import DetectError

from ._files import Reason, load_yaml_mapping, read_text, rel, yaml_sequence_lines
from .requirements import RequirementsResult, parse_requirement_lines

CONDA_FILES: tuple[str, ...] = ("environment.yml", "environment.yaml", "conda.yaml", "conda.yml")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_BRACKET_VERSION = re.compile(r"version\s*=\s*['\"]?([^'\",\]]+)")
_OPERATOR = re.compile(r"^(>=|<=|==|!=|~=|>|<)")


@dataclass(frozen=True)
class CondaMap:
    rename: dict[str, str]
    drop: dict[str, str]
    unmappable: frozenset[str]
    unmappable_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class CondaSpec:
    """One conda dependency, already mapped: ``pypi`` is None when it is dropped or unmappable."""

    conda_name: str
    pypi: str | None  # PEP 508 string
    note: str  # why it was renamed / dropped / unmappable ("" when taken as-is)
    unmappable: bool = False
    unpinned: bool = False  # the conda version spec had no PEP 440 form and was dropped


@dataclass(frozen=True)
class CondaEnv:
    file: str
    requirements: tuple[str, ...]
    python_spec: str | None  # PEP 440, e.g. "==3.10.*"
    options: tuple[str, ...]  # index options from the pip: list
    hash_locked: bool
    unmappable: tuple[str, ...]
    warnings: tuple[str, ...]
    reasons: tuple[Reason, ...]


@cache
def load_conda_map() -> CondaMap:
    """The conda -> PyPI table shipped with dockyard."""
    raw = json.loads(resources.files(__package__).joinpath("conda_pypi.json").read_text("utf-8"))
    return CondaMap(
        rename={k.lower(): v for k, v in raw["rename"].items()},
        drop={k.lower(): v for k, v in raw["drop"].items()},
        unmappable=frozenset(n.lower() for n in raw["unmappable"]),
        unmappable_prefixes=tuple(raw["unmappable_prefixes"]),
    )


def find_conda_files(project_dir: Path) -> list[Path]:
    return [project_dir / n for n in CONDA_FILES if (project_dir / n).is_file()]


def conda_version_to_pep440(version: str) -> str | None:
    """A conda version constraint as a PEP 440 specifier ('' = any); None when it has no equivalent."""
    version = version.strip()
    if version in ("", "*"):
        return ""
    if "|" in version:  # conda OR has no PEP 440 form
        return None
    clauses = []
    for clause in version.split(","):
        clause = clause.strip()
        match = _OPERATOR.match(clause)
        op, value = (match.group(1), clause[match.end() :].strip()) if match else ("==", clause)
        if value.startswith("="):  # '=1.2' inside a list: fuzzy equals
            value = value[1:]
            value = value if value.endswith("*") else value + ".*"
        if value.endswith("*") and not value.endswith(".*"):
            value = value[:-1].rstrip(".") + ".*"  # conda '1.2*' == PEP 440 '1.2.*'
        if op not in ("==", "!=") and value.endswith(".*"):
            value = value[:-2]  # '>=1.2.*' means '>=1.2'
        clauses.append(f"{op}{value}")
    text = ",".join(clauses)
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        return None
    return text


def split_conda_spec(spec: str) -> tuple[str, str | None]:
    """``conda-forge::numpy=1.26=py311h`` -> (``numpy``, ``==1.26.*``); version None when untranslatable."""
    spec = spec.strip().split("::", 1)[-1]
    match = _NAME.match(spec)
    if match is None:
        return "", None
    name, rest = match.group(0), spec[match.end() :].strip()
    if rest.startswith("["):  # name[version='>=1.2',build=...]
        found = _BRACKET_VERSION.search(rest)
        return name, conda_version_to_pep440(found.group(1)) if found else ""
    if not rest:
        return name, ""
    if _OPERATOR.match(rest):
        # '>= 1.2, <2 build' -> '>=1.2,<2' (a trailing build string is dropped)
        compact = re.sub(r"(>=|<=|==|!=|~=|>|<)\s+", r"\1", re.sub(r"\s*([,|])\s*", r"\1", rest))
        return name, conda_version_to_pep440(compact.split()[0])
    if rest.startswith("="):  # =1.2 (fuzzy) or =1.2.3=build (exact version + build)
        parts = rest[1:].split("=")
        if len(parts) >= 2 and parts[0]:
            return name, conda_version_to_pep440("==" + parts[0])
        version = parts[0]
        return name, conda_version_to_pep440(version if version.endswith("*") else version + ".*")
    # space form: 'numpy 1.26.*' or 'numpy 1.26.4 py311h_0'
    return name, conda_version_to_pep440(rest.split()[0])


def map_conda_package(spec: str, table: CondaMap | None = None) -> CondaSpec:
    """Map one conda dependency string to a PyPI requirement (or say why not)."""
    table = table or load_conda_map()
    name, version = split_conda_spec(spec)
    key = name.lower()
    if key in table.drop:
        return CondaSpec(name, None, table.drop[key])
    if key in table.unmappable or key.startswith(table.unmappable_prefixes):
        return CondaSpec(name, None, "no PyPI equivalent", unmappable=True)
    pypi_name = canonicalize_name(table.rename.get(key, name))
    note = f"conda '{name}' is '{pypi_name}' on PyPI" if key in table.rename and pypi_name != key else ""
    if version is None:
        note = (note + "; " if note else "") + f"version in {spec!r} has no pip equivalent, so it is not pinned"
        return CondaSpec(name, pypi_name, note, unpinned=True)
    return CondaSpec(name, pypi_name + version, note)


def read_conda_env(path: Path, project_dir: Path) -> CondaEnv:
    """Read a conda environment file into PyPI requirements, a Python spec and warnings."""
    name = rel(path, project_dir)
    data = load_yaml_mapping(path, project_dir)
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise DetectError(f"{name}: 'dependencies' must be a list", f"write each package as '- name' in {name}")
    requirements: list[str] = []
    warnings: list[str] = []
    reasons: list[Reason] = []
    unmappable: list[str] = []
    python_spec: str | None = None
    pip_items: list[Any] = []
    for item in deps:
        if isinstance(item, dict):
            pip_items += _pip_list(item, name)
            continue
        mapped = map_conda_package(str(item))
        if mapped.conda_name.lower() == "python":
            python_spec = split_conda_spec(str(item))[1] or None
            continue
        if mapped.unmappable:
            unmappable.append(mapped.conda_name)
        elif mapped.pypi is None:
            reasons.append(Reason(f"dropped conda '{mapped.conda_name}'", f"{name}: {mapped.note}"))
        else:
            requirements.append(mapped.pypi)
            if mapped.unpinned:
                warnings.append(f"{name}: {mapped.note}")
            elif mapped.note:
                reasons.append(Reason(mapped.pypi, f"{name}: {mapped.note}"))
    if unmappable:
        warnings.append(
            f"{name}: no PyPI package for conda {', '.join(unmappable)}; install it as a system package "
            "(system_packages in dockyard.yaml) or add a mapping to conda_pypi.json"
        )
    pip = _parse_pip(pip_items, path, project_dir)
    return CondaEnv(
        file=name,
        requirements=tuple(requirements) + pip.requirements,
        python_spec=python_spec,
        options=pip.options,
        hash_locked=pip.hash_locked,
        unmappable=tuple(unmappable),
        warnings=tuple(warnings) + pip.warnings,
        reasons=tuple(reasons) + pip.reasons,
    )


def _pip_list(item: dict[str, Any], name: str) -> list[Any]:
    if set(item) != {"pip"} or not isinstance(item["pip"], list):
        raise DetectError(
            f"{name}: unexpected mapping {sorted(item)} in dependencies",
            "only a nested 'pip:' list of requirement strings is allowed there",
        )
    return list(item["pip"])


def _parse_pip(items: list[Any], path: Path, project_dir: Path) -> RequirementsResult:
    lines = yaml_sequence_lines(read_text(path, project_dir), "dependencies", "pip")
    numbered = [(lines[i] if i < len(lines) else 0, str(v)) for i, v in enumerate(items)]
    return parse_requirement_lines(
        numbered, origin=rel(path, project_dir), base_dir=path.parent, project_dir=project_dir
    )
