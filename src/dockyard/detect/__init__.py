"""Project detection: what a plain ML project folder needs, and why.

``detect(project_dir)`` reads files only (no network, no subprocess, never imports project code)
and returns a :class:`Detection` in which every choice carries a :class:`Reason`.

Dependency source: an ordered priority list, the first that applies wins
(``DEPENDENCY_PRIORITY``), from most to least precise:

1. ``uv.lock``: a full lock; the build runs ``uv sync --frozen``.
2. ``pyproject.toml`` with a non-empty ``[project].dependencies``: the project's own declaration.
3. Poetry: ``poetry.lock`` (main group) or ``[tool.poetry.dependencies]``.
4. Pipenv: ``Pipfile.lock`` (default group) or ``Pipfile``.
5. The ``python_env`` / ``conda_env`` file an MLflow ``MLproject`` names: the project says this is
   how it runs, which beats guessing from file names.
6. ``requirements.txt`` (else ``requirements/*.txt``, ``requirements-*.txt``; main files before
   dev/test ones): plain pip input.
7. ``setup.cfg`` / ``setup.py`` ``install_requires`` (read, never run).
8. ``environment.yml`` / ``environment.yaml`` / ``conda.yaml`` / ``conda.yml``: conda names must be
   mapped to PyPI, which can lose packages, so it comes late.
9. ``pyproject.toml`` with an empty ``[project].dependencies`` (the project installs itself).

Otherwise the kind is ``"none"``, and what the code imports is installed (thirdparty.py says how
import names map to distributions, and which are left out).
Beside dependencies (repo2docker's conventions): ``apt.txt`` adds system packages, ``postBuild``
is run at build time as the image user, ``runtime.txt`` pins Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dockyard.errors import DetectError
from dockyard.runtime.contract import model_format

from ._files import Reason, rel
from . import pipenv, poetry, setuptools
from .apt import read_apt
from .conda import find_conda_files, read_conda_env
from .entrypoints import Found, find_serve_entry, find_train_command, find_train_notebook
from .imports import FRAMEWORKS, ImportScan, frameworks_from_requirements, scan_imports
from .mlproject import MLProject, find_mlproject, read_mlproject, read_python_env
from .postbuild import read_post_build
from .pyproject import PyprojectInfo, read_pyproject
from .python_version import DEFAULT_PYTHON_CANDIDATES, choose_python, parse_minor
from .requirements import find_requirements_files, is_dev_requirements, parse_requirements_file
from .thirdparty import infer_requirements
from .uvlock import read_uv_lock

__all__ = [
    "DEFAULT_PYTHON_CANDIDATES",
    "DEPENDENCY_PRIORITY",
    "FRAMEWORKS",
    "DetectError",
    "Detection",
    "Reason",
    "detect",
    "parse_minor",
]

DEPENDENCY_PRIORITY: tuple[str, ...] = (
    "uv.lock",
    "pyproject.toml [project].dependencies",
    "poetry.lock/[tool.poetry]",
    "Pipfile.lock/Pipfile",
    "MLproject python_env/conda_env",
    "requirements*.txt",
    "setup.cfg/setup.py install_requires",
    "environment.yml/conda.yaml",
    "pyproject.toml (no dependencies)",
)
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Detection:
    dependency_file: str | None  # project-relative path that was chosen
    dependency_kind: str  # "requirements" | "pyproject" | "uv-lock" | "conda" | "none"
    requirements: tuple[str, ...]  # PEP 508, normalised names: what will be installed
    python_version: str | None  # "3.11", or None when nothing says
    frameworks: tuple[str, ...]  # canonical names, see imports.FRAMEWORKS
    framework_versions: Mapping[str, str]  # version specifiers from requirements (">0.19.1", "==1.4.2")
    train_command: str | None
    serve_entry: str | None  # "predict.py:Predictor" or a model file/folder path
    entry_points: Mapping[str, str]  # MLproject entry point name -> rendered command
    warnings: tuple[str, ...]
    reasons: tuple[Reason, ...]
    # Beyond the core interface: what the build needs to install faithfully.
    index_options: tuple[str, ...] = ()  # e.g. ("--extra-index-url https://download.pytorch.org/whl/cpu",)
    hash_locked: bool = False  # requirements carry --hash=: install them as-is with --require-hashes
    project_name: str | None = None  # from pyproject [project].name or MLproject name
    dependency_files: tuple[str, ...] = field(default=())  # every file read for dependencies (-r includes)
    primary_framework: str | None = None  # the one the image is built around (see _primary)
    inferred_requirements: bool = False  # no dependency file: requirements are inferred from the imports
    inferred_from: tuple[tuple[str, str], ...] = ()  # (requirement, why) for each inferred requirement
    system_packages: tuple[str, ...] = ()  # from apt.txt
    post_build: str | None = None  # repo2docker's postBuild script, project-relative
    post_build_needs_root: str | None = None  # the first line of it that needs root
    train_notebook: str | None = None  # a notebook-only project: the .ipynb that trains (train.notebook)
    python_pinned_by: str | None = None  # the file that pins python_version exactly (runtime.txt, a lock...)
    package_file: str | None = None  # setup.py / pyproject.toml: the project is a package, installed itself
    train_model_variable: str | None = None  # the script saves nothing: keep this global (train.model_variable)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``plan --json``."""
        return {
            "dependency_file": self.dependency_file,
            "dependency_kind": self.dependency_kind,
            "dependency_files": list(self.dependency_files),
            "requirements": list(self.requirements),
            "index_options": list(self.index_options),
            "hash_locked": self.hash_locked,
            "python_version": self.python_version,
            "frameworks": list(self.frameworks),
            "primary_framework": self.primary_framework,
            "inferred_requirements": self.inferred_requirements,
            "inferred_from": {req: why for req, why in self.inferred_from},
            "system_packages": list(self.system_packages),
            "post_build": self.post_build,
            "framework_versions": dict(self.framework_versions),
            "train_command": self.train_command,
            "train_notebook": self.train_notebook,
            "train_model_variable": self.train_model_variable,
            "package_file": self.package_file,
            "serve_entry": self.serve_entry,
            "entry_points": dict(self.entry_points),
            "project_name": self.project_name,
            "warnings": list(self.warnings),
            "reasons": [{"what": r.what, "why": r.why} for r in self.reasons],
        }


