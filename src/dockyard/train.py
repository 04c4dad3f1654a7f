"""Training runs in containers, and capturing what they produce as a model version.

``train()`` builds (or, with ``reproduce``, reuses) the project's train image and runs the train
command in a hardened container:

* ``--data`` is mounted read-only at ``/data`` (``$DOCKYARD_DATA``);
* a host directory is mounted writable at ``/outputs`` (``$DOCKYARD_OUTPUTS``);
* the image's working directory (``/app``) is replaced by a writable host *copy of the image's
  own files*, so a project that writes ``model.joblib`` or ``mlruns/`` next to its code works
  unchanged under a read-only root, and whatever it adds or changes there is captured too;
* params become ``PARAM_<NAME>`` variables plus ``DOCKYARD_PARAMS`` (JSON);
* secrets become read-only files under ``/run/secrets/`` (never env, never the image), and their
  values are masked in every log line;
* ``from dockyard import log_metric`` works inside the container through a read-only mount of
  the stdlib-only ``store/metrics.py``.

A successful run becomes the next version ``name:N`` in the model store; any other ending
(non-zero exit, OOM kill, timeout, Ctrl-C, nothing written) is kept as a failed run with its logs.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import secrets as _random
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from .config import ProjectConfig, load_config
from .detect.mlproject import command_parameters, render_command
from .detect.thirdparty import missing_module_fix
from .engine import Engine, Mount, Printer, RunSpec, Secret, run_args
from .errors import ConfigError, DockyardError, RunError, StoreError, UsageError
from .interop import bentoml, mlflow_capture
from .lifecycle import run_labels
from .names import claim_model
from .planning import kept_model_command, notebook_command
from .preflight import fit_local
from .runtime import contract
from .runtime.contract import OUTPUTS_DIR, SECRETS_DIR, USER_GID, USER_UID
from .store import (
    GitInfo,
    ImageInfo,
    ModelVersion,
    Resources,
    RunRecord,
    Store,
    describe_failure,
    fingerprint_dir,
    parse_ref,
)
from .runsecrets import check_secrets, secret_file, secret_values
from .fsio import hash_file
from .store.fingerprint import iter_files

DATA_DIR = contract.DATA_DIR  # --data, read-only
HELPERS_DIR = "/opt/dockyard/helpers"
STOP_GRACE_S = 5
LOG_TAIL = 20
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

log = logging.getLogger("dockyard.train")


@dataclass(frozen=True)
class TrainOutcome:
    """A finished, stored training run."""

    version: ModelVersion
    run_id: str
    image_id: str
    seconds: float
    captured: tuple[str, ...]  # files the run wrote into its working directory (not /outputs)


@dataclass(frozen=True)
class _Plan:
    """What to run: decided before any container starts."""

    name: str
    image_id: str
    image_ref: str
    command: tuple[str, ...]
    params: Mapping[str, str]
    data: Path | None
    data_fingerprint: str | None
    resources: Resources
    pids: int
    dependency_file: str | None = None  # where a missing module's distribution goes (the failure's fix)


@dataclass(frozen=True)
class _Ending:
    """How the container ended."""

    exit_status: int | None
    oom_killed: bool = False
    timed_out: bool = False


# --- public ---------------------------------------------------------------------------------


def train(
    project_dir: Path,
    engine: Engine,
    *,
    data: Path | None = None,
    params: Mapping[str, str] | None = None,
    cpus: float | None = None,
    memory: str | None = None,
    gpus: str | None = None,
    timeout: float | None = None,
    secrets: Sequence[Secret] = (),
    store: Store | None = None,
    on_line: Printer | None = None,
    build_line: Printer | None = None,
    reproduce: str | None = None,
    labels: Mapping[str, str] | None = None,
    replace: bool = False,
) -> TrainOutcome:
    """Run the project's train command in a container and store the result as ``name:N``.

    Raises ``RunError`` for a failed run (its ``exit_code`` is the container's exit status for a
    plain non-zero exit), ``UsageError``/``ConfigError`` for bad input (always before any build),
    and re-raises ``KeyboardInterrupt`` after removing the container. A model name (or train
    image tag) another project folder owns is refused before anything runs, unless ``replace``
    (dockyard.names).
    """
    project_dir = Path(project_dir).resolve()
    cfg = load_config(project_dir)
    store = store or Store()
    params = dict(params or {})
    data = check_data(data)
    _check_params(params)
    check_secrets(secrets)
    _check_limits(cpus, memory)
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {timeout:g}",
                         "pass e.g. --timeout 3600")
    explicit = {*cfg.resources.model_fields_set, *(["cpus"] if cpus else []), *(["memory"] if memory else [])}
    fit_cpus, fit_memory = fit_local(engine, cpus or cfg.resources.cpus, memory or cfg.resources.memory,
                                     explicit=tuple(explicit), what="train")
    res = Resources(cpus=fit_cpus, memory=fit_memory, gpus=gpus or cfg.resources.gpus)
    labels = {**run_labels(project_dir, cfg.name, "train"), **(labels or {})}
    claim_model(store, cfg.name, project_dir, replace=replace)
    if reproduce:
        plan = _reproduce_plan(reproduce, engine, store, cfg, data, params, res)
    else:
        plan = _build_plan(project_dir, engine, cfg, data, params, res, build_line, replace)
    return _execute(project_dir, engine, store, plan, secrets=secrets, timeout=timeout,
                    on_line=on_line, labels=labels or {})


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``["C=0.1", "max_iter=50"]`` -> ``{"C": "0.1", "max_iter": "50"}`` (for the CLI)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --param {item!r}", "use --param NAME=VALUE, e.g. --param C=0.1")
        out[key.strip()] = value
    _check_params(out)
    return out


def param_env(params: Mapping[str, str]) -> dict[str, str]:
    """The environment a train container gets for its params."""
    env = {f"PARAM_{k.upper()}": v for k, v in params.items()}
    env["DOCKYARD_PARAMS"] = json.dumps(dict(params), sort_keys=True)
    return env


# --- checks before any build ----------------------------------------------------------------


def check_data(data: Path | None) -> Path | None:
    """`--data DIR` (train, notebook): an existing directory, resolved; None when not given."""
    if data is None:
        return None
    path = Path(data).expanduser().resolve()
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise UsageError(f"--data {data} {what}", "pass an existing directory of data")
    return path


def _check_params(params: Mapping[str, str]) -> None:
    seen: dict[str, str] = {}
    for key in params:
        if not _PARAM_NAME.fullmatch(key):
            raise UsageError(f"bad param name {key!r}: it becomes the variable PARAM_{key.upper()}",
                             "use letters, digits and _ (not starting with a digit), e.g. max_iter")
        other = seen.setdefault(key.upper(), key)
        if other != key:
            raise UsageError(f"params {other!r} and {key!r} both become PARAM_{key.upper()}",
                             "give each param once, in one spelling")


def _check_limits(cpus: float | None, memory: str | None) -> None:
    # The contract's parsers: docker's own semantics ("1.5g", and "2G" = 2 GiB).
    flag: str = "cpus"
    value: object = cpus
    try:
        if cpus is not None:
            contract.parse_cpus(cpus)
        flag, value = "memory", memory
        if memory is not None:
            contract.parse_memory(memory)
    except contract.AmountError as exc:
        raise UsageError(f"bad --{flag} {value!r}: {exc}", "pass e.g. --cpus 0.5 --memory 1.5g") from None


def _build_plan(project_dir: Path, engine: Engine, cfg: ProjectConfig, data: Path | None,
                params: Mapping[str, str], res: Resources, build_line: Printer | None,
                replace: bool = False) -> _Plan:
    from . import project

    command = cfg.train.command or notebook_command(project_dir, cfg.train.notebook)
    if not command:
        raise ConfigError(f"{project_dir / 'dockyard.yaml'} has no train.command",
                          "add e.g. `train: {command: python train.py}` (or `train: {notebook: train.ipynb}`)"
                          " to dockyard.yaml")
    if cfg.train.command:
        command, params = command_for_run(project_dir, cfg.train.command, params)
        command = kept_model_command(command, cfg.train.model_variable)
    fingerprint = fingerprint_dir(data) if data else None
    built = project.build(project_dir, engine, target="train", on_line=build_line, replace=replace)
    return _Plan(cfg.name, built.image_id, built.tag, ("/bin/sh", "-c", command),
                 params, data, fingerprint, res, cfg.resources.pids, cfg.dependencies.file)


def command_for_run(project_dir: Path, template: str, params: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The train command this run executes, and the params it runs with.

    A command with ``{name}`` placeholders (an MLproject entry point) declares its parameters:
    each is substituted (given value, else its default), type-checked, and an unknown --param
    is refused. A command without placeholders takes any --param as PARAM_<NAME> variables."""
    declared = command_parameters(project_dir, template)
    if not declared:
        return template, dict(params)
    return render_command(template, declared, params)


