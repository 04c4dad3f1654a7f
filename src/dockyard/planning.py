"""The build plan: every decision about an image, as one plain value.

``make_plan`` reads the project (config + detection) and resolves compatibility;
``render`` turns a Plan into Dockerfile text without looking at anything else.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from . import wheelhouse
from .compat.resolver import Choice, Resolution, compat_data, resolve
from .config import CONFIG_NAME, ProjectConfig, load_config
from .detect.requirements import names_distribution, specifier_for
from .detect.thirdparty import LAST_SETUPTOOLS_WITH_PKG_RESOURCES
from .errors import ConfigError
from .runtime import contract
from .runtime.contract import SERVABLE_SUFFIXES, looks_like_model
from .interop.bentoml import model_entry as bentoml_model_entry
from .interop.cog import needs_cog
from .interop.mlflow_serving import newest_mlmodel_dir, serving_requirements
from .runtime.cog_model import is_cog_predictor

BUILD_DIR = ".dockyard"  # generated build inputs inside the project (like Cog's .cog/)


def predictor_module(entry: str) -> str:
    """`predict.py:Predictor` (dockyard.yaml) -> `predict:Predictor` (the runtime's MODULE:CLASS)."""
    path, _, cls = entry.partition(":")
    return f"{path.removesuffix('.py').replace('/', '.')}:{cls}"


@dataclass(frozen=True)
class Plan:
    name: str
    python: str
    framework: str | None
    target: str  # cpu | gpu
    base_final: str
    base_builder: str
    requirements: tuple[str, ...]  # what goes into .dockyard/requirements.txt
    index_options: tuple[str, ...]  # --extra-index-url ... lines for that file
    locked: bool  # requirements are hash-pinned: install with --require-hashes
    lock_file: str | None
    system_packages: tuple[str, ...]
    warm_imports: tuple[str, ...]
    uv_version: str
    train_command: str | None
    serve_predictor: str | None
    serve_model: str | None
    code_files: tuple[str, ...]  # project-relative top-level files copied into /app
    code_dirs: tuple[str, ...]  # project-relative top-level dirs copied into /app
    model_files: tuple[str, ...]  # weights, copied in their own layer
    env: tuple[tuple[str, str], ...]
    workers: int
    max_batch_size: int
    max_batch_wait_ms: float
    build_secret_ids: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    choices: tuple[Choice, ...]
    warnings: tuple[str, ...] = ()
    serve_drop: tuple[str, ...] = ()  # code paths (or *.ext patterns) the serving image leaves out
    post_build: str | None = None  # repo2docker's postBuild, run once over the code at build time
    post_build_root: bool = False  # ... as root (dockyard.yaml post_build_as_root), else as USER_UID
    own_dockerfile: str | None = None  # the project's own Dockerfile, honoured as-is
    model_version: str | None = None  # the stored version baked in (V2 metadata reports it)
    train_notebook: str | None = None  # train.notebook: the train image also gets the notebook runner
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    serve_app: str | None = None  # the project's own ASGI/WSGI app, FILE.py:NAME
    install_project: str | None = None  # setup.py / pyproject.toml: install the project itself (editable, /app)
    local_wheels: tuple[str, ...] = ()  # host wheel files staged into .dockyard/wheels (dockyard.wheelhouse)
    setuptools_guard: bool = False  # after install, setuptools<81 when a package imports pkg_resources

    @property
    def default_target(self) -> str:
        return "serve" if (self.serve_predictor or self.serve_model or self.serve_app) else "train"


def make_plan(
    project_dir: Path,
    *,
    local_bases: frozenset[str] = frozenset(),
    model_file: str | None = None,
    model_version: str | None = None,
    host_wheels: Sequence[wheelhouse.Source] = (),
) -> Plan:
    """Config + detection + compat data -> Plan. Reads project files; touches no engine.
    ``host_wheels``: the local find-links folders of the host's pip configuration."""
    from .detect import detect  # local import: detection is the slowest part of plan

    project_dir = project_dir.resolve()
    config = load_config(project_dir)
    detection = detect(project_dir, keras_backend=config.env.get("KERAS_BACKEND"))
    res = resolve(
        python=config.python,
        framework=config.framework,
        framework_version=config.framework_version or detection.framework_versions.get(config.framework or "", None),
        gpu=config.gpu.enabled,
        cuda=config.gpu.cuda,
        devel=config.gpu.devel,
        base_image=config.base_image,
        local_bases=local_bases,
    )
    detected = detection.requirements
    choices = _detected_choices(detection.reasons, ("dependencies",)) + res.choices
    choices += _detected_choices(detection.reasons, ("system packages", "post-build"))
    install_project = detection.package_file if config.dependencies.install_project else None
    choices += _project_choice(detection, config)
    train_found = _detected_choices(detection.reasons, ("train",))
    if config.train.command and not (train_found and train_found[0].value == config.train.command):
        train_found = (Choice("train", config.train.command, f"from {CONFIG_NAME}"),)
    if config.train.model_variable and train_found:
        train_found = (Choice("train", f"{train_found[0].value}, then keep {config.train.model_variable}",
                              f"{train_found[0].why}; train.model_variable: the script saves no model, so "
                              f"{config.train.model_variable} is saved when it ends (runtime/keep.py)"),)
    choices += train_found
    if detection.inferred_requirements and not config.dependencies.file:
        pypi = compat_data()["frameworks"].get(config.framework or "", {}).get("pypi")
        detected, inferred_from = _with_app_server(project_dir, config, detected, detection.inferred_from)
        detected = _pin_inferred(detected, pypi, res.framework_release)
        choices += _inferred_choices(detected, inferred_from, res.python,
                                     _locked_versions(project_dir, config.dependencies.lock))
    requirements, locked, lock_file = _requirements(project_dir, config, detected, res)
    local = _local_torch(host_wheels, res, requirements) if not locked else None
    cpu_index = compat_data()["frameworks"]["torch"]["cpu_index"]
    index = tuple(f"--extra-index-url {u}" for u in res.extra_index_urls if local is None or u != cpu_index)
    if local is not None:  # the host's CPU torch wheel instead of download.pytorch.org's
        index += (f"--find-links {wheelhouse.MOUNT}",)
        requirements += (f"torch=={local.version}",)
        choices = _with_local_torch(choices, local, res.python, cpu_index)
    model_ctx = model_file or config.serve.model
    if model_ctx and not config.serve.predictor and not locked and (project_dir / model_ctx).is_dir():
        # An MLflow model may need mlflow's own loader (or skops): in this serving image only.
        requirements += serving_requirements(project_dir / model_ctx, requirements)
    if config.serve.predictor and not locked and is_cog_predictor(predictor_module(config.serve.predictor),
                                                                  str(project_dir)):
        requirements += needs_cog(requirements)  # Cog predictors import the real cog package
    model_files = (model_ctx,) if model_ctx else ()
    # Zero-code serving names the one model file inside /opt/dockyard/model; a predictor
    # finds its weights through DOCKYARD_MODEL_DIR instead.
    serve_model = None
    lock_warnings: tuple[str, ...] = ()
    if model_ctx and not config.serve.predictor and not config.serve.app:  # an app finds its own file
        serve_model = _model_entry(project_dir, model_ctx)
        served = contract.model_format(serve_model)
        # torch, alone among the frameworks served with no code, does not install numpy itself
        if (served and served.framework == "torch" and locked
                and "numpy" not in _locked_versions(project_dir, lock_file)):
            lock_warnings = (f"{model_ctx} is served with no code, through numpy arrays, and {lock_file} does not "
                             "pin numpy (torch does not depend on it): the server will fail to warm up; add numpy "
                             f"to the project's requirements and run `dockyard lock` again",)
        elif served and served.framework == "torch" and not locked and not names_distribution(requirements, "numpy"):
            requirements += (contract.ZERO_CODE_REQUIREMENT,)
            choices += (Choice("serving", contract.ZERO_CODE_REQUIREMENT,
                               f"{model_ctx} is served with no code, through numpy arrays, and the requirements do "
                               "not install it (torch does not depend on numpy): added, the newest release that fits them"),)
    # A model at the top level is left out of the code layer; one inside a code folder
    # (model/model.pkl) leaves the folder in, and only the serving image drops the file.
    files, dirs = code_entries(project_dir, exclude={m.strip("/") for m in model_files if "/" not in m.strip("/")})
    serve_drop = _serve_drop(project_dir, files, dirs, config.serve.model if model_ctx else None)
    own = project_dir / "Dockerfile"
    return Plan(
        name=config.name,
        python=res.python,
        framework=config.framework,
        target=res.target,
        base_final=res.base_final,
        base_builder=res.base_builder,
        requirements=requirements,
        index_options=index + _index_options(detection),
        locked=locked,
        lock_file=lock_file,
        system_packages=tuple(dict.fromkeys(config.system_packages + detection.system_packages + res.system_packages)),
        post_build=_post_build(detection, config),
        post_build_root=config.post_build_as_root,
        warm_imports=res.warm_imports if config.serve.bytecode else (),
        uv_version=res.uv_version,
        train_command=image_train_command(project_dir, config.train.command, config.train.model_variable)
        or notebook_command(project_dir, config.train.notebook),
        serve_predictor=config.serve.predictor,
        serve_model=serve_model,
        code_files=files,
        code_dirs=dirs,
        serve_drop=serve_drop,
        model_files=model_files,
        env=tuple(sorted(config.env.items())),
        workers=config.serve.workers,
        max_batch_size=config.serve.max_batch_size,
        max_batch_wait_ms=config.serve.max_batch_wait_ms,
        build_secret_ids=tuple(s.id for s in config.build_secrets),
        labels=(
            (contract.LABEL_CONFIG_HASH, config.config_hash()),
            (contract.LABEL_FRAMEWORK, f"{config.framework or 'none'}"),
            (contract.LABEL_PYTHON, res.python),
            (contract.LABEL_TARGET, res.target),
            (contract.LABEL_NAME, config.name),
        ),
        choices=choices + _notebook_choices(config.train.notebook, res.python),
        warnings=tuple(detection.warnings) + _python_overridden(config, detection) + res.warnings + lock_warnings
        + _version_twice(config, detection.framework_versions)
        + _safer_format(project_dir, model_ctx) + _own_dockerfile_note(own),
        own_dockerfile="Dockerfile" if own.is_file() else None,
        model_version=model_version,
        train_notebook=config.train.notebook,
        serve_app=config.serve.app,
        local_wheels=(str(local.path),) if local is not None else (),
        setuptools_guard=not locked and not _wants_setuptools_without_pkg_resources(requirements),
        install_project=install_project,
    )


NOTEBOOK_PATTERN = "*.ipynb"  # notebooks are for people: training may run them, serving never does
_NOTEBOOK_SCAN_LIMIT = 20_000  # directory entries looked at before giving up (huge data folders)


def _serve_drop(project_dir: Path, files: tuple[str, ...], dirs: tuple[str, ...], model: str | None) -> tuple[str, ...]:
    drop: list[str] = []
    if _has_notebook(project_dir, files, dirs):
        drop.append(NOTEBOOK_PATTERN)
    if model and "/" in model.strip("/") and model.strip("/").split("/")[0] in dirs:
        drop.append(model.strip("/"))
    return tuple(drop)


def _has_notebook(project_dir: Path, files: tuple[str, ...], dirs: tuple[str, ...]) -> bool:
    if any(f.endswith(".ipynb") for f in files):
        return True
    seen = 0
    for d in dirs:
        for _root, subdirs, names in os.walk(project_dir / d):
            subdirs[:] = [s for s in subdirs if s not in _SKIP_DIRS and s != ".ipynb_checkpoints"]
            seen += len(names) + len(subdirs)
            if any(n.endswith(".ipynb") for n in names):
                return True
            if seen > _NOTEBOOK_SCAN_LIMIT:
                return False
    return False


def notebook_packages(kind: str, python: str | None = None) -> tuple[str, ...]:
    """Pinned requirements from compat data: ``jupyter`` (dev image only) or ``runner`` (the train
    image of a notebook project); on ``python``, with the pins compat data replaces for it."""
    data = compat_data()["notebook"]
    swaps = {p.split("==")[0]: p for p in data.get("by_python", {}).get(python or "", [])}
    return tuple(swaps.get(p.split("==")[0], p) for p in data[kind])


_PYTHON_SCRIPT = re.compile(r"python(?:3(?:\.\d+)?)?\s+(?P<rest>[^\s;&|<>`$()]+\.py(?:\s.*)?)", re.S)


def kept_model_command(command: str, model_variable: str | None) -> str:
    """``command`` run so that ``train.model_variable`` is saved when the script ends
    (runtime/keep.py): ``python main.py --x 1`` -> ``python -m dockyard_runtime.keep fc main.py --x 1``."""
    if model_variable is None:
        return command
    match = _PYTHON_SCRIPT.fullmatch(command.strip())
    if match is None:
        raise ConfigError(f"train.model_variable ({model_variable}) needs a train.command of the form `python "
                          f"SCRIPT.py [ARGS]`, and {command!r} is not",
                          f"run the script with python in train.command, or save the model in the script and "
                          f"remove train.model_variable from {CONFIG_NAME}")
    return f"python -m dockyard_runtime.keep {model_variable} {match.group('rest')}"


def notebook_command(project_dir: Path, notebook: str | None) -> str | None:
    """The train command that runs ``train.notebook`` (dockyard_runtime.notebook, with nbclient)."""
    if notebook is None:
        return None
    if not (project_dir / notebook).is_file():
        raise ConfigError(f"train.notebook names {notebook}, which does not exist in {project_dir}",
                          f"create it, or fix train.notebook in {CONFIG_NAME}")
    return f"python -m dockyard_runtime.notebook {shlex.quote(notebook)}"


def _notebook_choices(notebook: str | None, python: str) -> tuple[Choice, ...]:
    if notebook is None:
        return ()
    runner = " + ".join(notebook_packages("runner", python))
    return (Choice("notebook runner", runner + " in the train image, in a layer of its own",
                   f"train.notebook is {notebook}: the train image must execute it; serve never carries them"),)


def _model_entry(project_dir: Path, context_path: str) -> str:
    path = project_dir / context_path
    if path.is_file():
        return path.name
    mlmodel = newest_mlmodel_dir(path) if path.is_dir() else None
    if mlmodel is not None:  # an MLflow model (e.g. the one a training run logged) is served by default
        return str(mlmodel.relative_to(path)) if mlmodel != path else "."
    bento = bentoml_model_entry(path) if path.is_dir() else None
    if bento is not None:  # the newest model a run saved to the BentoML store
        return str(bento.relative_to(path))
    found = sorted(p for p in path.rglob("*") if p.is_file() and looks_like_model(str(p))) if path.is_dir() else []
    if not found:
        raise ConfigError(f"no model file in {context_path}", f"expected one of {', '.join(SERVABLE_SUFFIXES)}")
    return str(found[0].relative_to(path))


def _detected_choices(reasons: tuple[object, ...], kinds: tuple[str, ...]) -> tuple[Choice, ...]:
    """Detection's reasons `plan` shows beside the resolved choices (what was read, and why)."""
    out = []
    for r in reasons:
        what, sep, value = str(getattr(r, "what", "")).partition(": ")
        if sep and what in kinds:
            out.append(Choice(what, value, str(getattr(r, "why", ""))))
    return tuple(out)


def _python_overridden(config: ProjectConfig, detection: object) -> tuple[str, ...]:
    """python: in dockyard.yaml differs from the exact Python the project pins: say so, since pins made
    for one Python (a Pipfile.lock, a conda env) may not install on another."""
    pinned, by = getattr(detection, "python_version", None), getattr(detection, "python_pinned_by", None)
    if not (pinned and by) or pinned == config.python:
        return ()
    return (f"{CONFIG_NAME} says python {config.python}, but {by} pins Python {pinned}: the image gets "
            f"{config.python}, and versions pinned for {pinned} may not install on it (set python: \"{pinned}\" "
            f"to follow {by})",)


def _version_twice(config: ProjectConfig, detected: object) -> tuple[str, ...]:
    """framework_version in dockyard.yaml beside a specifier in the requirements: the installer
    follows the requirements, so say which one holds (older inits copied lower bounds there)."""
    spec = dict(detected or {}).get(config.framework or "")  # type: ignore[call-overload]
    if not (config.framework_version and spec) or spec.lstrip("=") == config.framework_version:
        return ()
    return (f"framework_version {config.framework_version} in {CONFIG_NAME} and {config.framework}{spec} in the "
            "requirements: the build installs what the requirements allow, the plan checks framework_version; "
            f"remove framework_version from {CONFIG_NAME} so they cannot disagree",)


def _post_build(detection: object, config: ProjectConfig) -> str | None:
    script = getattr(detection, "post_build", None)
    needs_root = getattr(detection, "post_build_needs_root", None)
    if script and needs_root and not config.post_build_as_root:
        raise ConfigError(
            f"{script} needs root ({needs_root}), and dockyard runs it as the image user",
            "put system packages in apt.txt; or, if you accept a build step running as root, "
            f"set post_build_as_root: true in {CONFIG_NAME}",
        )
    return script


def image_train_command(project_dir: Path, command: str | None, model_variable: str | None) -> str | None:
    """The train image's CMD, and what a training Job or service runs: the command with parameter
    defaults filled in (so it runs what `dockyard train` runs without --param), wrapped so that
    ``model_variable`` is kept."""
    if not command:
        return command
    if "{" in command:
        from .detect.mlproject import command_parameters, with_defaults  # detection is imported lazily (slow)

        command = with_defaults(command, command_parameters(project_dir, command))
    return kept_model_command(command, model_variable)


def _project_choice(detection: object, config: ProjectConfig) -> tuple[Choice, ...]:
    """The project itself, when it is a package: installed editable, so its code stays the one in
    /app (and the one `dockyard notebook` mounts there), in a step after the dependencies."""
    package = getattr(detection, "package_file", None)
    if not package:
        return ()
    why = next((r.why for r in getattr(detection, "reasons", ()) if str(r.what).startswith("project:")), "")
    if not config.dependencies.install_project:
        return (Choice("project", "not installed", f"dependencies.install_project is false in {CONFIG_NAME}"),)
    return (Choice("project", f"uv pip install --no-deps -e {contract.APP_DIR} (from {package})",
                   f"{why}; editable, so the code it imports is the code in {contract.APP_DIR}; a step of its own "
                   f"after the dependencies, so a code edit never reinstalls them (set dependencies.install_project: "
                   f"false in {CONFIG_NAME} to skip)"),)


def _pin_inferred(names: tuple[str, ...], distribution: str | None, release: str | None) -> tuple[str, ...]:
    """Requirements inferred from imports: the primary framework pinned to the release compat/
    expects (so the plan says what gets installed, and rebuilds install the same)."""
    return tuple(f"{n}=={release}" if n == distribution and release and " " not in release else n for n in names)


def _locked_versions(project_dir: Path, lock: str | None) -> dict[str, str]:
    """``{canonical name: "==version (from LOCK)"}`` for what a `dockyard lock` file pins."""
    if not lock or not (project_dir / lock).is_file():
        return {}
    from .lock import locked_packages

    pins = (p.split("==", 1) for p in locked_packages((project_dir / lock).read_text(errors="replace")))
    return {canonicalize_name(n): f"=={v} (from {lock})" for n, v in pins}


def _with_app_server(project_dir: Path, config: ProjectConfig, detected: tuple[str, ...],
                     inferred_from: tuple[tuple[str, str], ...]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """With no dependency file dockyard chooses what is installed, so the server it runs serve.app
    under (gunicorn for WSGI, uvicorn for ASGI) is part of that choice: a Flask tutorial app with no
    requirements file otherwise failed with 'gunicorn is not installed', and nowhere to add it."""
    from .detect.webapp import app_at

    app = app_at(project_dir, config.serve.app) if config.serve.app else None
    if app is None or names_distribution(detected, app.server):
        return detected, inferred_from
    why = f"runs the {app.framework} app {config.serve.app} (serve.app); the project lists no server"
    return (*detected, app.server), (*inferred_from, (app.server, why))


def _inferred_choices(requirements: tuple[str, ...], inferred_from: tuple[tuple[str, str], ...],
                      python: str, locked: dict[str, str]) -> tuple[Choice, ...]:
    """One plan line per inferred requirement: what is installed, at which version, and which file
    asked for it."""
    why = dict(inferred_from)
    out = []
    for line in requirements:
        name = line.split("==", 1)[0]
        version = locked.get(canonicalize_name(name)) or (f"=={line.split('==', 1)[1]}" if "==" in line
                   else f" (unpinned: the newest release for Python {python} when the image is built; "
                        "`dockyard lock` pins it)")
        out.append(Choice("inferred requirement", f"{name}{version}", why.get(name, "imported")))
    return tuple(out)


def _wants_setuptools_without_pkg_resources(requirements: Sequence[str]) -> bool:
    """The project asks for a setuptools that has no pkg_resources (>= 81): never override that."""
    spec = specifier_for(requirements, "setuptools")
    return spec is not None and bool(spec) and not spec.contains(LAST_SETUPTOOLS_WITH_PKG_RESOURCES, prereleases=True)


def _with_local_torch(choices: tuple[Choice, ...], local: wheelhouse.LocalWheel, python: str,
                      cpu_index: str) -> tuple[Choice, ...]:
    """The framework and wheels lines of the plan, saying that torch comes from the host's wheelhouse."""
    out = []
    for c in choices:
        if c.what == "framework":
            c = Choice("framework", f"torch {local.version}", f"the CPU build in the host's wheelhouse ({local.source.folder})")
        elif c.what == "wheels" and c.value == "torch CPU":
            c = Choice("wheels", f"torch CPU: {local.path.name}",
                       f"{local.source.setting} names {local.source.folder}, which has a CPU build of torch for Python "
                       f"{python}: staged into the build instead of downloading from {cpu_index} "
                       f"({wheelhouse.OFF}=0 to download)")
        out.append(c)
    return tuple(out)


def _local_torch(sources: Sequence[wheelhouse.Source], res: Resolution,
                 requirements: tuple[str, ...]) -> wheelhouse.LocalWheel | None:
    if not sources or res.framework != "torch" or res.target != "cpu":
        return None
    return wheelhouse.cpu_torch(sources, requirements, res.python, platform.machine() or "x86_64")


def _index_options(detection: object) -> tuple[str, ...]:
    return tuple(getattr(detection, "index_options", ()) or ())


def _requirements(
    project_dir: Path, config: ProjectConfig, detected: tuple[str, ...], res: Resolution
) -> tuple[tuple[str, ...], bool, str | None]:
    if config.dependencies.lock:
        lock = project_dir / config.dependencies.lock
        if not lock.is_file():
            raise ConfigError(
                f"dependencies.lock names {config.dependencies.lock}, which does not exist",
                "run `dockyard lock` to create it, or remove dependencies.lock",
            )
        return (), True, config.dependencies.lock
    if config.dependencies.file and not (project_dir / config.dependencies.file).is_file():
        raise ConfigError(
            f"dependencies.file names {config.dependencies.file}, which does not exist in {project_dir}",
            f"create it, or fix dependencies.file in {CONFIG_NAME}",
        )
    renames = dict(res.package_renames)
    out = []
    for line in detected:
        out.append(_rename(line, renames))
    return tuple(out), False, None


def _rename(line: str, renames: dict[str, str]) -> str:
    try:
        req = Requirement(line)
    except InvalidRequirement:
        return line
    name = canonicalize_name(req.name)
    if name in renames:
        return renames[name] + line[len(req.name) :]
    return line


_SKIP_DIRS = {".git", ".dockyard", "__pycache__", ".venv", "venv", "env", ".mypy_cache", ".pytest_cache", "node_modules"}
_SKIP_FILES = {".env", ".dockerignore", "Dockerfile", ".gitignore", ".python-version"}


def code_entries(project_dir: Path, *, exclude: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Top-level project entries that form the code layer (ignored and weight files left out)."""
    from .render.dockerignore import is_ignored

    files, dirs = [], []
    for entry in sorted(os.listdir(project_dir)):
        if entry in exclude or entry in _SKIP_DIRS or entry in _SKIP_FILES or is_ignored(entry):
            continue
        path = project_dir / entry
        if path.is_dir():
            dirs.append(entry)
        elif path.is_file():
            files.append(entry)
    return tuple(files), tuple(dirs)


DOCKYARD_TARGETS = ("train", "serve", "dev")  # the stages dockyard's verbs build


def dockerfile_stages(text: str) -> tuple[str, ...]:
    """The stage names a Dockerfile declares (`FROM image AS name`), lower-cased, in order."""
    return tuple(m.lower() for m in re.findall(r"(?im)^\s*FROM\s+\S+\s+AS\s+(\S+)\s*$", text))


def _own_dockerfile_note(own: Path) -> tuple[str, ...]:
    """A project's own Dockerfile is built as it is for `dockyard build` and for the dockyard stages
    it declares; a verb whose stage it lacks (a serving-only Dockerfile has no `train`) builds
    dockyard's generated Dockerfile instead, and plan says which."""
    if not own.is_file():
        return ()
    stages = dockerfile_stages(own.read_text(errors="replace"))
    have = [t for t in DOCKYARD_TARGETS if t in stages]
    lacks = [t for t in DOCKYARD_TARGETS if t not in stages]
    text = f"{own.name}: the project's own, built as it is by `dockyard build`"
    if have:
        text += f" and for its stage{'s' if len(have) > 1 else ''} {', '.join(have)}"
    if lacks:
        text += (f"; it has no {'/'.join(lacks)} stage, so {', '.join(f'`{t}`' for t in lacks)} "
                 f"use{'s' if len(lacks) == 1 else ''} dockyard's generated Dockerfile (add a `FROM ... AS NAME` "
                 "stage to use yours)")
    return (text,)


def _safer_format(project_dir: Path, model_ctx: str | None) -> tuple[str, ...]:
    """Say when the served model is a pickle that a code-free format could replace (issue 14)."""
    if not model_ctx:
        return ()
    from .scan.models import safer_format_advice

    advice = safer_format_advice(project_dir / model_ctx)
    return (advice,) if advice else ()