@dataclass(frozen=True)
class _Source:
    """The chosen dependency source, whatever its format."""

    kind: str
    file: str | None
    requirements: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    hash_locked: bool = False
    env_python: tuple[str, str] | None = None  # (file, PEP 440 spec) from conda / python_env
    lock_requires_python: tuple[str, str] | None = None
    warnings: tuple[str, ...] = ()
    reasons: tuple[Reason, ...] = ()
    inferred: bool = False  # requirements guessed from imports (no dependency file)
    python_why: str | None = None  # why env_python is what it is, when the file does not say it itself
    inferred_from: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Context:
    project_dir: Path
    pyproject: PyprojectInfo | None
    mlproject: MLProject | None


def detect(project_dir: Path, *, python_candidates: tuple[str, ...] = DEFAULT_PYTHON_CANDIDATES,
           keras_backend: str | None = None) -> Detection:
    """Detect dependencies, Python, frameworks, train command and serve entry of a project folder.
    ``keras_backend``: dockyard.yaml's env KERAS_BACKEND, when set (it picks what keras needs)."""
    project_dir = Path(project_dir)
    if not project_dir.is_dir():
        raise DetectError(f"{project_dir} is not a directory", "pass the path of the project folder")
    pyproject_path = project_dir / "pyproject.toml"
    mlproject_path = find_mlproject(project_dir)
    ctx = _Context(
        project_dir=project_dir,
        pyproject=read_pyproject(pyproject_path, project_dir) if pyproject_path.is_file() else None,
        mlproject=read_mlproject(mlproject_path, project_dir) if mlproject_path else None,
    )
    source = _choose_source(ctx)
    python = choose_python(
        project_dir,
        env_python=source.env_python,
        env_python_why=source.python_why,
        requires_python=_requires_python(ctx, source),
        candidates=python_candidates,
    )
    scan = scan_imports(project_dir)
    if source.kind == "none" and (scan.frameworks or scan.modules):
        source = _inferred_source(scan, source, keras_backend)
    frameworks, versions, fw_reasons = _frameworks(scan, source)
    entries = ctx.mlproject.entry_points if ctx.mlproject else _EMPTY
    train = find_train_command(project_dir, entries, ctx.mlproject.file if ctx.mlproject else "MLproject")
    serve = find_serve_entry(project_dir)
    train_nb = find_train_notebook(project_dir) if train.value is None else Found(None, None)

    reasons = list(source.reasons)
    reasons += [python.reason] if python.reason else [Reason("python: not pinned", _NO_PYTHON)]
    reasons += fw_reasons
    primary, primary_why = _primary(frameworks, serve.value, project_dir)
    if primary is not None:
        reasons.append(Reason(f"primary framework: {primary}", primary_why))
    reasons += [r for r in (train.reason, train_nb.reason, serve.reason) if r is not None]
    package = setuptools.project_package(project_dir)
    reasons += [package[1]] if package else []
    apt_packages, apt_warnings, apt_reason = read_apt(project_dir)
    post_build = read_post_build(project_dir)
    reasons += [r for r in (apt_reason, post_build.reason if post_build else None) if r is not None]
    if ctx.mlproject:
        reasons += ctx.mlproject.reasons
    warnings = [
        *(ctx.pyproject.warnings if ctx.pyproject else ()),
        *(ctx.mlproject.warnings if ctx.mlproject else ()),
        *source.warnings,
        *python.warnings,
        *scan.warnings,
        *serve.warnings,
        *apt_warnings,
        *train_nb.warnings,
    ]
    warnings += _unlisted_frameworks(scan, source)
    if scan.truncated:
        warnings.append(f"project is large: stopped reading imports after {scan.files_scanned} Python files")
    return Detection(
        dependency_file=source.file,
        dependency_kind=source.kind,
        requirements=source.requirements,
        python_version=python.version,
        frameworks=frameworks,
        framework_versions=MappingProxyType(versions),
        train_command=train.value,
        serve_entry=serve.value,
        entry_points=entries,
        warnings=tuple(dict.fromkeys(warnings)),
        reasons=tuple(reasons),
        index_options=source.options,
        hash_locked=source.hash_locked,
        project_name=_project_name(ctx),
        dependency_files=source.files,
        primary_framework=primary,
        inferred_requirements=source.inferred,
        inferred_from=source.inferred_from,
        system_packages=apt_packages,
        post_build=post_build.file if post_build else None,
        post_build_needs_root=post_build.needs_root if post_build else None,
        train_notebook=train_nb.value,
        train_model_variable=train.model_variable,
        python_pinned_by=python.pinned_by,
        package_file=package[0] if package else None,
    )


