"""`dockyard serve` and `dockyard predict`: build the serving image, run it hardened, wait for ready."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import project, references
from .config import CONFIG_NAME, load_config
from .engine import Engine, Mount, Printer, RunSpec, Secret
from .errors import RunError, UsageError
from .lifecycle import claim_port, run_labels
from .names import claim_version
from .planning import predictor_module
from .preflight import fit_local
from .interop.mlflow_refs import resolve as resolve_mlflow
from .project import MODEL_STAGE, BuildOutcome, clear_model_stage, stage_model, stage_model_dir
from .references import Kind, serving_tag
from .runtime import contract
from .runtime.contract import CONTAINER_PORT, MODEL_SUFFIXES, PICKLE_SUFFIXES, SECRETS_DIR
from .runtime.mlflow_model import is_mlmodel_dir
from .store import ModelVersion, Store


@dataclass(frozen=True)
class ServeOutcome:
    url: str
    container: str
    image: str
    tag: str
    name: str = ""  # the container's name: `dockyard logs/stop NAME`


def model_argument(model: str | None, *, cwd: Path | None = None) -> str | None:
    """A ``--model`` value as typed on the command line -> what the library takes.

    A path is relative to the current directory, like every other path on a command line, so it
    becomes absolute here (the library reads relative paths against the project, as dockyard.yaml's
    ``serve.model`` does); every other form (references.FORMS) stays as it is."""
    if model is None:
        return None
    ref = references.parse(model, cwd=cwd)
    return str(ref.path) if ref.kind is Kind.PATH else model


@dataclass(frozen=True)
class ModelSource:
    """Where a serving image's weights come from: their build-context path, and the stored
    version when the reference named one (its labels tie the image to it)."""

    context_path: str | None
    version: ModelVersion | None = None

    @property
    def tag(self) -> str | None:
        """The serving image's tag: ``NAME:N`` for a stored version, else the project default."""
        return serving_tag(self.version.name, self.version.version) if self.version else None


def resolve_model(project_dir: Path, model: str | None, *, store_root: Path | None = None,
                  cwd: Path | None = None, registry: str | None = None, verb: str = "serve") -> ModelSource:
    """A model reference (see dockyard.references: NAME:N, NAME:latest, NAME@ALIAS, or a file or
    folder, relative to ``cwd``, default the project; the CLI passes --model through
    :func:`model_argument` first) -> its weights staged in PROJECT/.dockyard/model,
    so they get their own image layer even when they live in a folder the .dockerignore leaves
    out (outputs/, models/...)."""
    if model is None:
        return ModelSource(None)
    ref = references.parse_for(verb, model, cwd=cwd or project_dir)
    if ref.kind is Kind.MLFLOW:  # against MLFLOW_TRACKING_URI: a local MLmodel directory
        return ModelSource(stage_model_dir(project_dir, resolve_mlflow(model, project_dir)))
    if ref.kind is Kind.PATH:
        assert ref.path is not None
        if is_mlmodel_dir(ref.path) or (ref.path.name == "MLmodel" and ref.path.is_file()):
            return ModelSource(stage_model_dir(project_dir, ref.path if ref.path.is_dir() else ref.path.parent))
        return ModelSource(stage_model(project_dir, ref.path))
    store = Store(store_root)
    version = references.stored_version(ref, store, registry=registry)
    store.materialize(version.ref, clear_model_stage(project_dir))
    return ModelSource(MODEL_STAGE, version)


def model_labels(version: ModelVersion | None) -> dict[str, str]:
    """Image labels tying a serving image to the stored version it carries."""
    if version is None:
        return {}
    labels = {
        contract.LABEL_MODEL: version.name,
        contract.LABEL_MODEL_VERSION: str(version.version),
        contract.LABEL_MODEL_RUN: version.run_id,
        contract.LABEL_MODEL_GIT_COMMIT: (version.git.commit if version.git else "") or "unknown",
    }
    labels.update({f"{contract.LABEL_METRICS_PREFIX}{k}": f"{v:g}" for k, v in sorted(version.metrics.items())})
    return labels


