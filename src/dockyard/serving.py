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

from .config import load_config
from .engine import Engine, Mount, Printer, RunSpec, Secret
from .errors import RunError, UsageError
from .planning import predictor_module
from .runtime.contract import CONTAINER_PORT, MODEL_SUFFIXES, PICKLE_SUFFIXES


@dataclass(frozen=True)
class ServeOutcome:
    url: str
    container: str
    image: str
    tag: str


def model_argument(model: str | None, *, cwd: Path | None = None) -> str | None:
    """A ``--model`` value as typed on the command line -> what the library takes.

    A path is relative to the current directory, like every other path on a command line, so it
    becomes absolute here; a stored version (``name:N``, ``name@alias``, ``name``) stays as it is.
    (``serve.model`` in dockyard.yaml is project-relative; it never passes through here.)"""
    if model is None:
        return None
    path = Path(model).expanduser()
    if path.is_absolute():
        return str(path)
    candidate = (cwd or Path.cwd()) / path
    if candidate.exists():
        return str(candidate.resolve())
    if "/" in model or os.sep in model or path.suffix.lower() in MODEL_SUFFIXES:
        raise UsageError(f"--model {model}: no such file in the current directory ({cwd or Path.cwd()})",
                         "pass a path relative to where you run dockyard, an absolute path, or a stored version name:N")
    return model


def resolve_model(project_dir: Path, model: str | None, *, store_root: Path | None = None) -> str | None:
    """A model argument (a file, or a stored version name:N) -> its build-context path.

    The weights are staged in PROJECT/.dockyard/model, so they get their own image layer even
    when they live in a folder the .dockerignore leaves out (outputs/, models/...)."""
    if model is None:
        return None
    from .project import MODEL_STAGE, clear_model_stage, stage_model

    candidate = Path(model) if os.path.isabs(model) else project_dir / model
    if candidate.is_file():
        return stage_model(project_dir, candidate)
    if ":" in model or model.replace("-", "").replace("_", "").isalnum():
        from .store import Store

        Store(store_root).materialize(model, clear_model_stage(project_dir))
        return MODEL_STAGE
    raise UsageError(f"--model {model!r} is neither a file nor a stored version", "pass a model file or name:N (see `dockyard models list`)")


def model_labels(model: str | None, store_root: Path | None) -> dict[str, str]:
    """Image labels tying a serving image to the stored version it carries."""
    if not model or Path(model).suffix.lower() in MODEL_SUFFIXES:
        return {}
    from .errors import StoreError
    from .store import Store

    try:
        version = Store(store_root).get(model)
    except StoreError:  # a model file path, not a stored version
        return {}
    labels = {
        "io.dockyard.model": version.name,
        "io.dockyard.model-version": str(version.version),
        "io.dockyard.model-run": version.run_id,
        "io.dockyard.model-git-commit": (version.git.commit if version.git else "") or "unknown",
    }
    labels.update({f"io.dockyard.metrics.{k}": f"{v:g}" for k, v in sorted(version.metrics.items())})
    return labels


def check_model_safety(project_dir: Path, context_path: str | None, allow_unsafe: bool) -> None:
    """Refuse pickle-family files that import dangerous callables, unless explicitly allowed."""
    if context_path is None or allow_unsafe:
        return
    from .scan.models import scan_model_file

    root = project_dir / context_path
    for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() not in MODEL_SUFFIXES:
            continue
        result = scan_model_file(path)
        if result.status == "malicious":
            found = "; ".join(f.title for f in result.findings[:3])
            raise UsageError(
                f"refusing to serve {path.name}: it would run dangerous code when loaded ({found})",
                "inspect it with `dockyard scan`, or pass --allow-unsafe-model if you trust it",
            )
        # A file that will be unpickled but that the scanner cannot read could hide anything.
        if result.status == "unscannable" and path.suffix.lower() in PICKLE_SUFFIXES:
            why = result.findings[0].detail if result.findings else "unreadable"
            raise UsageError(
                f"refusing to serve {path.name}: it would be unpickled, but it could not be scanned ({why})",
                "re-save the model, or pass --allow-unsafe-model if you trust the file",
            )


def serve(
    project_dir: Path,
    engine: Engine,
    *,
    model: str | None = None,
    port: int = 8080,
    public: bool = False,
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

    Secrets become read-only files under /run/secrets in the container. The host copies live
    in a private temporary directory only until the container has mounted them."""
    from . import project
    from .runsecrets import check_secrets

    project_dir = project_dir.resolve()
    check_secrets(secrets)
    cfg = load_config(project_dir)
    context_model = resolve_model(project_dir, model or cfg.serve.model, store_root=store_root)
    check_model_safety(project_dir, context_model, allow_unsafe_model)
    provenance = model_labels(model, store_root)
    if tag is None and provenance:  # a stored version: the image is NAME:N, ready for `dockyard push NAME:N`
        tag = f"{cfg.name}:{provenance['io.dockyard.model-version']}"
    built = project.build(project_dir, engine, target="serve", model_file=context_model, tag=tag, on_line=on_line,
                          labels=provenance)
    container = name or f"dockyard-serve-{cfg.name}-{port}"
    engine.remove_container(container)
    spec = RunSpec(
        image=built.image_id,
        name=container,
        cpus=cfg.resources.cpus,
        memory=cfg.resources.memory,
        pids=cfg.resources.pids,
        gpus=cfg.resources.gpus,
        ports=((port, CONTAINER_PORT),),
        public=public,
        labels={"io.dockyard.project": cfg.name, "io.dockyard.role": "serve", **(labels or {})},
        remove=False,
    )
    with tempfile.TemporaryDirectory(prefix="dockyard-secrets-") as tmp:
        if secrets:
            from .runsecrets import SECRETS_DIR, secret_file

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
    return ServeOutcome(url, cid, built.image_id, built.tag)


def _running(engine: Engine, cid: str) -> bool:
    out = engine.docker("inspect", "--format", "{{.State.Running}}", cid, check=False)
    return out.stdout.strip() == "true"


def wait_ready(url: str, timeout: float, *, alive: Callable[[], bool] = lambda: True) -> float:
    """Poll /readyz until 200; fail early if the server process is gone."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
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


def serve_local(project_dir: Path, *, model: str | None = None, port: int = 8080, host: str = "127.0.0.1",
                extra: tuple[str, ...] = ()) -> list[str]:
    """The argv that runs the same runtime outside a container, in the current Python."""
    project_dir = project_dir.resolve()
    cfg = load_config(project_dir)
    argv = [sys.executable, "-m", "dockyard.runtime", "--host", host, "--port", str(port), "--name", cfg.name,
            "--max-batch-size", str(cfg.serve.max_batch_size), "--max-batch-wait-ms", f"{cfg.serve.max_batch_wait_ms:g}",
            "--workers", str(cfg.serve.workers)]
    model_file = model or cfg.serve.model
    if cfg.serve.predictor and not (model and Path(model).suffix.lower() in MODEL_SUFFIXES):
        argv += ["--predictor", predictor_module(cfg.serve.predictor), "--app-dir", str(project_dir)]
    elif model_file:
        path = Path(model_file) if os.path.isabs(model_file) else project_dir / model_file
        if not path.is_file():
            raise UsageError(f"model file {path} does not exist", "train first, or pass --model FILE")
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
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


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


def predict_local(project_dir: Path, inputs: Mapping[str, Any], *, model: str | None = None) -> Any:
    """Start the runtime on a free loopback port, predict once, stop it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(serve_local(project_dir, model=model, port=port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
