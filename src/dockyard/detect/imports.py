"""Which ML frameworks a project uses, from its ``import`` statements and its requirements.

Imports are read with ``ast`` (never executed). Virtual environments, VCS folders, caches and
vendored site-packages are skipped, and the walk stops after a bounded number of files so a huge
checkout stays cheap.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# Canonical framework names, in the order results are reported.
FRAMEWORKS: tuple[str, ...] = (
    "scikit-learn",
    "torch",
    "tensorflow",
    "keras",
    "xgboost",
    "lightgbm",
    "onnx",
    "onnxruntime",
)
# Top-level module -> framework.
MODULE_FRAMEWORK: Mapping[str, str] = MappingProxyType(
    {
        "sklearn": "scikit-learn",
        "torch": "torch",
        "tensorflow": "tensorflow",
        "keras": "keras",
        "xgboost": "xgboost",
        "lightgbm": "lightgbm",
        "onnx": "onnx",
        "onnxruntime": "onnxruntime",
    }
)
# PyPI distribution (normalised) -> framework.
PACKAGE_FRAMEWORK: Mapping[str, str] = MappingProxyType(
    {
        "scikit-learn": "scikit-learn",
        "sklearn": "scikit-learn",
        "torch": "torch",
        "tensorflow": "tensorflow",
        "tensorflow-cpu": "tensorflow",
        "tensorflow-gpu": "tensorflow",
        "tensorflow-intel": "tensorflow",
        "tf-nightly": "tensorflow",
        "keras": "keras",
        "tf-keras": "keras",
        "xgboost": "xgboost",
        "xgboost-cpu": "xgboost",
        "lightgbm": "lightgbm",
        "onnx": "onnx",
        "onnxruntime": "onnxruntime",
        "onnxruntime-gpu": "onnxruntime",
    }
)
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "env",
        ".env",
        "virtualenv",
        "node_modules",
        "__pycache__",
        "site-packages",
        "dist-packages",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".ipynb_checkpoints",
        "build",
        "dist",
        ".eggs",
        "mlruns",
        "wandb",
        "data",
        "datasets",
    }
)
MAX_FILES = 2000
MAX_FILE_BYTES = 1_000_000
# Directory entries looked at in all; bounds the walk when data folders hold many non-Python files.
MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class ImportScan:
    frameworks: Mapping[str, tuple[str, ...]]  # framework -> project-relative files importing it
    files_scanned: int
    truncated: bool  # stopped at max_files or max_entries
    warnings: tuple[str, ...]


def scan_imports(
    project_dir: Path, *, max_files: int = MAX_FILES, max_bytes: int = MAX_FILE_BYTES, max_entries: int = MAX_ENTRIES
) -> ImportScan:
    """Find framework imports in the project's ``*.py`` files."""
    found: dict[str, list[str]] = {}
    warnings: list[str] = []
    scanned = 0
    budget = _Budget(max_entries)
    for path in _python_files(project_dir, budget):
        if scanned >= max_files:
            return _scan(found, scanned, True, warnings)
        relpath = path.relative_to(project_dir).as_posix()
        try:
            if path.stat().st_size > max_bytes:
                continue  # generated or vendored code, not the project's own
            tree = ast.parse(path.read_bytes(), filename=relpath)
        except (OSError, ValueError):
            continue
        except SyntaxError as exc:
            warnings.append(f"{relpath}:{exc.lineno}: not valid Python 3 ({exc.msg}); its imports were not read")
            continue
        scanned += 1
        for module in _top_level_imports(tree):
            framework = MODULE_FRAMEWORK.get(module)
            if framework is not None and relpath not in found.setdefault(framework, []):
                found[framework].append(relpath)
    return _scan(found, scanned, budget.exhausted, warnings)


class _Budget:
    """Counts directory entries seen by the walk."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.exhausted = False

    def take(self, count: int) -> bool:
        self.left -= count
        self.exhausted = self.exhausted or self.left < 0
        return not self.exhausted


def _scan(found: dict[str, list[str]], scanned: int, truncated: bool, warnings: list[str]) -> ImportScan:
    ordered = {fw: tuple(found[fw]) for fw in FRAMEWORKS if fw in found}
    return ImportScan(MappingProxyType(ordered), scanned, truncated, tuple(warnings))


def _python_files(project_dir: Path, budget: _Budget) -> Iterable[Path]:
    for root, dirs, files in os.walk(project_dir):
        if not budget.take(len(dirs) + len(files)):
            return
        # Prune in place, sorted so results do not depend on directory order.
        dirs[:] = sorted(
            d for d in dirs if d not in SKIP_DIRS and not d.startswith(".") and not _is_venv(Path(root, d))
        )
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(root, name)


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() or (path / "conda-meta").is_dir()


def _top_level_imports(tree: ast.AST) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def frameworks_from_requirements(requirements: Iterable[str]) -> dict[str, str | None]:
    """Framework -> its version specifier (``>0.19.1``, ``==1.4.2``, ``>=1.0,<2``; None when
    unversioned), from PEP 508 strings. A range stays a range: compat/ decides which release the
    installer picks from it, never the lower bound."""
    out: dict[str, str | None] = {}
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        framework = PACKAGE_FRAMEWORK.get(canonicalize_name(req.name))
        if framework is None:
            continue
        spec = None if canonicalize_name(req.name) in _OTHER_VERSIONING else _specifier_of(req)
        if out.get(framework) is None:
            out[framework] = spec
    return {fw: out[fw] for fw in FRAMEWORKS if fw in out}


# Distributions of a framework that number their releases their own way.
_OTHER_VERSIONING = frozenset({"tf-keras", "tf-nightly", "sklearn"})


def _specifier_of(req: Requirement) -> str | None:
    """The requirement's specifier without local labels (``==2.3.1+cpu`` -> ``==2.3.1``: the
    label names a wheel build, not another release), comma-joined in a stable order."""
    parts = []
    for spec in sorted(req.specifier, key=str):
        version = spec.version.split("+", 1)[0]
        parts.append(f"{spec.operator}{version}")
    return ",".join(parts) or None