def build_model_image(project_dir: Path, engine: Engine, model: str | None, *, allow_unsafe_model: bool = False,
                      tag: str | None = None, on_line: Printer | None = None, store_root: Path | None = None,
                      registry: str | None = None, secrets: Sequence[Secret] = (),
                      no_cache: bool = False, verb: str = "serve",
                      bootstrap_base: bool = True, replace: bool = False) -> tuple[BuildOutcome, ModelSource]:
    """The serving image around a model reference (or dockyard.yaml's serve.model): staged,
    scanned, labelled with its version, tagged NAME:N for a stored version. serve, push and
    deploy all build through here, so their images are the same. A version another project
    folder trained, or a tag another folder owns, is refused unless ``replace`` (dockyard.names)."""
    project_dir = project_dir.resolve()
    with project.one_build_at_a_time(project_dir, on_line):  # the staged weights are this build's until it ends
        source = resolve_model(project_dir, model, store_root=store_root, registry=registry, verb=verb)
        if source.version is not None:
            claim_version(source.version, project_dir, replace=replace)
        context = source.context_path or load_config(project_dir).serve.model
        check_model_safety(project_dir, context, allow_unsafe_model)
        built = project.build(project_dir, engine, target="serve", model_file=context, tag=tag or source.tag,
                              on_line=on_line, labels=model_labels(source.version), secrets=secrets,
                              no_cache=no_cache, bootstrap_base=bootstrap_base, replace=replace,
                              allow_unsafe_model=True)  # gated just above (or allowed by the caller)
    return built, source


def image_for(verb: str, text: str, engine: Engine, *, project_dir: Path | None = None, build: bool = False,
              on_line: Printer | None = None, store_root: Path | None = None,
              registry: str | None = None, replace: bool = False) -> tuple[str, bool]:
    """The local image a reference names (see dockyard.references), and whether it was built now.

    With ``build``, a stored version whose serving image does not exist yet is built from
    ``project_dir`` (which must be that model's project) exactly as ``serve --model`` builds it."""
    ref = references.parse_for(verb, text)
    store = Store(store_root)
    image = references.image_of(ref, store, registry=registry)
    if engine.image_exists(image):
        return image, False
    if not build or ref.kind not in (Kind.VERSION, Kind.ALIAS) or project_dir is None:
        raise UsageError(f"no local image {image} (for {text!r})",
                         f"build it: dockyard build PROJECT --model {image}, or check `docker images`")
    name = image.rpartition(":")[0]
    here = load_config(project_dir).name if (project_dir / CONFIG_NAME).is_file() else None
    if here != name:
        what = f"project {here!r}" if here else "not a dockyard project"
        raise UsageError(f"{image} has no serving image yet, and {project_dir.resolve()} is {what}, so it cannot be built",
                         f"run this from {name}'s project folder, or pass its path with --path")
    built, _ = build_model_image(project_dir, engine, image, on_line=on_line, store_root=store_root, registry=registry,
                                 verb=verb, replace=replace)
    return built.tag, True


def check_model_safety(project_dir: Path, context_path: str | None, allow_unsafe: bool) -> None:
    """The pickle gate: a pickle-family file (contract.PICKLE_SUFFIXES) is served only when every
    import in it is on the allow-list (scan/pickle_allowlist.json), unless ``allow_unsafe``."""
    if context_path is None or allow_unsafe:
        return
    from .scan.models import scan_model_file

    root = project_dir / context_path
    for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() not in PICKLE_SUFFIXES:
            continue
        result = scan_model_file(path)
        if result.status == "clean":
            continue
        if result.status == "unscannable":  # it will be unpickled, and could hide anything
            why = result.findings[0].detail if result.findings else "unreadable"
            raise UsageError(
                f"refusing to serve {path.name}: it would be unpickled, but it could not be scanned ({why})",
                "re-save the model, or pass --allow-unsafe-model if you trust the file",
            )
        found = "; ".join(f.title for f in result.findings if f.severity in {"critical", "high"})
        what = "it would run dangerous code when loaded" if result.status == "malicious" else \
            "it imports callables that are not on the model allow-list"
        raise UsageError(
            f"refusing to serve {path.name}: {what} ({found})",
            f"inspect it with `dockyard scan {path}`, re-save it in a safe format, or pass "
            "--allow-unsafe-model if you trust it",
        )


