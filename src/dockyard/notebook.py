"""`dockyard notebook`: JupyterLab in the project's own image (the ``dev`` target).

The dev image is runtime-base (same venv, framework, system packages and Python as train and
serve) plus JupyterLab and ipykernel in a layer of their own (render/notebook.py). The container
is as hardened as any other run (engine.run_args): read-only root filesystem with a tmpfs HOME
(/tmp), cap-drop ALL, no-new-privileges, CPU/memory/pids limits from dockyard.yaml, published on
127.0.0.1 only, behind a random token.

Files: the project folder is mounted read-write at /app and the server runs as the *host user*,
so what Jupyter saves appears on the host owned by that user. The host user is the invoking user
(``os.getuid()/os.getgid()``); when root runs dockyard it is the owner of the project folder
(root owning the folder is refused: Jupyter would run as uid 0).

Containers carry ``io.dockyard.managed``/``io.dockyard.role=notebook`` labels, so the lifecycle
verbs (ps, logs, stop) find them.
"""

from __future__ import annotations

import errno
import os
import secrets as _random
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import project
from .config import load_config
from .engine import Engine, Mount, Printer, RunSpec
from .errors import DockyardError, RunError, UsageError
from .runtime import contract
from .train import check_data

DEFAULT_PORT = 8888
TOKEN_FILE = f"{contract.SECRETS_DIR}/jupyter_token"  # noqa: S105 - a path, not a token


@dataclass(frozen=True)
class NotebookOutcome:
    url: str  # with the token: what a browser opens
    base_url: str  # http://127.0.0.1:PORT
    token: str
    container: str
    image: str
    tag: str
    port: int
    user: str  # uid:gid the server runs as


def host_user(project_dir: Path) -> tuple[int, int]:
    """uid/gid that saved notebooks should belong to: the invoking user, or under root the
    owner of the project folder."""
    if os.getuid() != 0:
        return os.getuid(), os.getgid()
    info = project_dir.stat()
    if info.st_uid == 0:
        raise UsageError(
            f"refusing to run Jupyter as root: you are root and {project_dir} is owned by root",
            f"run dockyard as the user who should own the notebooks, or `chown -R USER {project_dir}` "
            "(the server then runs as the folder's owner)",
        )
    return info.st_uid, info.st_gid


def check_port(port: int) -> int:
    """The port to publish on 127.0.0.1 (0 = any free one); a clear error when it is taken."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port", "pass a number from 1 to 65535, or 0 for any free port")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                why = "in use" if exc.errno == errno.EADDRINUSE else "not allowed for this user"
                raise UsageError(f"port {port} on 127.0.0.1 is {why}",
                                 "pass another --port, or --port 0 for any free port") from None
            raise
        return int(s.getsockname()[1])


def labels_for(project_dir: Path, name: str) -> dict[str, str]:
    return {contract.LABEL_MANAGED: "true", contract.LABEL_ROLE: "notebook",
            contract.LABEL_PROJECT: str(project_dir), contract.LABEL_NAME: name}


def notebook_spec(image: str, project_dir: Path, *, name: str, container: str, port: int, token_file: Path,
                  uid: int, gid: int, cpus: float, memory: str, pids: int, gpus: str | None = None,
                  data: Path | None = None, labels: Mapping[str, str] | None = None) -> RunSpec:
    """The hardened run of the dev image: only /app (the project) and the tmpfs /tmp are writable.
    The token is a read-only file (JUPYTER_TOKEN_FILE), so it is in neither `docker inspect` nor argv."""
    mounts = [Mount(str(project_dir), contract.APP_DIR), Mount(str(token_file), TOKEN_FILE, read_only=True)]
    env = {"JUPYTER_TOKEN_FILE": TOKEN_FILE, "HOME": "/tmp"}
    if data is not None:
        mounts.append(Mount(str(data), contract.DATA_DIR, read_only=True))
        env["DOCKYARD_DATA"] = contract.DATA_DIR
    return RunSpec(
        image=image, name=container, cpus=cpus, memory=memory, pids=pids, gpus=gpus,
        mounts=tuple(mounts), env=env, ports=((port, contract.NOTEBOOK_PORT),), public=False,
        user=f"{uid}:{gid}", workdir=contract.APP_DIR, remove=False, tmpfs_size="512m",
        labels={**labels_for(project_dir, name), **(labels or {})},
    )


def notebook(
    project_dir: Path,
    engine: Engine,
    *,
    port: int = DEFAULT_PORT,
    data: Path | None = None,
    gpus: str | None = None,
    name: str | None = None,
    tag: str | None = None,
    ready_timeout: float = 120.0,
    on_line: Printer | None = None,
    labels: Mapping[str, str] | None = None,
) -> NotebookOutcome:
    """Build the dev target and start JupyterLab detached; return once it answers with the token."""
    project_dir = Path(project_dir).resolve()
    cfg = load_config(project_dir)
    data = check_data(data)
    uid, gid = host_user(project_dir)
    host_port = check_port(port)  # before the build: a taken port fails in a second, not a minute
    built = project.build(project_dir, engine, target="dev", tag=tag, on_line=on_line)
    container = name or f"dockyard-notebook-{cfg.name}-{host_port}"
    engine.remove_container(container)
    token = _random.token_hex(24)
    with tempfile.TemporaryDirectory(prefix="dockyard-notebook-") as tmp:
        token_file = _token_file(Path(tmp), token, uid, gid)
        spec = notebook_spec(built.image_id, project_dir, name=cfg.name, container=container, port=host_port,
                             token_file=token_file, uid=uid, gid=gid, cpus=cfg.resources.cpus,
                             memory=cfg.resources.memory, pids=cfg.resources.pids,
                             gpus=gpus or cfg.resources.gpus, data=data, labels=labels)
        try:  # a port taken since check_port fails here as a UsageError (engine.classify_failure)
            cid = engine.start(spec)  # the bind mount keeps the file alive after tmp is removed
        except DockyardError:
            engine.remove_container(container)  # docker created it before the start failed
            raise
    base = f"http://127.0.0.1:{host_port}"
    try:
        wait_ready(base, token, ready_timeout, alive=lambda: _running(engine, cid))
    except RunError as exc:
        logs = engine.logs(cid, tail=30)
        engine.remove_container(cid)
        raise RunError(f"JupyterLab did not start: {exc.problem}", "see the container log above",
                       log_tail=logs) from None
    except KeyboardInterrupt:
        engine.remove_container(cid)
        raise
    return NotebookOutcome(f"{base}/lab?token={token}", base, token, container, built.image_id, built.tag,
                           host_port, f"{uid}:{gid}")


def _token_file(tmp: Path, token: str, uid: int, gid: int) -> Path:
    path = tmp / "token"
    path.write_text(token)
    if os.getuid() == 0:
        os.chown(tmp, uid, gid)
        os.chown(path, uid, gid)
    os.chmod(path, 0o400)
    return path


def _running(engine: Engine, cid: str) -> bool:
    out = engine.docker("inspect", "--format", "{{.State.Running}}", cid, check=False)
    return out.stdout.strip() == "true"


def wait_ready(base: str, token: str, timeout: float, *, alive: Callable[[], bool] | None = None) -> float:
    """Poll /api/status with the token until 200 (the server is up and the token works)."""
    start = time.monotonic()
    request = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if alive is not None and not alive():
            raise RunError("the server exited before it answered", "see its log")
        time.sleep(0.2)
    raise RunError(f"no answer after {timeout:.0f}s", "check the log; a large image may need longer")
