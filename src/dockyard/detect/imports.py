"""Which ML frameworks a project uses, from its ``import`` statements and its requirements.

Imports are read with ``ast`` (never executed). Virtual environments, VCS folders, caches and
vendored site-packages are skipped, and the walk stops after a bounded number of files so a huge
checkout stays cheap.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


_NO_FILES: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True)
class ImportScan:
    frameworks: Mapping[str, tuple[str, ...]]  # framework -> project-relative files importing it
    files_scanned: int
    truncated: bool  # stopped at max_files or max_entries
    warnings: tuple[str, ...]
    # Every other top-level module imported (absolute imports; not stdlib, not the project's own)
    # -> the files importing it. What they install as is detect/thirdparty.py's business.
    modules: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _NO_FILES)
    optional: frozenset[str] = frozenset()  # of those, imported only under try/except ImportError
    optional_frameworks: frozenset[str] = frozenset()  # frameworks imported only that way
    # KERAS_BACKEND value set in code -> files
    keras_backends: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _NO_FILES)
    # of ``modules``, names that are also a top folder of the project without __init__.py: the
    # project's own namespace package, unless it is a known distribution (thirdparty.py decides)
    own_folders: frozenset[str] = frozenset()


def scan_imports(
    project_dir: Path, *, max_files: int = MAX_FILES, max_bytes: int = MAX_FILE_BYTES, max_entries: int = MAX_ENTRIES
) -> ImportScan:
    """Find framework imports in the project's ``*.py`` files and notebooks' code cells."""
    found: dict[str, list[str]] = {}
    acc = _Others()
    warnings: list[str] = []
    scanned = 0
    budget = _Budget(max_entries)
    for path in _python_files(project_dir, budget):
        if scanned >= max_files:
            return _scan(found, scanned, True, warnings, acc)
        relpath = path.relative_to(project_dir).as_posix()
        try:
            if path.stat().st_size > max_bytes:
                continue  # generated or vendored code, not the project's own
            source = notebook_source(path) if path.suffix == ".ipynb" else path.read_bytes()
            tree = ast.parse(source, filename=relpath)
        except (OSError, ValueError):
            continue
        except SyntaxError as exc:
            warnings.append(f"{relpath}:{exc.lineno}: not valid Python 3 ({exc.msg}); its imports were not read")
            continue
        scanned += 1
        own, folders = _own_names(project_dir, relpath)
        acc.local |= own
        acc.folders |= folders
        imports = _Imports()
        imports.visit(tree)
        for module in imports.required | imports.optional:
            framework = MODULE_FRAMEWORK.get(module)
            if framework is not None and relpath not in found.setdefault(framework, []):
                found[framework].append(relpath)
        acc.add(relpath, imports)
    return _scan(found, scanned, budget.exhausted, warnings, acc)


class _Budget:
    """Counts directory entries seen by the walk."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.exhausted = False

    def take(self, count: int) -> bool:
        self.left -= count
        self.exhausted = self.exhausted or self.left < 0
        return not self.exhausted


class _Others:
    """What a scan collects beside the frameworks."""

    def __init__(self) -> None:
        self.modules: dict[str, list[str]] = {}
        self.required: set[str] = set()
        self.local: set[str] = set()
        self.folders: set[str] = set()
        self.backends: dict[str, list[str]] = {}

    def add(self, relpath: str, imports: _Imports) -> None:
        for module in sorted(imports.required | imports.optional):
            self.modules.setdefault(module, []).append(relpath)
        self.required |= imports.required
        for backend in sorted(imports.keras_backends):
            self.backends.setdefault(backend, []).append(relpath)


def _scan(found: dict[str, list[str]], scanned: int, truncated: bool, warnings: list[str],
          acc: _Others) -> ImportScan:
    ordered = {fw: tuple(found[fw]) for fw in FRAMEWORKS if fw in found}
    others = {m: tuple(files) for m, files in sorted(acc.modules.items())
              if m not in acc.local and m not in MODULE_FRAMEWORK and not _is_stdlib(m)}
    folders = frozenset(m for m in others if m in acc.folders)
    optional = frozenset(m for m in others if m not in acc.required)
    required_frameworks = {MODULE_FRAMEWORK[m] for m in acc.required if m in MODULE_FRAMEWORK}
    optional_frameworks = frozenset(fw for fw in ordered if fw not in required_frameworks)
    backends = {b: tuple(files) for b, files in sorted(acc.backends.items())}
    return ImportScan(MappingProxyType(ordered), scanned, truncated, tuple(warnings),
                      MappingProxyType(others), optional, optional_frameworks, MappingProxyType(backends), folders)


def _is_stdlib(module: str) -> bool:
    return module in sys.stdlib_module_names or module.startswith("__")