def serve(
    project_dir: Path,
    engine: Engine,
    *,
    model: str | None = None,
    port: int | None = None,
    public: bool = False,
    replace: bool = False,
    allow_unsafe_model: bool = False,
    name: str | None = None,
    tag: str | None = None,
    ready_timeout: float = 120.0,
    on_line: Printer | None = None,
    labels: Mapping[str, str] | None = None,
    store_root: Path | None = None,
    secrets: Sequence[Secret] = (),
) -> ServeOutcome:
    """Build the serve image and start it detached; return once /readyz answers 200.

    ``port`` is the host port (default: serve.port in dockyard.yaml); inside the container the
    server listens on the contract's CONTAINER_PORT. A busy host port is refused before anything
    is built, unless ``replace`` is set and the holder is a container dockyard started;
    ``replace`` also takes over an image name or version another project folder owns (dockyard.names).
    Secrets become read-only files under /run/secrets in the container. The host copies live
    in a private temporary directory only until the container has mounted them."""
    from .interop.cog import check_servable
    from .runsecrets import check_secrets

    project_dir = project_dir.resolve()
    check_secrets(secrets)
    cfg = load_config(project_dir)
    check_servable(project_dir)  # a Cog project using a feature dockyard cannot serve: say which
    port = cfg.serve.port if port is None else port
    cpus, memory = fit_local(engine, cfg.resources.cpus, cfg.resources.memory,
                             explicit=tuple(cfg.resources.model_fields_set), what="serve")
    claim_port(engine, port, public=public, replace=replace)
    built, _ = build_model_image(project_dir, engine, model, allow_unsafe_model=allow_unsafe_model, tag=tag,
                                 on_line=on_line, store_root=store_root, replace=replace)
    container = name or f"dockyard-serve-{cfg.name}-{port}"
    engine.remove_container(container)  # a stopped leftover of ours: claim_port checked nothing runs there
    spec = RunSpec(
        image=built.image_id,
        name=container,
        cpus=cpus,
        memory=memory,
        pids=cfg.resources.pids,
        gpus=cfg.resources.gpus,
        ports=((port, CONTAINER_PORT),),
        public=public,
        labels={**run_labels(project_dir, cfg.name, "serve"), **(labels or {})},
        remove=False,
    )
    with tempfile.TemporaryDirectory(prefix="dockyard-secrets-") as tmp:
        if secrets:
            from .runsecrets import secret_file

            mounts = tuple(Mount(str(secret_file(Path(tmp), s)), f"{SECRETS_DIR}/{s.id}", read_only=True) for s in secrets)
            spec = dataclasses.replace(spec, mounts=spec.mounts + mounts)
        cid = engine.start(spec)  # the bind mounts keep the files alive after tmp is removed
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, ready_timeout, alive=lambda: _running(engine, cid))
    except RunError as exc:
        logs = engine.logs(cid, tail=30)
        engine.remove_container(cid)
        raise RunError(f"the model server did not become ready: {exc.problem}",
                       "see the container log above; fix setup() or the model file", log_tail=logs) from None
    except KeyboardInterrupt:
        engine.remove_container(cid)
        raise
    return ServeOutcome(url, cid, built.image_id, built.tag, container)


def default_port(project_dir: Path) -> int:
    """The host port serve uses when none is given: serve.port in dockyard.yaml."""
    return load_config(project_dir).serve.port


def _running(engine: Engine, cid: str) -> bool:
    out = engine.docker("inspect", "--format", "{{.State.Running}}", cid, check=False)
    return out.stdout.strip() == "true"


def wait_ready(url: str, timeout: float, *, alive: Callable[[], bool] = lambda: True) -> float:
    """Poll /readyz until 200; fail early if the server process is gone."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(f"{url}{contract.READY_PATH}", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if not alive():
            raise RunError("the server exited before it was ready", "see its log")
        time.sleep(0.05)
    raise RunError(f"not ready after {timeout:.0f}s", "setup() may be slow: raise the timeout, or check the log")


def follow(engine: Engine, container: str, on_line: Printer, grace_s: int = 15) -> int:
    """Stream a serving container's logs until it exits or Ctrl-C; then stop and remove it."""
    try:
        proc = engine.stream("logs", "--follow", container)
        assert proc.stdout is not None
        for line in proc.stdout:
            on_line(line.rstrip("\n"))
        proc.wait()
        return engine.wait(container)
    except KeyboardInterrupt:
        engine.docker("stop", "--time", str(grace_s), container, check=False, timeout=grace_s + 30)
        raise
    finally:
        engine.remove_container(container)