_NO_PYTHON = "no .python-version, runtime.txt, conda python= or requires-python; the default applies"


def _unlisted_frameworks(scan: ImportScan, source: _Source) -> list[str]:
    """A dependency file decides what is installed: a framework the code imports (not only inside
    try/except ImportError) that the file does not list is there only if something else pulls it
    in. A Kaggle-style repository's save_model.py imported xgboost, absent from its requirements.txt."""
    if source.kind == "none" or source.inferred:
        return []
    listed = frameworks_from_requirements(source.requirements)
    missing = [f"{fw} (imported in {', '.join(files[:3])}{' ...' if len(files) > 3 else ''})"
               for fw, files in scan.frameworks.items() if fw not in scan.optional_frameworks and fw not in listed]
    if not missing:
        return []
    return [f"{source.file} does not list {'; '.join(missing)}: it is installed only if another requirement "
            f"depends on it, else that code fails with ModuleNotFoundError; add it to {source.file}"]


def _choose_source(ctx: _Context) -> _Source:
    for finder in _FINDERS:
        found = finder(ctx)
        if found is not None:
            why = f"first match in the priority list ({' > '.join(DEPENDENCY_PRIORITY)})"
            head = Reason(f"dependencies: {found.file} ({found.kind})", why)
            others = _ignored_files(ctx, found)
            extra: tuple[Reason, ...] = (
                (Reason("not used: " + ", ".join(others), f"{found.file} has priority"),) if others else ()
            )
            if found.options:  # index URLs matter: CPU-only torch wheels come from one
                extra += (Reason("pip options: " + "; ".join(found.options), f"from {', '.join(found.files)}"),)
            return replace(found, reasons=(head, *found.reasons, *extra))
    return _Source(kind="none", file=None, reasons=(Reason("dependencies: none", "no dependency file found"),))


