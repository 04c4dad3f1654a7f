"""Library verbs for a project folder: init, plan, build, run. The CLI only calls these."""

from __future__ import annotations

import collections
import configparser
import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from . import __version__, wheelhouse
from .base import local_base_refs
from .config import (
    CONFIG_NAME,
    SCHEMA_FILE,
    SCHEMA_URL_COMMENT,
    Dependencies,
    ProjectConfig,
    Serve,
    Train,
    dump_config,
    load_config,
    shipped_schema,
)
from .detect.thirdparty import missing_module_fix
from .engine import BuildResult, Engine, Mount, Printer, RiskyOptions, RunSpec, Secret
from .errors import BuildError, ConfigError, UsageError
from .names import claim_image
from .planning import BUILD_DIR, Plan, dockerfile_stages, make_plan
from .preflight import fit_local
from .render import render_dockerfile, render_dockerignore
from .runtime import contract
from .fsio import atomic_write_bytes, folder_lock



@dataclass(frozen=True)
class InitResult:
    path: Path
    config: ProjectConfig
    text: str
    notes: tuple[str, ...]


def init(project_dir: Path, *, force: bool = False, name: str | None = None) -> InitResult:
    """Detect what the project has and write dockyard.yaml (never overwrites without force)."""
    from .detect import detect, other_tool_files_unread

    project_dir = project_dir.resolve()
    if not project_dir.is_dir():
        raise UsageError(f"{project_dir} is not a directory", "pass the path of your project folder")
    target = project_dir / CONFIG_NAME
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists", "pass --force to overwrite it")
    found = detect(project_dir)
    framework = found.primary_framework
    serve = Serve()
    web_notes: list[str] = []
    if found.serve_entry and ":" in found.serve_entry:
        serve = Serve(predictor=found.serve_entry)
    elif found.serve_entry:
        serve = Serve(model=found.serve_entry)
    else:
        from .detect.requirements import names_distribution
        from .detect.webapp import find_web_app

        web = find_web_app(project_dir)
        if web is not None:  # the project's own FastAPI/Flask/... app
            serve = Serve(app=web.entry)
            web_notes = [f"serve: {web.entry}: {web.why}; it runs under {web.server}"]
            if found.inferred_requirements:  # no dependency file: dockyard chooses, the server included
                web_notes.append(f"serve: {web.server} is installed with the requirements inferred from imports")
            elif not names_distribution(found.requirements, web.server):
                web_notes.append(f"warning: add {web.server} to the requirements: dockyard runs the app under it "
                                 "and does not install it")
    config = ProjectConfig(
        name=name or _slug(project_dir.name),
        python=found.python_version or "3.11",
        framework=framework,
        dependencies=Dependencies(file=found.dependency_file, kind=found.dependency_kind),  # type: ignore[arg-type]
        train=Train(command=found.train_command, notebook=found.train_notebook,
                    model_variable=found.train_model_variable),
        serve=serve,
    )
    from .interop import bentoml, cog as cog_interop

    # A Cog or BentoML project: cog.yaml / bentofile.yaml say more than detection does
    cog = cog_interop.translate(project_dir, config)
    translated = "cog.yaml" if cog is not None else None
    if cog is None:
        cog = bentoml.translate(project_dir, config)
        translated = bentoml.BENTOFILE if cog is not None else None
    if cog is not None:
        config = cog.config
    schema = write_schema(project_dir)
    text = (f"{SCHEMA_URL_COMMENT}{schema.relative_to(project_dir)}\n"  # editors validate the file with it
            "# dockyard project config: see `dockyard plan` for what it resolves to\n" + dump_config(config))
    atomic_write_bytes(target, text.encode(), mode=None)
    notes = tuple(f"{r.what}: {r.why}" for r in found.reasons) + tuple(f"warning: {w}" for w in found.warnings)
    notes += (cog.notes if cog is not None else ()) + tuple(web_notes)
    notes += tuple(f"warning: {w}" for w in other_tool_files_unread(project_dir, translated))
    return InitResult(target, config, text, notes)