def serve_local(project_dir: Path, *, model: str | None = None, port: int = CONTAINER_PORT, host: str = "127.0.0.1",
                extra: tuple[str, ...] = (), allow_unsafe_model: bool = False) -> list[str]:
    """The argv that runs the same runtime outside a container, in the current Python. The model
    is loaded on this host, with no container around it: the pickle gate applies here too."""
    project_dir = project_dir.resolve()
    cfg = load_config(project_dir)
    argv = [sys.executable, "-m", "dockyard.runtime", "--host", host, "--port", str(port), "--name", cfg.name,
            "--max-batch-size", str(cfg.serve.max_batch_size), "--max-batch-wait-ms", f"{cfg.serve.max_batch_wait_ms:g}",
            "--workers", str(cfg.serve.workers)]
    model_file = model or cfg.serve.model
    if cfg.serve.app and not model:
        return [sys.executable, "-m", "dockyard.runtime.webapp", "--host", host, "--port", str(port),
                "--app", predictor_module(cfg.serve.app), "--app-dir", str(project_dir),
                "--workers", str(cfg.serve.workers)]
    if cfg.serve.predictor and not (model and Path(model).suffix.lower() in MODEL_SUFFIXES):
        argv += ["--predictor", predictor_module(cfg.serve.predictor), "--app-dir", str(project_dir)]
    elif model_file:
        path = Path(model_file) if os.path.isabs(model_file) else project_dir / model_file
        if model_file.startswith(("runs:/", "models:/")):
            from .interop.mlflow_refs import resolve as resolve_mlflow

            path = resolve_mlflow(model_file, project_dir)
        if not path.exists():
            raise UsageError(f"model file {path} does not exist", "train first, or pass --model FILE")
        check_model_safety(project_dir, str(path), allow_unsafe_model)
        argv += ["--model", str(path)]
    else:
        raise UsageError("nothing to serve: no serve.predictor or serve.model in dockyard.yaml", "add one, or pass --model FILE")
    return argv + list(extra)


def parse_inputs(json_text: str | None, pairs: list[str], file: Path | None) -> dict[str, Any]:
    """--input JSON | -i name=value (value parsed as JSON when it is JSON) | -f file.json."""
    given = sum(x is not None and x != [] for x in (json_text, pairs or None, file))
    if given != 1:
        raise UsageError("give exactly one of --input JSON, -i name=value, or -f FILE", 'e.g. --input \'{"pixels": [[0, 1]]}\'')
    if file is not None:
        if not file.is_file():
            raise UsageError(f"input file {file} does not exist", "pass a JSON file with -f")
        json_text = file.read_text()
    if json_text is not None:
        try:
            data = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"input is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "check quoting") from exc
        if not isinstance(data, dict):
            raise UsageError("input must be a JSON object of named inputs", 'e.g. {"pixels": [[0, 1]]}')
        return data
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"bad -i {pair!r}", "use -i name=value")
        key, raw = pair.split("=", 1)
        if raw.startswith("@"):  # a file, sent as a data: URL (as `cog predict -i image=@photo.jpg` does)
            out[key] = file_data_url(Path(raw[1:]))
            continue
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def file_data_url(path: Path) -> str:
    """A file as a data: URL (base64), the way Cog clients send file inputs."""
    import base64
    import mimetypes

    if not path.is_file():
        raise UsageError(f"-i ...=@{path}: no such file", "give the path of an existing file after @")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def predict(url: str, inputs: Mapping[str, Any], *, timeout: float = 30.0) -> Any:
    """POST /predict and return the decoded JSON; server errors become RunError with its message."""
    body = json.dumps(inputs).encode()
    req = urllib.request.Request(url.rstrip("/") + "/predict", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (json.JSONDecodeError, AttributeError):
            pass
        if 400 <= exc.code < 500:  # the request was refused (422: bad input): the user's to fix
            raise UsageError(f"the server answered {exc.code}: {detail}", "fix the input named in the message") from None
        raise RunError(f"the server answered {exc.code}: {detail}", "see the server log (`docker logs`)") from None
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        raise RunError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}", "start it with `dockyard serve`") from None


def predict_local(project_dir: Path, inputs: Mapping[str, Any], *, model: str | None = None,
                  allow_unsafe_model: bool = False) -> Any:
    """Start the runtime on a free loopback port, predict once, stop it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = serve_local(project_dir, model=model, port=port, allow_unsafe_model=allow_unsafe_model)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", 120, alive=lambda: proc.poll() is None)
        return predict(f"http://127.0.0.1:{port}", inputs)
    except RunError as exc:
        if proc.poll() is not None:
            raise RunError(exc.problem, exc.fix, log_tail=(proc.stderr.read() if proc.stderr else "")[-3000:]) from None
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