def _from_uv_lock(ctx: _Context) -> _Source | None:
    path = ctx.project_dir / "uv.lock"
    if not path.is_file():
        return None
    lock = read_uv_lock(path, ctx.project_dir)
    lock_rp = (lock.file, lock.requires_python) if lock.requires_python else None
    return _Source(
        kind="uv-lock",
        file=lock.file,
        requirements=lock.requirements,
        files=(lock.file,),
        lock_requires_python=lock_rp,
        warnings=lock.warnings,
        reasons=lock.reasons,
    )


def _from_pyproject(ctx: _Context) -> _Source | None:
    info = ctx.pyproject
    if info is None or not info.dependencies:
        return None
    return _pyproject_source(info)


def _from_pyproject_without_dependencies(ctx: _Context) -> _Source | None:
    info = ctx.pyproject
    if info is None or not info.declares_dependencies:
        return None
    return _pyproject_source(info)


def _pyproject_source(info: PyprojectInfo) -> _Source:
    return _Source(
        kind="pyproject", file=info.file, requirements=info.dependencies, files=(info.file,), reasons=info.reasons
    )


def _from_poetry(ctx: _Context) -> _Source | None:
    found = poetry.read_poetry(ctx.project_dir) if ctx.pyproject is not None else None
    if found is None:
        return None
    files = (found.file, "pyproject.toml") if found.locked else (found.file,)
    return _Source(kind="pyproject", file="pyproject.toml", requirements=found.requirements, files=files,
                   lock_requires_python=("pyproject.toml", found.python) if found.python else None,
                   warnings=found.warnings, reasons=(poetry.reason(found),))


def _from_pipenv(ctx: _Context) -> _Source | None:
    found = pipenv.read_pipenv(ctx.project_dir)
    if found is None:
        return None
    files: tuple[str, ...] = (found.file, "Pipfile") if found.locked and (ctx.project_dir / "Pipfile").is_file() else (found.file,)
    files += (found.skipped_lock,) if found.skipped_lock else ()  # read, and said why it is not installed
    env_python = (found.file, f"=={found.python}.*" if found.python.count(".") == 1 else f"=={found.python}") \
        if found.python else None
    return _Source(kind="requirements", file=found.file, requirements=found.requirements, files=files,
                   env_python=env_python, python_why=found.python_why, warnings=found.warnings,
                   reasons=(pipenv.reason(found),))


def _from_setuptools(ctx: _Context) -> _Source | None:
    found = setuptools.read_setuptools(ctx.project_dir)
    if found is None:
        return None
    return _Source(kind="requirements", file=found.file, requirements=found.requirements, files=(found.file,),
                   lock_requires_python=(found.file, found.python_requires) if found.python_requires else None,
                   warnings=found.warnings, reasons=(setuptools.reason(found),))


def _from_mlproject_env(ctx: _Context) -> _Source | None:
    ml = ctx.mlproject
    if ml is None:
        return None
    if ml.python_env:
        env = read_python_env(ctx.project_dir / ml.python_env, ctx.project_dir)
        reqs = env.requirements
        env_python = (env.file, env.python) if env.python else None
        # python_env.yaml that only says '-r requirements.txt' is that file: point the build at it.
        file = reqs.files[0] if len(reqs.files) == 1 else env.file
        why = Reason(f"{len(reqs.requirements)} requirements", f"from {env.file}, named by {ml.file} python_env")
        return _Source(
            kind="requirements",
            file=file,
            requirements=reqs.requirements,
            files=(env.file, *reqs.files),
            options=reqs.options,
            hash_locked=reqs.hash_locked,
            env_python=env_python,
            warnings=reqs.warnings,
            reasons=(why, *reqs.reasons),
        )
    if ml.conda_env:
        return _conda_source(ctx.project_dir / ml.conda_env, ctx.project_dir, f", named by {ml.file} conda_env")
    return None