def write_schema(project_dir: Path) -> Path:
    """PROJECT/.dockyard/dockyard.schema.json: the installed dockyard's schema of dockyard.yaml,
    which the file's first line names for editors (written by init, refreshed by every build)."""
    build = project_dir / BUILD_DIR
    build.mkdir(exist_ok=True)
    (build / ".gitignore").write_text("*\n")
    target = build / SCHEMA_FILE
    _write_if_changed(target, shipped_schema().read_text(encoding="utf-8"))
    return target


def _slug(name: str) -> str:
    import re

    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return slug or "project"


def plan(
    project_dir: Path, *, engine: Engine | None = None, model_file: str | None = None, model_version: str | None = None,
    dev: bool = False,
) -> tuple[Plan, str]:
    """The resolved plan and its Dockerfile text (with the ``dev`` target when ``dev``)."""
    bases = frozenset(local_base_refs(engine)) if engine else frozenset()
    p = make_plan(project_dir, local_bases=bases, model_file=model_file, model_version=model_version,
                  host_wheels=wheelhouse.host_sources())
    return p, render_dockerfile(p, version=__version__, dev=dev)


@dataclass(frozen=True)
class BuildOutcome:
    tag: str
    image_id: str
    seconds: float
    target: str
    dockerfile: Path
    plan: Plan | None
    own_dockerfile: bool


