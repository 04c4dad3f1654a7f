"""The build plan: every decision about an image, as one plain value.

``make_plan`` reads the project (config + detection) and resolves compatibility;
``render`` turns a Plan into Dockerfile text without looking at anything else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from .compat.resolver import Choice, Resolution, resolve
from .config import CONFIG_NAME, ProjectConfig, load_config
from .errors import ConfigError
from .interop.bentoml import model_entry as bentoml_model_entry
from .interop.cog import needs_cog
from .interop.mlflow_serving import newest_mlmodel_dir, serving_requirements
from .runtime.cog_model import is_cog_predictor

USER_UID = 10001  # the `dockyard` user baked into every image; train, secrets and deploy run as it
BUILD_DIR = ".dockyard"  # generated build inputs inside the project (like Cog's .cog/)
MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle", ".onnx", ".pt", ".pth", ".keras", ".ubj", ".safetensors", ".lgb")


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
    port: int
    workers: int
    max_batch_size: int
    max_batch_wait_ms: float
    build_secret_ids: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    choices: tuple[Choice, ...]
    warnings: tuple[str, ...] = ()
    own_dockerfile: str | None = None  # the project's own Dockerfile, honoured as-is
    model_version: str | None = None  # the stored version baked in (V2 metadata reports it)
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    serve_app: str | None = None  # the project's own ASGI/WSGI app, FILE.py:NAME

    @property
    def default_target(self) -> str:
        return "serve" if (self.serve_predictor or self.serve_model or self.serve_app) else "train"


def make_plan(
    project_dir: Path,
    *,
    local_bases: frozenset[str] = frozenset(),
    model_file: str | None = None,
    model_version: str | None = None,
) -> Plan:
    """Config + detection + compat data -> Plan. Reads project files; touches no engine."""
    from .detect import detect  # local import: detection is the slowest part of plan

    project_dir = project_dir.resolve()
    config = load_config(project_dir)
    detection = detect(project_dir)
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
    requirements, locked, lock_file = _requirements(project_dir, config, detection.requirements, res)
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
    if model_ctx and not config.serve.predictor:
        serve_model = _model_entry(project_dir, model_ctx)
    files, dirs = code_entries(project_dir, exclude={m.split("/")[0] for m in model_files})
    own = project_dir / "Dockerfile"
    return Plan(
        name=config.name,
        python=res.python,
        framework=config.framework,
        target=res.target,
        base_final=res.base_final,
        base_builder=res.base_builder,
        requirements=requirements,
        index_options=tuple(f"--extra-index-url {u}" for u in res.extra_index_urls) + _index_options(detection),
        locked=locked,
        lock_file=lock_file,
        system_packages=tuple(dict.fromkeys(config.system_packages + res.system_packages)),
        warm_imports=res.warm_imports if config.serve.bytecode else (),
        uv_version=res.uv_version,
        train_command=config.train.command,
        serve_predictor=config.serve.predictor,
        serve_model=serve_model,
        code_files=files,
        code_dirs=dirs,
        model_files=model_files,
        env=tuple(sorted(config.env.items())),
        port=config.serve.port,
        workers=config.serve.workers,
        max_batch_size=config.serve.max_batch_size,
        max_batch_wait_ms=config.serve.max_batch_wait_ms,
        build_secret_ids=tuple(s.id for s in config.build_secrets),
        labels=(
            ("io.dockyard.config-hash", config.config_hash()),
            ("io.dockyard.framework", f"{config.framework or 'none'}"),
            ("io.dockyard.python", res.python),
            ("io.dockyard.target", res.target),
            ("io.dockyard.name", config.name),
        ),
        choices=res.choices,
        warnings=tuple(detection.warnings),
        own_dockerfile="Dockerfile" if own.is_file() else None,
        model_version=model_version,
        serve_app=config.serve.app,
    )


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
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in MODEL_SUFFIXES) if path.is_dir() else []
    if not found:
        raise ConfigError(f"no model file in {context_path}", f"expected one of {', '.join(MODEL_SUFFIXES)}")
    return str(found[0].relative_to(path))


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
    name = re.sub(r"[-_.]+", "-", req.name).lower()
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