def _from_requirements(ctx: _Context) -> _Source | None:
    files = find_requirements_files(ctx.project_dir)
    if not files:
        return None
    chosen = files[0]
    result = parse_requirements_file(chosen, ctx.project_dir)
    warnings = result.warnings
    if is_dev_requirements(chosen):
        dev_file = rel(chosen, ctx.project_dir)
        hint = "add a requirements.txt with the runtime dependencies"
        warnings += (f"only {dev_file} was found, which looks like a dev/test file; {hint}",)
    reasons: tuple[Reason, ...] = (
        Reason(f"{len(result.requirements)} requirements", f"from {', '.join(result.files)}"),
    )
    if result.hash_locked:
        reasons += (Reason("hash-locked requirements", f"{result.files[0]} pins --hash= digests"),)
    return _Source(
        kind="requirements",
        file=rel(chosen, ctx.project_dir),
        requirements=result.requirements,
        files=result.files,
        options=result.options,
        hash_locked=result.hash_locked,
        warnings=warnings,
        reasons=reasons + result.reasons,
    )


def _from_conda(ctx: _Context) -> _Source | None:
    files = find_conda_files(ctx.project_dir)
    return _conda_source(files[0], ctx.project_dir, "") if files else None


def _conda_source(path: Path, project_dir: Path, named_by: str) -> _Source:
    env = read_conda_env(path, project_dir)
    env_python = (env.file, env.python_spec) if env.python_spec else None
    why = Reason(f"{len(env.requirements)} requirements", f"mapped from conda {env.file}{named_by}")
    return _Source(
        kind="conda",
        file=env.file,
        requirements=env.requirements,
        files=(env.file,),
        options=env.options,
        hash_locked=env.hash_locked,
        env_python=env_python,
        warnings=env.warnings,
        reasons=(why, *env.reasons),
    )


def _inferred_source(scan: ImportScan, none: _Source, keras_backend: str | None) -> _Source:
    """No dependency file, but the code imports third-party modules: install what they map to
    (thirdparty.py), or the run fails with ModuleNotFoundError. Planning pins the primary framework
    to the release compat/ expects."""
    inference = infer_requirements(scan, keras_backend=keras_backend)
    if not inference.requirements:
        return replace(none, warnings=(*none.warnings, *inference.warnings))
    names = tuple(i.requirement for i in inference.requirements)
    why = Reason(f"requirements inferred from imports: {', '.join(names)}",
                 "no dependency file (add a requirements.txt to choose them and their versions)")
    reasons: tuple[Reason, ...] = (*none.reasons, why)
    if inference.optional:
        reasons += (Reason("optional imports not installed: " + ", ".join(inference.optional),
                           "only imported inside try/except ImportError, so the code runs without them"),)
    return replace(none, requirements=names, inferred=True, reasons=reasons,
                   warnings=(*none.warnings, *inference.warnings),
                   inferred_from=tuple((i.requirement, i.why) for i in inference.requirements))


# The priority list itself, in DEPENDENCY_PRIORITY order: the first finder that returns wins.
_FINDERS: tuple[Callable[[_Context], _Source | None], ...] = (
    _from_uv_lock,
    _from_pyproject,
    _from_poetry,
    _from_pipenv,
    _from_mlproject_env,
    _from_requirements,
    _from_setuptools,
    _from_conda,
    _from_pyproject_without_dependencies,
)


def _ignored_files(ctx: _Context, chosen: _Source) -> list[str]:
    """Other dependency files present, so ``plan`` can say they were not used."""
    candidates = [p for p in (ctx.project_dir / "uv.lock", ctx.project_dir / "pyproject.toml") if p.is_file()]
    candidates += find_requirements_files(ctx.project_dir) + find_conda_files(ctx.project_dir)
    candidates += [p for p in (ctx.project_dir / n for n in _OTHER_DEPENDENCY_FILES) if p.is_file()]
    used = set(chosen.files)
    # With a uv.lock the pyproject is part of the same source.
    if chosen.kind == "uv-lock":
        used.add(rel(ctx.project_dir / "pyproject.toml", ctx.project_dir))
    return [name for name in (rel(p, ctx.project_dir) for p in candidates) if name not in used]