def prepare(project_dir: Path, p: Plan, dockerfile_text: str) -> Path:
    """Write the generated build inputs into PROJECT/.dockyard (requirements, runtime, Dockerfile)."""
    build = write_schema(project_dir).parent
    if p.locked and p.lock_file:
        shutil.copyfile(project_dir / p.lock_file, build / "requirements.lock")
    else:
        lines = list(p.index_options) + list(p.requirements)
        _write_if_changed(build / "requirements.txt", "\n".join(lines) + "\n")
    wheelhouse.stage(build, [Path(w) for w in p.local_wheels])
    runtime_dst = build / "runtime" / "dockyard_runtime"
    shutil.rmtree(runtime_dst, ignore_errors=True)
    src = Path(str(resources.files("dockyard").joinpath("runtime")))
    shutil.copytree(src, runtime_dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # `from dockyard import log_metric` inside training containers: a stdlib-only shim.
    shim = build / "runtime" / "dockyard"
    shim.mkdir(parents=True, exist_ok=True)
    metrics_src = Path(str(resources.files("dockyard").joinpath("store", "metrics.py")))
    _write_if_changed(shim / "metrics.py", metrics_src.read_text())
    _write_if_changed(shim / "__init__.py", '"""dockyard helpers inside images."""\nfrom .metrics import *  # noqa: F403\nfrom .metrics import log_metric, log_param  # noqa: F401\n')
    dockerfile = build / "Dockerfile"
    _write_if_changed(dockerfile, dockerfile_text)
    ignore = render_dockerignore()
    user_ignore = project_dir / ".dockerignore"
    if user_ignore.is_file():
        ignore += "# from the project's .dockerignore\n" + user_ignore.read_text()
    _write_if_changed(build / "Dockerfile.dockerignore", ignore)
    return dockerfile


MODEL_STAGE = f"{BUILD_DIR}/model"  # build-context path of the staged weights


def clear_model_stage(project_dir: Path) -> Path:
    """Empty PROJECT/.dockyard/model (removed; the caller fills it) and return its path."""
    dest = project_dir / MODEL_STAGE
    shutil.rmtree(dest, ignore_errors=True)
    return dest


def stage_model(project_dir: Path, model_file: Path) -> str:
    """Copy a model file into PROJECT/.dockyard/model and return that context path."""
    if not model_file.is_file():
        raise ConfigError(f"model file {model_file} does not exist", "train first, or fix serve.model / --model")
    dest = clear_model_stage(project_dir)
    dest.mkdir(parents=True)
    shutil.copy2(model_file, dest / model_file.name)
    return MODEL_STAGE


def stage_model_dir(project_dir: Path, model_dir: Path) -> str:
    """Copy a model directory (an MLflow MLmodel dir) into PROJECT/.dockyard/model/<its name>."""
    dest = clear_model_stage(project_dir)
    dest.mkdir(parents=True)
    shutil.copytree(model_dir, dest / (model_dir.name or "model"), symlinks=False)
    return MODEL_STAGE


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        atomic_write_bytes(path, text.encode(), mode=None)


def eject(project_dir: Path, *, engine: Engine | None = None, force: bool = False) -> Path:
    """Write the generated Dockerfile (and .dockerignore) into the project for the user to own."""
    project_dir = project_dir.resolve()
    target = project_dir / "Dockerfile"
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists", "pass --force to overwrite it")
    p, text = plan(project_dir, engine=engine)
    prepare(project_dir, p, text)
    target.write_text(text)
    ignore = project_dir / ".dockerignore"
    if not ignore.exists():
        ignore.write_text(render_dockerignore())
    return target


def host_ca_bundle() -> Path | None:
    """The CA bundle the host trusts for HTTPS (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, pip's `cert`)."""
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    parser = configparser.ConfigParser()
    paths = ["/etc/pip.conf", "/etc/xdg/pip/pip.conf", os.path.expanduser("~/.pip/pip.conf"),
             os.path.expanduser("~/.config/pip/pip.conf"), os.environ.get("PIP_CONFIG_FILE", "")]
    parser.read([p for p in paths if p])
    for section in ("global", "install"):
        cert = parser.get(section, "cert", fallback=None)
        if cert and Path(cert).is_file():
            return Path(cert)
    return None


def build_secrets(extra: Sequence[Secret], config_secrets: Sequence[Secret] = ()) -> list[Secret]:
    """The user's build secrets plus the host CA bundle (as `dockyard_ca`) when there is one."""
    secrets = list(extra) + list(config_secrets)
    ca = host_ca_bundle()
    if ca is not None and all(s.id != contract.CA_SECRET_ID for s in secrets):
        secrets.append(Secret(id=contract.CA_SECRET_ID, src=str(ca)))
    return secrets


def image_tag(name: str, target: str, tag: str | None) -> str:
    if tag:
        return tag
    return f"{name}:latest" if target == "serve" else f"{name}:{target}"


def one_build_at_a_time(project_dir: Path, on_line: Printer | None) -> contextlib.AbstractContextManager[None]:
    """Held while a command writes PROJECT/.dockyard's build inputs and builds from them: a second
    build of the same folder (another terminal, another target or model version) waits for the
    first instead of overwriting its Dockerfile, requirements or staged weights mid-build."""
    def waiting() -> None:
        if on_line:
            on_line(f"another dockyard command is building {project_dir}: waiting for it to finish")

    return folder_lock(project_dir, on_wait=waiting)


def build(
    project_dir: Path,
    engine: Engine,
    *,
    tag: str | None = None,
    target: str | None = None,
    secrets: Sequence[Secret] = (),
    model_file: str | None = None,
    on_line: Printer | None = None,
    no_cache: bool = False,
    labels: Mapping[str, str] | None = None,
    bootstrap_base: bool = True,
    allow_unsafe_model: bool = False,
    replace: bool = False,
    announce: bool = True,
) -> BuildOutcome:
    """Build the project image with BuildKit and return its id. ``labels`` add provenance
    (model version, metrics...) on top of the OCI and dockyard labels. When the engine cannot
    pull a CPU base and ``bootstrap_base``, the base is made from Debian or Ubuntu packages (`dockyard
    base bootstrap`, progress on ``on_line``) and the build runs again on it. A pickle-family
    model file is baked in only when it passes the pickle gate (or ``allow_unsafe_model``).
    A tag that another project folder owns is refused unless ``replace`` (dockyard.names).
    Plan's warnings (a lock file left out, a Python other than the pinned one...) go to
    ``on_line`` first, as `plan` prints them: build, run and train users see them too."""
    project_dir = project_dir.resolve()
    engine.require_buildkit()
    with one_build_at_a_time(project_dir, on_line):
        return _build(project_dir, engine, tag=tag, target=target, secrets=secrets, model_file=model_file,
                      on_line=on_line, no_cache=no_cache, labels=labels, bootstrap_base=bootstrap_base,
                      allow_unsafe_model=allow_unsafe_model, replace=replace, announce=announce)


def _build(project_dir: Path, engine: Engine, *, tag: str | None, target: str | None, secrets: Sequence[Secret],
           model_file: str | None, on_line: Printer | None, no_cache: bool, labels: Mapping[str, str] | None,
           bootstrap_base: bool, allow_unsafe_model: bool, replace: bool, announce: bool) -> BuildOutcome:
    cfg = load_config(project_dir)
    if model_file is None and (target or "serve") == "serve":
        model_file = cfg.serve.model
    if model_file and not model_file.startswith(BUILD_DIR):
        path = Path(model_file) if os.path.isabs(model_file) else project_dir / model_file
        if not allow_unsafe_model:  # an image is pushed and deployed: gate what it will unpickle
            from .serving import check_model_safety

            check_model_safety(project_dir, str(path), allow_unsafe=False)
        model_file = stage_model(project_dir, path)
    p, text = plan(project_dir, engine=engine, model_file=model_file,
                   model_version=(labels or {}).get(contract.LABEL_MODEL_VERSION), dev=target == "dev")
    labels = {**_oci_labels(project_dir, p), **(labels or {})}
    cfg_secrets = [Secret.parse(_secret_text(s.id, s.src, s.env, project_dir)) for s in cfg.build_secrets]
    all_secrets = build_secrets(secrets, cfg_secrets)
    own_path = project_dir / p.own_dockerfile if p.own_dockerfile else None
    if own_path is not None and target and target not in dockerfile_stages(own_path.read_text(errors="replace")):
        # A serving-only Dockerfile has no `train` stage (nor `dev`, nor a model-baking `serve`):
        # that verb builds dockyard's generated Dockerfile; plan says so too.
        if on_line:
            on_line(f"{own_path} has no `{target}` stage: building dockyard's generated Dockerfile for "
                    f"`{target}` (add a `FROM ... AS {target}` stage to build yours)")
        own_path = None
    if own_path is not None:
        dockerfile = own_path
        chosen = target or ""
        ref = image_tag(p.name, chosen or "serve", tag)
        claim_image(engine, ref, project_dir, replace=replace)
        try:
            own = engine.build(project_dir, dockerfile, ref, secrets=all_secrets, labels=labels,
                               target=target, on_line=on_line, no_cache=no_cache)
        except BuildError as exc:
            raise _own_base_unreachable(exc, dockerfile, p) or exc from None
        return BuildOutcome(ref, own.image_id, own.seconds, chosen or "(Dockerfile default)", dockerfile, None, True)
    dockerfile = prepare(project_dir, p, text)
    if on_line and announce:
        for warning in p.warnings:
            on_line(f"warning: {warning}")
    chosen = target or p.default_target
    if chosen == "serve" and not (p.serve_predictor or p.serve_model or p.serve_app):
        raise ConfigError("nothing to serve: dockyard.yaml has no serve.predictor or serve.model",
                          "add serve.predictor: predict.py:Predictor, or pass --model FILE")
    ref = image_tag(p.name, chosen, tag)
    claim_image(engine, ref, project_dir, replace=replace)
    try:
        res: BuildResult = engine.build(project_dir, dockerfile, ref, secrets=all_secrets, labels=labels,
                                        target=chosen, on_line=on_line, no_cache=no_cache)
    except BuildError as exc:
        unreachable = _base_unreachable(exc, p)
        if unreachable is None:
            raise
        if not (bootstrap_base and _can_bootstrap(p)):
            raise unreachable from None
        _bootstrap_base(engine, p, unreachable, on_line)
        return build(project_dir, engine, tag=tag, target=target, secrets=secrets, model_file=model_file,
                     on_line=on_line, no_cache=no_cache, labels=labels, bootstrap_base=False, replace=replace,
                     announce=False)
    return BuildOutcome(ref, res.image_id, res.seconds, chosen, dockerfile, p, False)


def _can_bootstrap(p: Plan) -> bool:
    from .base import supported_pythons
    from .compat.resolver import compat_data

    official = compat_data()["bases"]["cpu"]["final"].format(python=p.python)  # not a base_image override
    return p.target == "cpu" and p.python in supported_pythons() and p.base_final == official


def _bootstrap_base(engine: Engine, p: Plan, unreachable: BuildError, on_line: Printer | None) -> None:
    """Make the missing base locally (announced in `plan`), or fail with the command to run."""
    from .base import bootstrap
    from .compat.bases import suite_for
    from .errors import DockyardError

    release = suite_for(p.python)
    if on_line:
        on_line(f"{unreachable.problem}: making dockyard/python:{p.python}-slim from "
                f"{release.label if release else 'Debian'} packages instead "
                f"(`dockyard base bootstrap --python {p.python}`; a few minutes, once)")
    try:
        bootstrap(engine, p.python, on_line=on_line)
    except DockyardError as exc:
        raise BuildError(f"{unreachable.problem}, and making it locally failed: {exc.problem}",
                         exc.fix or unreachable.fix, log_tail=unreachable.log_tail) from None


def _base_unreachable(exc: BuildError, p: Plan) -> BuildError | None:
    """A base image the engine could not pull: name the command that makes it locally (or say
    why none can), instead of the generic --no-cache advice."""
    text = f"{exc.problem}\n{exc.log_tail}"
    base = next((b for b in (p.base_final, p.base_builder) if f"load metadata for docker.io/library/{b}" in text
                 or f"load metadata for {b}" in text), None)
    if base is None:
        return None
    from .compat.bases import releases_text, suite_for

    problem = f"the engine cannot pull the base image {base} (no registry access?)"
    release = suite_for(p.python)
    if p.target == "cpu" and release is not None:
        fix = (f"run `dockyard base bootstrap --python {p.python}` (builds dockyard/python:{p.python}-slim from "
               f"{release.label} packages, no registry needed), then build again")
    elif p.target == "cpu":
        fix = (f"no Debian or Ubuntu release dockyard knows ships Python {p.python} as python3, so `dockyard base "
               f"bootstrap` cannot make it: set python: to one of {releases_text()} in dockyard.yaml, "
               f"or `docker load` {base}")
    else:
        fix = f"give the engine access to {base}'s registry, or `docker load` the image"
    return BuildError(problem, fix, step=exc.step, log_tail=exc.log_tail)


def _own_base_unreachable(exc: BuildError, dockerfile: Path, p: Plan) -> BuildError | None:
    """The project's own Dockerfile names a base the engine cannot pull: say which, and the way
    out that needs no registry (dockyard's generated Dockerfile, on a base it can bootstrap)."""
    found = re.search(r"load metadata for (\S+?):\s", f"{exc.problem}\n{exc.log_tail}")
    if found is None:
        return None
    image = found.group(1).removeprefix("docker.io/library/")
    return BuildError(
        f"the engine cannot pull {image}, which {dockerfile.name} builds FROM (no registry access?)",
        f"give the engine access to its registry, or `docker load` {image}; or move {dockerfile.name} aside: "
        f"dockyard then generates one on dockyard/python:{p.python}-slim, which it makes without a registry "
        f"(`dockyard base bootstrap --python {p.python}`)",
        step=exc.step, log_tail=exc.log_tail)


def _secret_text(sid: str, src: str | None, env: str | None, project_dir: Path) -> str:
    if src:
        path = Path(src) if os.path.isabs(src) else project_dir / src
        return f"id={sid},src={path}"
    return f"id={sid},env={env}"


def _oci_labels(project_dir: Path, p: Plan) -> dict[str, str]:
    """Labels that change per build go on the command line, so the Dockerfile stays deterministic."""
    revision, dirty = git_revision(project_dir)
    labels = {
        "org.opencontainers.image.created": source_date(project_dir, p, clean_git=revision != "unknown" and not dirty),
        "org.opencontainers.image.revision": revision + ("-dirty" if dirty else ""),
        "org.opencontainers.image.source": git_remote(project_dir) or f"file://{project_dir}",
        "org.opencontainers.image.version": os.environ.get("DOCKYARD_VERSION", "dev"),
        "org.opencontainers.image.title": p.name,
        contract.LABEL_VERSION: __version__,
        contract.LABEL_PROJECT: str(project_dir),  # the folder that owns the tag (dockyard.names)
        contract.LABEL_NAME: p.name,  # also on images built from the project's own Dockerfile
    }
    if p.locked:
        from .lock import lock_hash

        labels[contract.LABEL_LOCK_HASH] = lock_hash(project_dir) or "unknown"
    return labels


def source_date(project_dir: Path, p: Plan, *, clean_git: bool) -> str:
    """A reproducible `created` stamp, so unchanged sources give the same image id:
    SOURCE_DATE_EPOCH if set, else the commit time of a clean checkout, else the newest
    modification time among the files that go into the image."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch and clean_git:
        epoch = _git(project_dir, "log", "-1", "--format=%ct")
    if not epoch:
        paths = [project_dir / f for f in (*p.code_files, *p.model_files)]
        for d in p.code_dirs:
            paths += [f for f in (project_dir / d).rglob("*") if f.is_file()]
        epoch = str(int(max((f.stat().st_mtime for f in paths if f.exists()), default=0)))
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(project_dir: Path, *args: str) -> str | None:
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "-C", str(project_dir), *args], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_revision(project_dir: Path) -> tuple[str, bool]:
    rev = _git(project_dir, "rev-parse", "HEAD")
    if not rev:
        return "unknown", False
    status = _git(project_dir, "status", "--porcelain", "--untracked-files=no")
    return rev, bool(status)


def git_remote(project_dir: Path) -> str | None:
    return _git(project_dir, "config", "--get", "remote.origin.url") or None


RUNS_DIR = f"{BUILD_DIR}/runs"  # where `dockyard run` copies what a command wrote (inside the project)


@dataclass(frozen=True)
class RunFiles:
    """What a `dockyard run` command wrote into its working copy of the project, and where the
    copies went on the host (owned by the user who ran dockyard, never by the container's uid)."""

    destination: Path
    files: tuple[str, ...]  # project-relative, as the command saw them under /app
    elsewhere: tuple[str, ...] = ()  # would have replaced a different file in --output: kept in fallback
    fallback: Path | None = None


def run(
    project_dir: Path,
    engine: Engine,
    command: Sequence[str],
    *,
    cpus: float | None = None,
    memory: str | None = None,
    gpus: str | None = None,
    volumes: Sequence[str] = (),
    env: Sequence[str] = (),
    on_line: Printer | None = None,
    build_line: Printer | None = None,
    allow_dangerous_mounts: bool = False,
    risky: RiskyOptions | None = None,
    output: Path | None = None,
    on_files: Callable[[RunFiles], None] | None = None,
    replace: bool = False,
    on_hint: Callable[[str], None] | None = None,
) -> int:
    """Build (or reuse) the project image and run a command in it; returns the exit code.

    The command runs in a writable copy of the image's /app (the mechanism `train` uses), so
    scripts that write beside themselves work under the read-only root. Afterwards the files it
    created or changed there are copied to ``output`` (default PROJECT/.dockyard/runs/RUN-ID/),
    never over a different existing file, and ``on_files`` hears where they went (also when
    Ctrl-C stops the command). The project folder itself is never written by the container.
    ``risky`` carries RunSpec's privileged/host_* requests and their allow_* acknowledgements.
    A command that died of ModuleNotFoundError gets ``on_hint`` with the distribution to add."""
    from .config import load_config
    from .engine import validate_run_spec
    from .store import Store
    from .train import changed_files, claim_work, new_run_id, prepare_workdir, remove_work, sweep_killed_runs

    project_dir = project_dir.resolve()
    cfg = load_config(project_dir)
    mounts = tuple(parse_volume(v) for v in volumes)
    # Refuse risky requests before spending time on a build.
    validate_run_spec(RunSpec(image="", mounts=mounts, allow_dangerous_mounts=allow_dangerous_mounts, **(risky or {})))
    explicit = {*cfg.resources.model_fields_set, *(["cpus"] if cpus else []), *(["memory"] if memory else [])}
    fit_cpus, fit_memory = fit_local(engine, cpus or cfg.resources.cpus, memory or cfg.resources.memory,
                                     explicit=tuple(explicit), what="run")
    outcome = build(project_dir, engine, target="train", on_line=build_line, replace=replace)
    run_id = f"run-{new_run_id(cfg.name)}"
    work_root = Store().root / "work"
    work = work_root / run_id
    sweep_killed_runs(engine, outcome.image_id, work_root)
    try:
        claim_work(work)
        workdir, before = prepare_workdir(engine, outcome.image_id, work)
        if workdir and not any(m.target.rstrip("/") == workdir for m in mounts):
            mounts = (Mount(str(work / "app"), workdir), *mounts)
        spec = RunSpec(
            image=outcome.image_id,
            command=tuple(command),
            cpus=fit_cpus,
            memory=fit_memory,
            pids=cfg.resources.pids,
            gpus=gpus or cfg.resources.gpus,
            mounts=mounts,
            env=dict(parse_env(e) for e in env),
            labels={contract.LABEL_NAME: cfg.name},
            allow_dangerous_mounts=allow_dangerous_mounts,
            **(risky or {}),
        )

        def keep_files() -> None:
            changed = changed_files(work / "app", before) if workdir and (work / "app").is_dir() else []
            if changed:
                saved = copy_run_files(changed, output, project_dir / RUNS_DIR / run_id)
                if on_files:
                    on_files(saved)

        recent: collections.deque[str] = collections.deque(maxlen=40)

        def line(text: str) -> None:
            recent.append(text)
            if on_line:
                on_line(text)

        try:
            code = engine.run(spec, on_line=line)
        except KeyboardInterrupt:  # the container is gone; what it wrote until then is kept
            keep_files()
            raise
        keep_files()
        missing = missing_module_fix("\n".join(recent), cfg.dependencies.file) if code else None
        if missing and on_hint:
            on_hint(missing)
        return code
    finally:
        remove_work(engine, outcome.image_id, work)


def copy_run_files(changed: Sequence[tuple[str, Path]], output: Path | None, default: Path) -> RunFiles:
    """Copy what a run wrote to ``output`` (else ``default``), keeping relative paths. A file that
    would replace a different one in ``output`` goes under ``default`` instead: nothing of the
    user's is overwritten."""
    dest = (output or default).resolve()
    copied, elsewhere = [], []
    for rel, src in changed:
        target = dest / rel
        if output is not None and (target.exists() or target.is_symlink()):
            if target.is_file() and not target.is_symlink() and target.read_bytes() == src.read_bytes():
                copied.append(rel)
                continue
            target = default / rel
            elsewhere.append(rel)
        else:
            copied.append(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    return RunFiles(dest, tuple(copied), tuple(elsewhere), default if elsewhere else None)


def parse_volume(text: str) -> Mount:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
        raise UsageError(f"bad -v {text!r}", "use -v HOST_PATH:/container/path[:ro]")
    if len(parts) == 3 and parts[2] not in ("ro", "rw"):
        raise UsageError(f"bad -v mode {parts[2]!r} in {text!r}", "the mode is ro or rw")
    if not os.path.exists(parts[0]):
        raise UsageError(f"-v source {parts[0]} does not exist", "create it or fix the path")
    return Mount(parts[0], parts[1], read_only=len(parts) == 3 and parts[2] == "ro")


def parse_env(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise UsageError(f"bad --env {text!r}", "use --env NAME=VALUE")
    key, value = text.split("=", 1)
    return key, value
