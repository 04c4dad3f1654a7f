"""setuptools projects: ``install_requires`` from ``setup.cfg`` or ``setup.py``, never executed;
and whether the project is itself a package to install (:func:`project_package`).

``setup.cfg``'s ``[options] install_requires`` is read with configparser. ``setup.py`` is parsed
with ``ast``: the ``install_requires=`` argument of the ``setup(...)`` call, when it is a literal
list or a name bound to one at module level (the common pattern). Anything computed (read from a
file, built in a loop) cannot be known without running the code, so it is reported, not guessed.
"""

from __future__ import annotations

import ast
import configparser
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement

from ._files import Reason, load_toml, read_text, rel
from .requirements import normalise_requirement


@dataclass(frozen=True)
class SetuptoolsDeps:
    file: str
    requirements: tuple[str, ...]
    python_requires: str | None
    warnings: tuple[str, ...]


def read_setuptools(project_dir: Path) -> SetuptoolsDeps | None:
    """setup.cfg first (declarative), else setup.py; None when neither declares dependencies."""
    cfg, py = project_dir / "setup.cfg", project_dir / "setup.py"
    if cfg.is_file():
        found = _from_setup_cfg(cfg, project_dir)
        if found is not None:
            return found
    return _from_setup_py(py, project_dir) if py.is_file() else None


def _from_setup_cfg(path: Path, project_dir: Path) -> SetuptoolsDeps | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(path, project_dir))
    except configparser.Error:
        return None
    raw = parser.get("options", "install_requires", fallback="")
    python = parser.get("options", "python_requires", fallback=None)
    lines = [line.split("#", 1)[0].strip() for line in raw.replace(";", ";").splitlines()]
    if not any(lines):
        return None
    reqs, warnings = _normalise([line for line in lines if line], rel(path, project_dir))
    return SetuptoolsDeps(rel(path, project_dir), reqs, python.strip() if python else None, warnings)


def _from_setup_py(path: Path, project_dir: Path) -> SetuptoolsDeps | None:
    name = rel(path, project_dir)
    try:
        tree = ast.parse(read_text(path, project_dir), filename=name)
    except SyntaxError:
        return SetuptoolsDeps(name, (), None, (f"{name} is not valid Python 3; its install_requires was not read",))
    bound = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _called(node) == "setup"):
            continue
        args = {kw.arg: kw.value for kw in node.keywords if kw.arg}
        python = _literal(args.get("python_requires"), bound)
        value = _literal(args.get("install_requires"), bound)
        if "install_requires" not in args:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return SetuptoolsDeps(name, (), python if isinstance(python, str) else None, (
                f"{name}: install_requires is computed, so it cannot be read without running setup.py; "
                "list the dependencies in requirements.txt",))
        reqs, warnings = _normalise(value, name)
        return SetuptoolsDeps(name, reqs, python if isinstance(python, str) else None, warnings)
    return None


def _called(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _literal(node: ast.expr | None, bound: dict[str, ast.expr]) -> object:
    if isinstance(node, ast.Name) and node.id in bound:
        node = bound[node.id]
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def _normalise(items: list[str], where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    reqs: list[str] = []
    warnings: list[str] = []
    for item in items:
        try:
            reqs.append(normalise_requirement(item))
        except InvalidRequirement:
            warnings.append(f"{where}: {item!r} is not a PEP 508 requirement; left out")
    return tuple(reqs), tuple(warnings)


def reason(deps: SetuptoolsDeps) -> Reason:
    return Reason(f"{len(deps.requirements)} requirements", f"install_requires in {deps.file} (read, not run)")


def project_package(project_dir: Path) -> tuple[str, Reason] | None:
    """(file, reason) when the project is a package that installs itself, as ``pip install .``
    (repo2docker) and ``uv sync`` would: a ``setup.py``, or a ``[build-system]`` in pyproject.toml (setuptools,
    hatchling, poetry-core, flit...). A pyproject.toml without one is only a list of dependencies
    (uv calls it a virtual project), and Poetry's ``package-mode = false`` / uv's ``package =
    false`` say so explicitly."""
    pyproject = project_dir / "pyproject.toml"
    data = load_toml(pyproject, project_dir) if pyproject.is_file() else {}
    tool = data.get("tool", {}) if isinstance(data.get("tool"), dict) else {}
    for name, key in (("poetry", "package-mode"), ("uv", "package")):
        table = tool.get(name)
        if isinstance(table, dict) and table.get(key) is False:
            return None
    if (project_dir / "setup.py").is_file():
        return "setup.py", Reason("project: installed from setup.py", "setup.py makes the project a package "
                                  "(repo2docker runs `pip install .`)")
    build = data.get("build-system")
    if isinstance(build, dict) and (build.get("build-backend") or build.get("requires")):
        backend = build.get("build-backend") or "setuptools"
        return "pyproject.toml", Reason("project: installed from pyproject.toml",
                                        f"pyproject.toml has a [build-system] ({backend}): the project is a package")
    return None