def _reproduce_plan(ref: str, engine: Engine, store: Store, cfg: ProjectConfig, data: Path | None,
                    params: Mapping[str, str], res: Resources) -> _Plan:
    """Same image, command and params as ``ref``; the data must have the same fingerprint."""
    parse_ref(ref)
    if params:
        raise UsageError("--reproduce re-runs with the stored params; --param cannot change them",
                         "drop --param, or train normally to try new params")
    old = store.get(ref)
    if not engine.image_exists(old.image.id):
        raise UsageError(f"{old.ref} was trained in image {old.image.id}, which no longer exists"
                         " on this engine",
                         "load that image again (docker load / pull by digest); a rebuild would"
                         " not be the same image")
    fingerprint = fingerprint_dir(data) if data else None
    if old.data_fingerprint and fingerprint != old.data_fingerprint:
        got = fingerprint or "no --data"
        raise UsageError(f"data differs from {old.ref}: it was trained on {old.data_fingerprint},"
                         f" this run has {got}",
                         "pass --data with the same files the original run used")
    return _Plan(old.name, old.image.id, old.image.ref, old.command, dict(old.params), data,
                 fingerprint, res, cfg.resources.pids, cfg.dependencies.file)


# --- the run --------------------------------------------------------------------------------


def _execute(project_dir: Path, engine: Engine, store: Store, plan: _Plan, *,
             secrets: Sequence[Secret], timeout: float | None, on_line: Printer | None,
             labels: Mapping[str, str]) -> TrainOutcome:
    run_id = new_run_id(plan.name)
    container = f"{_CONTAINER_PREFIX}{run_id}"
    work = store.root / "work" / run_id
    sweep_killed_runs(engine, plan.image_id, store.root / "work")
    try:
        claim_work(work)
        workdir, before = prepare_workdir(engine, plan.image_id, work)
        spec = _run_spec(engine, plan, work, workdir, secrets, container, run_id, labels)
        logs = _Logs(secret_values(secrets), on_line)
        started = _now()
        try:
            ending = _run_container(engine, spec, container, timeout, logs)
        except KeyboardInterrupt:
            _record_failed(store, plan, run_id, started, None, "interrupted", logs, project_dir,
                           before)
            raise
        record = _record(plan, run_id, started, ending.exit_status, project_dir, before)
        if ending.exit_status != 0:
            raise _failure(store, plan, record, ending, logs, timeout)
        captured = changed_files(work / "app", before) if workdir else []
        version = _store_success(store, record, work, captured, logs)
        return TrainOutcome(version, run_id, plan.image_id, record.duration_s,
                            tuple(rel for rel, _ in captured))
    finally:
        engine.remove_container(container)
        remove_work(engine, plan.image_id, work)