def _own_names(project_dir: Path, relpath: str) -> tuple[set[str], set[str]]:
    """Names the project's own files make importable: every scanned module's name (scripts import
    their neighbours) and each folder on the way that is a package (``__init__.py``); and, apart,
    the top folders of the project or of ``src/`` without one (namespace packages, which an
    installed package of the same name would win over). A folder that merely holds scripts deeper
    down (``examples/dask/``) does not hide the real ``dask``."""
    parts = relpath.split("/")
    names = {parts[-1].rsplit(".", 1)[0]} if parts[-1].endswith(".py") else set()
    folders: set[str] = set()
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        if (project_dir / folder / "__init__.py").is_file():
            names.add(parts[depth - 1])
        elif depth == 1 or (depth == 2 and parts[0] == "src"):
            folders.add(parts[depth - 1])
    return names - {"src"}, folders - {"src"}


def python_files(project_dir: Path, *, limit: int = MAX_FILES, max_entries: int = MAX_ENTRIES) -> list[Path]:
    """The project's ``*.py`` and ``*.ipynb`` files, in the scan's order and with its skips."""
    out: list[Path] = []
    for path in _python_files(project_dir, _Budget(max_entries)):
        if len(out) >= limit:
            break
        out.append(path)
    return out


def _python_files(project_dir: Path, budget: _Budget) -> Iterable[Path]:
    for root, dirs, files in os.walk(project_dir):
        if not budget.take(len(dirs) + len(files)):
            return
        # Prune in place, sorted so results do not depend on directory order.
        dirs[:] = sorted(
            d for d in dirs if d not in SKIP_DIRS and not d.startswith(".") and not _is_venv(Path(root, d))
        )
        for name in sorted(files):
            if name.endswith((".py", ".ipynb")):
                yield Path(root, name)


def notebook_source(path: Path) -> str:
    """The Python in a notebook's code cells; IPython magics and shell lines (%, !) become blank
    lines. A file that is not notebook JSON raises ValueError (and is skipped like bad Python)."""
    doc = json.loads(path.read_bytes())
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise ValueError(f"{path.name} is not a notebook")
    lines: list[str] = []
    for cell in doc["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        lines += ["" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()]
    return "\n".join(lines) + "\n"


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file() or (path / "conda-meta").is_dir()


_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


class _Imports(ast.NodeVisitor):
    """Top-level modules a file imports: ``required``, or ``optional`` when every import of it sits
    in a ``try`` whose handlers catch ImportError (the code runs without it) or under ``if
    TYPE_CHECKING:``. Also the backend set by ``os.environ["KERAS_BACKEND"] = "jax"`` (or
    ``os.environ.setdefault("KERAS_BACKEND", "jax")``)."""

    def __init__(self) -> None:
        self.required: set[str] = set()
        self.optional: set[str] = set()
        self.keras_backends: set[str] = set()
        self._guarded = 0

    def _add(self, module: str) -> None:
        (self.optional if self._guarded else self.required).add(module)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add(node.module.split(".")[0])

    def visit_Try(self, node: ast.Try) -> None:
        self._try(node.body, node.handlers, [*node.orelse, *node.finalbody])

    def visit_TryStar(self, node: ast.TryStar) -> None:
        self._try(node.body, node.handlers, [*node.orelse, *node.finalbody])

    def _try(self, body: list[ast.stmt], handlers: list[ast.ExceptHandler], rest: list[ast.stmt]) -> None:
        guarded = any(_catches_import_error(h) for h in handlers)
        self._guarded += guarded
        for stmt in body:
            self.visit(stmt)
        self._guarded -= guarded
        for other in [*handlers, *rest]:
            self.visit(other)

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        typing_only = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        self._guarded += typing_only
        for child in node.body:
            self.visit(child)
        self._guarded -= typing_only
        for child in node.orelse:
            self.visit(child)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(_is_keras_backend_key(t) for t in node.targets):
            self._backend(node.value)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in ("setdefault", "__setitem__")
                and _is_environ(func.value) and len(node.args) == 2 and _is_str(node.args[0], "KERAS_BACKEND")):
            self._backend(node.args[1])
        self.generic_visit(node)

    def _backend(self, value: ast.expr) -> None:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            self.keras_backends.add(value.value.strip().lower())


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else "")
               in _IMPORT_ERRORS for n in names)


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def _is_str(node: ast.expr, text: str) -> bool:
    return isinstance(node, ast.Constant) and node.value == text


def _is_keras_backend_key(target: ast.expr) -> bool:
    return isinstance(target, ast.Subscript) and _is_environ(target.value) and _is_str(target.slice, "KERAS_BACKEND")


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