_OTHER_DEPENDENCY_FILES = ("poetry.lock", "Pipfile.lock", "Pipfile", "setup.cfg", "setup.py")


def _requires_python(ctx: _Context, source: _Source) -> tuple[str, str] | None:
    if ctx.pyproject is not None and ctx.pyproject.requires_python:
        return ctx.pyproject.file, ctx.pyproject.requires_python
    return source.lock_requires_python


def _frameworks(scan: ImportScan, source: _Source) -> tuple[tuple[str, ...], dict[str, str], list[Reason]]:
    from_reqs = frameworks_from_requirements(source.requirements)
    names = [fw for fw in FRAMEWORKS if fw in scan.frameworks or fw in from_reqs]
    versions = {fw: v for fw, v in from_reqs.items() if v is not None}
    reasons = []
    for fw in names:
        why = []
        if fw in scan.frameworks:
            files = scan.frameworks[fw]
            more = f" and {len(files) - 3} more" if len(files) > 3 else ""
            why.append(f"imported in {', '.join(files[:3])}{more}")
        if fw in from_reqs and not source.inferred:
            why.append(f"listed in {source.file}")
        what = f"framework: {fw}" + (versions[fw] if fw in versions else "")
        reasons.append(Reason(what, "; ".join(why)))
    return tuple(names), versions, reasons


# Other tools' project files: init translates one (interop: cog.yaml, else bentofile.yaml);
# any other is named, never skipped silently.
OTHER_TOOL_FILES: tuple[tuple[str, str], ...] = (
    ("cog.yaml", "Cog"), ("bentofile.yaml", "BentoML"), ("bentofile.yml", "BentoML"),
)


def other_tool_files_unread(project_dir: Path, translated: str | None) -> list[str]:
    """Warnings for other tools' build files present in ``project_dir`` that init did not translate."""
    also = f" (dockyard translated {translated} only)" if translated else ""
    return [
        f"{name} ({tool}'s build file) was seen but not read{also}: check that dockyard.yaml's python, "
        "system_packages, train and serve say what it says"
        for name, tool in OTHER_TOOL_FILES
        if name != translated and (project_dir / name).is_file()
    ]


def _project_name(ctx: _Context) -> str | None:
    if ctx.pyproject is not None and ctx.pyproject.name:
        return ctx.pyproject.name
    return ctx.mlproject.name if ctx.mlproject else None


# scikit-learn last: deep-learning projects import it for metrics and splits.
_PRIMARY_ORDER = ("torch", "tensorflow", "keras", "xgboost", "lightgbm", "onnxruntime", "onnx", "scikit-learn")


def _pickled_framework(path: Path) -> str | None:
    """The framework whose classes a pickle-family file imports, read without loading it
    (scan/models walks the opcodes); None when it names none."""
    if not path.is_file() or path.stat().st_size > _PICKLE_READ_LIMIT:
        return None  # a large file keeps its suffix's reading: detection runs on every plan and build
    from ..scan.models import scan_model_file  # the one pickle walker

    found = scan_model_file(path).frameworks
    return min((fw for fw in found if fw in _PRIMARY_ORDER), key=_PRIMARY_ORDER.index, default=None)


_PICKLE_READ_LIMIT = 64 * 1024 * 1024


def _primary(frameworks: tuple[str, ...], serve_entry: str | None,
             project_dir: Path | None = None) -> tuple[str | None, str]:
    if not frameworks:
        return None, ""
    if serve_entry and ":" not in serve_entry:
        fmt = model_format(serve_entry)  # a saved model's format names its framework
        implied = fmt.framework if fmt else None
        pickled = _pickled_framework(project_dir / serve_entry) if project_dir and fmt and fmt.pickle_family else None
        implied = pickled or implied  # a .pkl of an XGBClassifier is an xgboost model, whatever its suffix says
        if implied == "onnxruntime" and implied not in frameworks and "onnx" in frameworks:
            implied = "onnx"
        if implied in frameworks:
            return implied, f"the model file {serve_entry} is a {implied} model"
    if len(frameworks) == 1:
        return frameworks[0], "the only framework found"
    best = min(frameworks, key=_PRIMARY_ORDER.index)
    return best, f"of {', '.join(frameworks)}, the one that decides the base image and wheels"