_CONTAINER_PREFIX = "dockyard-train-"
_OWNER = ".owner"  # the pid of the dockyard process running the job, in its work directory
_UNOWNED_GRACE_S = 3600.0  # a work dir without an owner file (being created, or older dockyard)


def claim_work(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o700)
    (work / _OWNER).write_text(f"{os.getpid()}\n")


def _owner_pid(work: Path) -> int | None:
    try:
        return int((work / _OWNER).read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def sweep_killed_runs(engine: Engine, image_id: str, root: Path) -> list[str]:
    """Remove what runs killed outright (SIGKILL, a lost terminal, power loss) left behind: the
    work directory and the container, which may still be running with nobody to collect its
    outputs. Ctrl-C cleans up at once; this catches what it cannot. A run is dead when the
    dockyard process that owns it is gone (without an owner file: when its container is not
    running and the directory is over an hour old)."""
    if not root.is_dir():
        return []
    running = {c.get("Names", "") for c in engine.containers([f"name={_CONTAINER_PREFIX}"], all_=False)}
    swept = []
    for work in sorted(root.iterdir()):
        container = f"{_CONTAINER_PREFIX}{work.name}"
        owner = _owner_pid(work)
        if owner is not None:
            dead = not _pid_alive(owner)
        else:
            try:
                age = time.time() - work.stat().st_mtime
            except OSError:
                continue
            dead = container not in running and age > _UNOWNED_GRACE_S
        if not dead or not work.is_dir():
            continue
        engine.remove_container(container)
        remove_work(engine, image_id, work)
        swept.append(work.name)
    if swept:
        log.warning("removed the leftovers of %d killed training run(s): %s", len(swept), ", ".join(swept))
    return swept


def remove_work(engine: Engine, image_id: str, work: Path) -> None:
    """Delete the run's host directories, including what the container user wrote there."""
    shutil.rmtree(work, ignore_errors=True)
    if not work.exists():
        return
    # Without root, files the container user created in its own subdirectories (mlruns/0/...)
    # can only be deleted by that user: let a short container do it.
    dirs = [d for d in (work / "app", work / "outputs") if d.is_dir()]
    mounts = tuple(Mount(str(d), f"/cleanup/{d.name}") for d in dirs)
    spec = RunSpec(image=image_id, command=("find", *(m.target for m in mounts), "-mindepth", "1", "-delete"),
                   mounts=mounts, cpus=1, memory="256m", user=f"{USER_UID}:{USER_GID}",
                   labels={contract.LABEL_ROLE: "cleanup"})
    if mounts:
        engine.docker(*run_args(spec), check=False, timeout=300)
    shutil.rmtree(work, ignore_errors=True)


def new_run_id(name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{name}-{stamp}-{_random.token_hex(3)}"


def _now() -> datetime:
    return datetime.now(UTC)


def _run_spec(engine: Engine, plan: _Plan, work: Path, workdir: str | None,
              secrets: Sequence[Secret], container: str, run_id: str,
              labels: Mapping[str, str]) -> RunSpec:
    outputs = _writable_dir(work / "outputs")
    mounts = [Mount(str(outputs), OUTPUTS_DIR)]
    env = {"DOCKYARD_OUTPUTS": OUTPUTS_DIR, "DOCKYARD_RUN_ID": run_id, **param_env(plan.params),
           # The image has no .git (the .dockerignore leaves it out) and so no use for a git binary;
           # dockyard records the commit from the host. Without this, GitPython (which mlflow imports)
           # prints a 20-line warning about the missing git executable, three times per run.
           "GIT_PYTHON_REFRESH": "quiet"}
    if plan.data:
        mounts.append(Mount(str(plan.data), DATA_DIR, read_only=True))
        env["DOCKYARD_DATA"] = DATA_DIR
    if workdir:
        mounts.append(Mount(str(work / "app"), workdir))
    mounts.append(Mount(str(_helpers(work / "helpers")), HELPERS_DIR, read_only=True))
    env["PYTHONPATH"] = _pythonpath(engine, plan.image_id)
    image_env = _image_config(engine, plan.image_id).get("Env") or []
    env.update(mlflow_capture.train_env(image_env))  # MLflow tracking and the BentoML model store land
    env.update(bentoml.train_env(image_env))  # under /outputs unless the project chose a location
    for secret in secrets:
        mounts.append(Mount(str(secret_file(work / "secrets", secret)),
                            f"{SECRETS_DIR}/{secret.id}", read_only=True))
    return RunSpec(
        image=plan.image_id, command=plan.command, name=container,
        cpus=plan.resources.cpus or 2.0, memory=plan.resources.memory or "2g", pids=plan.pids,
        gpus=plan.resources.gpus, mounts=tuple(mounts), env=env, remove=False,
        labels={contract.LABEL_NAME: plan.name, contract.LABEL_RUN_ID: run_id, **labels},
    )


def _run_container(engine: Engine, spec: RunSpec, container: str, timeout: float | None,
                   logs: _Logs) -> _Ending:
    """Stream the run; stop it at the timeout; on Ctrl-C kill the client and the container."""
    proc = engine.stream(*run_args(spec))
    assert proc.stdout is not None
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        # Retry: with a very short timeout the client may not have created the container yet.
        while proc.poll() is None:
            if engine.docker("stop", "-t", str(STOP_GRACE_S), container, check=False, timeout=60).returncode == 0:
                return
            time.sleep(0.5)

    timer = threading.Timer(timeout, stop) if timeout else None
    try:
        if timer:
            timer.daemon = True
            timer.start()
        with proc.stdout:
            for line in proc.stdout:
                logs.add(line.rstrip("\n"))
        code = proc.wait()
    except KeyboardInterrupt:
        # docker runs in its own session, so only we got the signal: stop the client first so
        # it cannot start the container after we removed it, then remove the container.
        proc.kill()
        proc.wait()
        engine.remove_container(container)
        raise
    finally:
        if timer:
            timer.cancel()
    state = _state(engine, container)
    exit_status = state.get("ExitCode", code)
    return _Ending(exit_status if isinstance(exit_status, int) else code,
                   oom_killed=bool(state.get("OOMKilled")), timed_out=timed_out.is_set())


def _state(engine: Engine, container: str) -> dict[str, object]:
    # Read before the container is removed: OOMKilled exists nowhere else.
    try:
        state = engine.inspect(container, kind="container").get("State")
    except DockyardError:
        return {}
    return dict(state) if isinstance(state, dict) else {}


# --- host directories -----------------------------------------------------------------------


def _writable_dir(path: Path) -> Path:
    """A directory the container user (uid 10001) can write."""
    path.mkdir(parents=True, exist_ok=True)
    _give_to_container(path)
    return path


def _give_to_container(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, USER_UID, USER_GID)
        os.chmod(path, 0o755)
    else:  # cannot chown: let anyone write (the parent work dir is private to this user)
        os.chmod(path, 0o777)


def prepare_workdir(engine: Engine, image_id: str, work: Path) -> tuple[str | None, dict[str, str]]:
    """Copy the image's working directory to ``work/app`` (to mount writable over it).

    Returns the container path and ``{relpath: sha256}`` of the image's files, which is both the
    code hash input and the baseline for finding what the run added or changed.
    """
    workdir = str(_image_config(engine, image_id).get("WorkingDir") or "")  # `work` exists: claim_work made it
    if workdir in ("", "/"):
        return None, {}
    blob = _copy_out(engine, image_id, workdir)
    app = work / "app"
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        _extract(tar, app)
    before = {rel: hash_file(p)[0] for rel, p in iter_files(app)[0]}
    for root, dirs, files in os.walk(app):
        for entry in [root, *(os.path.join(root, d) for d in dirs)]:
            _give_to_container(Path(entry))
        for f in files:
            if os.geteuid() == 0:
                os.chown(os.path.join(root, f), USER_UID, USER_GID)
    return workdir, before


def _image_config(engine: Engine, image_id: str) -> dict[str, Any]:
    config = engine.inspect(image_id).get("Config")
    return dict(config) if isinstance(config, dict) else {}


def _copy_out(engine: Engine, image_id: str, path: str) -> bytes:
    cid = engine.docker("create", "--label", f"{contract.LABEL_ROLE}=snapshot", image_id, "true").stdout.strip()
    try:
        out = engine.docker("cp", f"{cid}:{path}", "-", text=False, timeout=300).stdout
        return out if isinstance(out, bytes) else out.encode()
    finally:
        engine.remove_container(cid)


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack ``docker cp``'s tar (entries under one top directory) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for member in tar.getmembers():
        rel = member.name.split("/", 1)[1] if "/" in member.name else ""
        if not rel or not (member.isfile() or member.isdir()) or ".." in rel.split("/"):
            continue  # links and devices are not code; skipping them keeps the copy inside dest
        target = dest / rel
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(member)
        assert src is not None
        with src, open(target, "wb") as fh:
            shutil.copyfileobj(src, fh)
        os.chmod(target, member.mode & 0o755 | 0o644)


def _helpers(path: Path) -> Path:
    """``dockyard/__init__.py`` = the stdlib-only metrics helpers, for ``from dockyard import log_metric``."""
    pkg = path / "dockyard"
    pkg.mkdir(parents=True, exist_ok=True)
    src = Path(str(resources.files("dockyard").joinpath("store", "metrics.py")))
    shutil.copyfile(src, pkg / "__init__.py")
    for p in (path, pkg):
        os.chmod(p, 0o755)
    os.chmod(pkg / "__init__.py", 0o644)
    return path


def _pythonpath(engine: Engine, image_id: str) -> str:
    env = _image_config(engine, image_id).get("Env") or []
    current = next((e.split("=", 1)[1] for e in env if isinstance(e, str) and e.startswith("PYTHONPATH=")), "")
    return f"{current}:{HELPERS_DIR}" if current else HELPERS_DIR


# --- logs -----------------------------------------------------------------------------------


class _Logs:
    """Collects the run's output: secrets masked, each line prefixed with the elapsed time."""

    def __init__(self, masks: Sequence[str], on_line: Printer | None) -> None:
        self.masks = masks
        self.on_line = on_line
        self.lines: list[str] = []
        self.started = time.monotonic()

    def add(self, line: str) -> None:
        for value in self.masks:
            line = line.replace(value, "***")
        line = f"[{time.monotonic() - self.started:6.1f}s] {line}"
        self.lines.append(line)
        if self.on_line:
            self.on_line(line)

    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")

    def tail(self, n: int = LOG_TAIL) -> str:
        return "\n".join(self.lines[-n:])


# --- results --------------------------------------------------------------------------------


def _record(plan: _Plan, run_id: str, started: datetime, exit_status: int | None,
            project_dir: Path, before: Mapping[str, str], reason: str = "") -> RunRecord:
    from .project import git_revision

    commit, dirty = git_revision(project_dir)
    return RunRecord(
        name=plan.name, run_id=run_id, command=plan.command,
        image=ImageInfo(id=plan.image_id, ref=plan.image_ref), started=started, ended=_now(),
        exit_status=exit_status, params=plan.params,
        git=GitInfo(None if commit == "unknown" else commit, dirty), code_hash=code_hash(before),
        data_fingerprint=plan.data_fingerprint, resources=plan.resources, reason=reason,
        project=str(project_dir),
    )


def code_hash(files: Mapping[str, str]) -> str:
    """``sha256:<hex>`` over the sorted (relpath, sha256) of the code in the image."""
    if not files:
        return ""
    digest = hashlib.sha256()
    for rel, sha in sorted(files.items()):
        digest.update(f"{rel}\0{sha}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def _record_failed(store: Store, plan: _Plan, run_id: str, started: datetime,
                   exit_status: int | None, reason: str, logs: _Logs, project_dir: Path,
                   before: Mapping[str, str]) -> None:
    record = _record(plan, run_id, started, exit_status, project_dir, before, reason)
    store.record_failure(record, logs.text())


def _failure(store: Store, plan: _Plan, record: RunRecord, ending: _Ending, logs: _Logs,
             timeout: float | None) -> RunError:
    """Keep the failed run with its logs and say why it failed."""
    memory = plan.resources.memory
    reason = describe_failure(exit_status=ending.exit_status, oom_killed=ending.oom_killed,
                              memory=memory, timeout_s=timeout if ending.timed_out else None)
    failed = store.record_failure(_with_reason(record, reason), logs.text())
    where = f"logs kept in {failed.logs_path} (see `dockyard models runs {plan.name}`)"
    if ending.timed_out:
        return RunError(f"training {record.run_id} stopped: timeout after {timeout:g}s",
                        f"raise --timeout, or make the run shorter; {where}",
                        exit_status=ending.exit_status, log_tail=logs.tail())
    if ending.oom_killed:
        return RunError(f"training {record.run_id} was killed: out of memory (memory limit {memory})",
                        f"raise --memory (e.g. --memory 4g) or use less memory; {where}",
                        exit_status=ending.exit_status, log_tail=logs.tail())
    missing = missing_module_fix(logs.tail(), plan.dependency_file)
    error = RunError(f"training {record.run_id} failed: the train command exited with status"
                     f" {ending.exit_status}", f"{missing or 'fix the error in the last log lines above'}; {where}",
                     exit_status=ending.exit_status, log_tail=logs.tail())
    if ending.exit_status:
        error.exit_code = ending.exit_status  # the CLI exits with the container's status
    return error


def _with_reason(record: RunRecord, reason: str) -> RunRecord:
    from dataclasses import replace

    return replace(record, reason=reason)


def changed_files(app: Path, before: Mapping[str, str]) -> list[tuple[str, Path]]:
    """Files the run added to or changed in its working directory (bytecode aside)."""
    files, _ = iter_files(app)
    out = []
    for rel, path in files:
        if "__pycache__" in rel.split("/") or rel.endswith(".pyc"):
            continue
        if before.get(rel) != hash_file(path)[0]:
            out.append((rel, path))
    return out


def _store_success(store: Store, record: RunRecord, work: Path,
                   captured: Sequence[tuple[str, Path]], logs: _Logs) -> ModelVersion:
    outputs = _collect(work, captured)
    mlflow_capture.capture(outputs, record.started)  # MLflow params, metric histories -> metrics.json
    try:
        return store.record_success(record, outputs, logs=logs.text())
    except StoreError as exc:
        # e.g. nothing written or an unreadable metrics.json: keep the logs as a failed run
        store.record_failure(_with_reason(record, f"not stored: {exc.problem}"), logs.text())
        raise


def _collect(work: Path, captured: Sequence[tuple[str, Path]]) -> Path:
    """One directory with /outputs plus the captured working-directory files.

    Captured files keep their relative path (``model.joblib``, ``mlruns/0/...``); one that
    clashes with a file in /outputs goes under ``workdir/`` instead.
    """
    outputs = work / "outputs"
    if not captured:
        return outputs
    merged = work / "collected"
    shutil.copytree(outputs, merged, symlinks=True)
    for rel, path in captured:
        target = merged / rel
        if target.exists() or any(p.is_file() for p in _parents(merged, rel)):
            target = merged / "workdir" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return merged


def _parents(root: Path, rel: str) -> Iterator[Path]:
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield root.joinpath(*parts[:i])
