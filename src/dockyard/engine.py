"""The only module that talks to the Docker Engine.

Every docker invocation is built as an argv list and goes through :meth:`Engine.docker`,
which logs ``shlex.join(argv)`` so a failure report always contains the exact command.
We use the docker CLI rather than the Python SDK because the SDK's build path cannot use
BuildKit (secret and cache mounts), which dockyard depends on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from .errors import BuildError, EngineError, RunError, UsageError
from .runtime import contract

log = logging.getLogger("dockyard.engine")

Printer = Callable[[str], None]  # receives output line by line (build progress, logs)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class TerminalProgress:
    """A Printer for a terminal: builds then show BuildKit's own live display (``--progress
    auto`` on a pseudo-terminal), written through ``raw``, instead of 100+ plain lines. Every
    other user treats it as a plain Printer."""

    def __init__(self, printer: Printer, raw: Callable[[bytes], None], size: tuple[int, int] = (80, 24)) -> None:
        self.printer = printer
        self.raw = raw
        self.size = size  # (columns, rows) of the terminal BuildKit draws on

    def __call__(self, line: str) -> None:
        self.printer(line)

#: Host paths a container must never mount unless the user names the risk.
DANGEROUS_MOUNTS = ("/", "/etc", "/proc", "/sys", "/var/run/docker.sock", "/run/docker.sock")
TEST_LABEL = contract.LABEL_TEST


@dataclass(frozen=True)
class BuildKitSupport:
    """How this host can run BuildKit builds, or why it cannot."""

    mode: str  # "buildx" | "env" | "none"
    docker: str  # path to the client binary to use
    client_version: str
    why: str


@dataclass(frozen=True)
class Secret:
    """A BuildKit/runtime secret: ``id`` plus a source file or environment variable."""

    id: str
    src: str | None = None
    env: str | None = None

    @classmethod
    def parse(cls, text: str) -> Secret:
        """Parse ``id=NAME,src=FILE`` or ``id=NAME,env=VAR`` (the docker build syntax)."""
        parts = dict(p.split("=", 1) for p in text.split(",") if "=" in p)
        sid = parts.get("id", "")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", sid) or ("src" in parts) == ("env" in parts):
            raise UsageError(
                f"bad --secret {text.split(',')[0]!r}...: expected id=NAME,src=FILE or id=NAME,env=VAR",
                "example: --secret id=hf_token,env=HF_TOKEN",
            )
        secret = cls(id=sid, src=parts.get("src"), env=parts.get("env"))
        if secret.src and not Path(secret.src).is_file():
            raise UsageError(f"secret {sid!r}: file {secret.src} does not exist", "point src= at a readable file")
        if secret.env and secret.env not in os.environ:
            raise UsageError(f"secret {sid!r}: environment variable {secret.env} is not set", f"export {secret.env}=...")
        return secret

    def build_flag(self) -> str:
        return f"id={self.id},src={self.src}" if self.src else f"id={self.id},env={self.env}"


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class RunSpec:
    """Everything about one container run. :func:`run_args` turns it into docker flags."""

    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    cpus: float = 2.0
    memory: str = "2g"
    pids: int = 512
    gpus: str | None = None
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[tuple[int, int], ...] = ()  # (host, container)
    public: bool = False
    user: str | None = None
    workdir: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str | None = None
    detach: bool = False
    remove: bool = True
    tmpfs_size: str = "256m"
    read_only: bool = True
    # Risky options: refused by validate_run_spec unless the matching allow_* is set.
    privileged: bool = False
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    allow_privileged: bool = False
    allow_host_namespaces: bool = False
    allow_dangerous_mounts: bool = False


class RiskyOptions(TypedDict, total=False):
    """RunSpec's risky requests and the acknowledgements that allow them (CLI flags)."""

    privileged: bool
    host_network: bool
    host_pid: bool
    host_ipc: bool
    allow_privileged: bool
    allow_host_namespaces: bool


def validate_run_spec(spec: RunSpec) -> None:
    """Refuse dangerous requests unless a flag that names the risk was given."""
    if spec.privileged and not spec.allow_privileged:
        raise UsageError(
            "refusing to start a privileged container: it gets every capability and all host devices",
            "pass --allow-privileged if you really accept that risk",
        )
    if (spec.host_network or spec.host_pid or spec.host_ipc) and not spec.allow_host_namespaces:
        which = [n for n, on in (("network", spec.host_network), ("pid", spec.host_pid), ("ipc", spec.host_ipc)) if on]
        raise UsageError(
            f"refusing to share the host {'/'.join(which)} namespace with the container",
            "pass --allow-host-namespaces if you really accept that risk",
        )
    for m in spec.mounts:
        # realpath: a symlink to the docker socket is the socket; and mounting a parent
        # (say /var/run) exposes everything below it.
        src = os.path.realpath(m.source)
        risky = {os.path.realpath(p) for p in DANGEROUS_MOUNTS} | set(DANGEROUS_MOUNTS)
        exposes = src in risky or any(r.startswith(src.rstrip("/") + "/") for r in risky if r != "/")
        if exposes and not spec.allow_dangerous_mounts:
            shown = m.source if os.path.normpath(m.source) == src else f"{m.source} (= {src})"
            raise UsageError(
                f"refusing to mount {shown} into the container: it exposes the host",
                "mount a narrower directory, or pass --allow-dangerous-mounts",
            )


def run_args(spec: RunSpec) -> list[str]:
    """The ``docker run`` flags for a spec: hardened unless the spec explicitly relaxes it."""
    validate_run_spec(spec)
    args = ["run"]
    if spec.detach:
        args.append("--detach")
    if spec.remove:
        args.append("--rm")
    if spec.name:
        args += ["--name", spec.name]
    if spec.read_only:
        args += ["--read-only", "--tmpfs", f"/tmp:rw,nosuid,nodev,size={spec.tmpfs_size}"]
    args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    args += ["--pids-limit", str(spec.pids), "--memory", spec.memory, "--cpus", f"{spec.cpus:g}"]
    if spec.gpus:
        args += ["--gpus", spec.gpus]
    if spec.user:
        args += ["--user", spec.user]
    if spec.workdir:
        args += ["--workdir", spec.workdir]
    if spec.privileged:
        args.append("--privileged")
    if spec.host_network:
        args += ["--network", "host"]
    elif spec.network:
        args += ["--network", spec.network]
    if spec.host_pid:
        args += ["--pid", "host"]
    if spec.host_ipc:
        args += ["--ipc", "host"]
    for m in spec.mounts:
        opt = f"type=bind,source={os.path.abspath(m.source)},target={m.target}"
        args += ["--mount", opt + (",readonly" if m.read_only else "")]
    for key, value in spec.env.items():
        args += ["--env", f"{key}={value}"]
    bind = "0.0.0.0" if spec.public else "127.0.0.1"
    for host_port, container_port in spec.ports:
        args += ["--publish", f"{bind}:{host_port}:{container_port}"]
    for key, value in spec.labels.items():
        args += ["--label", f"{key}={value}"]
    args.append(spec.image)
    args += list(spec.command)
    return args


def detect_buildkit(candidates: Sequence[str] | None = None) -> BuildKitSupport:
    """Find a docker client that can build with BuildKit.

    Order: any client with a working ``buildx`` plugin; else a client older than 23.0,
    which still honours ``DOCKER_BUILDKIT=1`` without buildx (newer clients refuse).
    """
    paths = list(candidates) if candidates is not None else _docker_candidates()
    if not paths:
        return BuildKitSupport("none", "", "", "no docker client found on PATH")
    seen: list[str] = []
    for path in paths:
        version = _client_version(path)
        if version is None:
            continue
        seen.append(f"{path} ({version})")
        probe = subprocess.run([path, "buildx", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return BuildKitSupport("buildx", path, version, f"{path} has the buildx plugin")
        if _major(version) < 23:
            return BuildKitSupport("env", path, version, f"{path} is client {version}: DOCKER_BUILDKIT=1 works")
    return BuildKitSupport(
        "none",
        paths[0],
        "",
        "no client with BuildKit: "
        + (", ".join(seen) or "none runs")
        + " lack the buildx plugin, and clients >= 23 need it for BuildKit",
    )


def _docker_candidates() -> list[str]:
    override = os.environ.get("DOCKYARD_DOCKER")
    if override:
        return [override]
    found: list[str] = []
    for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/usr/local/bin"]:
        p = os.path.join(d, "docker")
        if os.access(p, os.X_OK) and os.path.realpath(p) not in {os.path.realpath(f) for f in found}:
            found.append(p)
    return found


def _client_version(path: str) -> str | None:
    try:
        out = subprocess.run(
            [path, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    return version or None


def _major(version: str) -> int:
    m = re.match(r"(\d+)", version)
    return int(m.group(1)) if m else 0


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    tag: str
    seconds: float
    log: str



def _interrupt(proc: subprocess.Popen[Any], grace: float) -> None:
    """Ctrl-C during a docker command. docker runs in its own session, so the signal reached only
    us: interrupt the client deliberately (BuildKit then cancels the build and removes its
    intermediate containers), and kill it if it does not stop in time."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

class Engine:
    """A connection to one Docker Engine through its CLI."""

    def __init__(self, support: BuildKitSupport) -> None:
        self.support = support
        self.binary = support.docker or shutil.which("docker") or "docker"

    # -- the one door ---------------------------------------------------------------
    @classmethod
    def connect(cls) -> Engine:
        support = detect_buildkit()
        if not support.docker:
            raise EngineError("no docker client found", "install one: apt-get install -y docker.io")
        engine = cls(support)
        engine.server_version()
        return engine

    def docker(
        self,
        *args: str,
        check: bool = True,
        input: str | bytes | None = None,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, *args]
        log.debug("$ %s", shlex.join(argv))
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=text,
                input=input,
                timeout=timeout,
                env={**os.environ, **(env or {})},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"`{shlex.join(argv[:4])} ...` timed out after {timeout}s", "check the engine") from exc
        if check and proc.returncode != 0:
            raise classify_failure(argv, proc.returncode, _as_text(proc.stderr))
        return proc

    def stream(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start docker with merged stdout/stderr for live output; the caller owns the process."""
        argv = [self.binary, *args]
        log.debug("$ %s", shlex.join(argv))
        return subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # Ctrl-C reaches us, and we stop docker deliberately
        )

    # -- engine facts -------------------------------------------------------------
    def server_version(self) -> str:
        proc = self.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=30)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise EngineError(
                "cannot reach the Docker Engine: " + (_last_line(proc.stderr) or "no answer"),
                "start it (e.g. `dockerd &` or `systemctl start docker`) or set DOCKER_HOST",
            )
        return proc.stdout.strip()

    def info(self) -> dict[str, Any]:
        """``docker info`` as JSON (NCPU, MemTotal, Swarm, ...)."""
        return dict(json.loads(self.docker("info", "--format", "{{json .}}", timeout=30).stdout or "{}"))

    def require_buildkit(self) -> None:
        if self.support.mode == "none":
            raise EngineError(
                "BuildKit is not available: " + self.support.why,
                "install the buildx plugin (apt-get install docker-buildx) or use a docker client < 23 "
                "(Debian's docker.io 20.10 at /usr/bin/docker); set DOCKYARD_DOCKER to choose the client",
            )

    # -- images -------------------------------------------------------------------
    def build(
        self,
        context: Path,
        dockerfile: Path,
        tag: str,
        *,
        secrets: Sequence[Secret] = (),
        build_args: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        target: str | None = None,
        on_line: Printer | None = None,
        no_cache: bool = False,
    ) -> BuildResult:
        """Build with BuildKit; stream plain progress lines to ``on_line``, or BuildKit's live
        display when ``on_line`` is a :class:`TerminalProgress`."""
        self.require_buildkit()
        # --iidfile: the id of THIS build, not whatever the tag points at by the time we ask.
        iidfile = Path(tempfile.mkstemp(prefix="dockyard-iid-")[1])
        tty = isinstance(on_line, TerminalProgress)
        args = ["build", "--progress", "auto" if tty else "plain", "--iidfile", str(iidfile), "-f", str(dockerfile),
                "-t", tag]
        if self.support.mode == "buildx":
            args = ["buildx", *args, "--load"]
        for s in secrets:
            args += ["--secret", s.build_flag()]
        for k, v in (build_args or {}).items():
            args += ["--build-arg", f"{k}={v}"]
        for k, v in (labels or {}).items():
            args += ["--label", f"{k}={v}"]
        if target:
            args += ["--target", target]
        if no_cache:
            args.append("--no-cache")
        args.append(str(context))
        started = time.monotonic()
        if isinstance(on_line, TerminalProgress):
            lines = list(self._follow_tty(args, on_line, env={"DOCKER_BUILDKIT": "1"}))
        else:
            lines = list(self._follow(args, on_line, env={"DOCKER_BUILDKIT": "1"}))
        code = lines.pop() if lines and isinstance(lines[-1], int) else 1
        text_lines = [x for x in lines if isinstance(x, str)]
        image_id = iidfile.read_text().strip() if iidfile.exists() else ""
        iidfile.unlink(missing_ok=True)
        if code != 0:
            raise build_failure(text_lines)
        return BuildResult(image_id or self.image_id(tag), tag, time.monotonic() - started, "\n".join(text_lines))

    def _follow(
        self,
        args: list[str],
        on_line: Printer | None,
        *,
        env: Mapping[str, str] | None = None,
        grace: float = 20.0,
    ) -> Iterator[str | int]:
        """Yield output lines then the exit code; on Ctrl-C stop docker and re-raise."""
        proc = self.stream(*args, env=env)
        assert proc.stdout is not None
        try:
            with proc.stdout:
                for line in proc.stdout:
                    line = line.rstrip("\n")
                    if on_line:
                        on_line(line)
                    yield line
            yield proc.wait()
        except KeyboardInterrupt:
            _interrupt(proc, grace)
            raise

    def _follow_tty(self, args: list[str], progress: TerminalProgress, *, env: Mapping[str, str],
                    grace: float = 20.0) -> Iterator[str | int]:
        """Run docker on a pseudo-terminal (so BuildKit draws its live display), pass the bytes to
        ``progress.raw``, then yield the output as plain lines (escapes removed) and the exit code."""
        import fcntl
        import pty
        import struct
        import termios

        argv = [self.binary, *args]
        log.debug("$ %s", shlex.join(argv))
        master, slave = pty.openpty()
        cols, rows = progress.size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                env={**os.environ, **env}, start_new_session=True)
        os.close(slave)
        seen = bytearray()
        try:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                progress.raw(chunk)
                seen += chunk
            code = proc.wait()
        except KeyboardInterrupt:
            _interrupt(proc, grace)
            raise
        finally:
            os.close(master)
        yield from (line for line in _ANSI.sub("", seen.decode(errors="replace")).splitlines() if line.strip())
        yield code

    def image_id(self, ref: str) -> str:
        return self.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    def image_exists(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False).returncode == 0

    def inspect(self, ref: str, kind: str = "image") -> dict[str, object]:
        data = json.loads(self.docker(kind, "inspect", ref).stdout)
        return dict(data[0])

    def images(self, filters: Sequence[str] = ()) -> list[dict[str, str]]:
        args = ["images", "--format", "{{json .}}", "--no-trunc"]
        for f in filters:
            args += ["--filter", f]
        return [json.loads(line) for line in self.docker(*args).stdout.splitlines() if line.strip()]

    def save_image(self, ref: str, dest: Path) -> Path:
        self.docker("save", "-o", str(dest), ref, timeout=600)
        return dest

    def remove_image(self, ref: str, *, force: bool = False) -> None:
        self.docker("image", "rm", *(["--force"] if force else []), ref, check=False)

    def tag(self, source: str, target: str) -> None:
        self.docker("tag", source, target)

    def import_tar(self, tar_stream: Sequence[str], ref: str, changes: Sequence[str] = ()) -> str:
        """Pipe ``tar_stream`` (an argv producing a tar on stdout) into ``docker import``."""
        argv = [self.binary, "import"]
        for change in changes:
            argv += ["--change", change]
        argv += ["-", ref]
        log.debug("$ %s | %s", shlex.join(list(tar_stream)), shlex.join(argv))
        producer = subprocess.Popen(list(tar_stream), stdout=subprocess.PIPE)
        consumer = subprocess.run(argv, stdin=producer.stdout, capture_output=True, text=True, check=False)
        assert producer.stdout is not None
        producer.stdout.close()
        if producer.wait() != 0 or consumer.returncode != 0:
            raise classify_failure(argv, consumer.returncode, consumer.stderr or "tar failed")
        return consumer.stdout.strip()

    # -- containers ---------------------------------------------------------------
    def run(self, spec: RunSpec, *, on_line: Printer | None = None) -> int:
        """Run a container in the foreground, streaming its output; Ctrl-C removes it."""
        name = spec.name or f"dockyard-run-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
        spec = dataclasses.replace(spec, name=name)
        try:
            lines = list(self._follow(run_args(spec), on_line, grace=2.0))
        except KeyboardInterrupt:
            self.remove_container(name)
            raise
        code = lines[-1] if lines and isinstance(lines[-1], int) else 1
        return int(code)

    def start(self, spec: RunSpec) -> str:
        """Start a detached container and return its id."""
        detached = dataclasses.replace(spec, detach=True)
        return self.docker(*run_args(detached)).stdout.strip()

    def remove_container(self, ref: str) -> None:
        self.docker("rm", "--force", "--volumes", ref, check=False, timeout=60)

    def logs(self, ref: str, tail: int | None = None) -> str:
        args = ["logs"] + (["--tail", str(tail)] if tail else []) + [ref]
        proc = self.docker(*args, check=False)
        return (proc.stdout or "") + (proc.stderr or "")

    def wait(self, ref: str, timeout: float | None = None) -> int:
        return int(self.docker("wait", ref, timeout=timeout).stdout.strip() or 1)

    def inspect_many(self, refs: Sequence[str], kind: str = "container") -> list[dict[str, object]]:
        """``docker inspect`` of several objects in one call; ones that vanished meanwhile are left out."""
        if not refs:
            return []
        proc = self.docker(kind, "inspect", *refs, check=False, timeout=60)
        return [dict(x) for x in json.loads(proc.stdout or "[]")]

    def stats(self, refs: Sequence[str]) -> dict[str, dict[str, str]]:
        """One ``docker stats --no-stream`` sample per running container, keyed by full id."""
        if not refs:
            return {}
        proc = self.docker("stats", "--no-stream", "--no-trunc", "--format", "{{json .}}", *refs,
                           check=False, timeout=60)
        rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        return {str(r.get("ID", "")): r for r in rows}

    def containers(self, filters: Sequence[str] = (), all_: bool = True) -> list[dict[str, str]]:
        args = ["ps", "--format", "{{json .}}", "--no-trunc"] + (["--all"] if all_ else [])
        for f in filters:
            args += ["--filter", f]
        return [json.loads(line) for line in self.docker(*args).stdout.splitlines() if line.strip()]


def _as_text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def classify_failure(argv: Sequence[str], code: int, stderr: str) -> EngineError | RunError | UsageError:
    """Map docker's stderr to one of our errors, in one place."""
    msg = _last_line(stderr)
    command = shlex.join(list(argv))
    if "Cannot connect to the Docker daemon" in stderr or "connect: no such file" in stderr:
        return EngineError(
            "cannot reach the Docker Engine: " + msg, "start it (e.g. `dockerd &`) or set DOCKER_HOST"
        )
    if "permission denied" in stderr and "docker.sock" in stderr:
        return EngineError("no permission to use the Docker socket", "add yourself to the docker group, or run as root")
    if re.search(r"No such image|image .* not found|pull access denied|manifest unknown", stderr):
        return EngineError(f"image not found: {msg}", "build it first (`dockyard build`) or check the name")
    port = re.search(r"Bind for ([\d.:\[\]]+) failed: port is already allocated|listen tcp[46]? ([\d.:\[\]]+): bind: address already in use", stderr)
    if port:
        return UsageError(f"host port {port.group(1) or port.group(2)} is already in use",
                          "pass another --port (0 picks any free port), or stop what listens there")
    return RunError(f"docker failed (exit {code}): {msg}", f"command was: {command}", exit_status=code, log_tail=stderr)


_STEP = re.compile(r"^#(\d+) (\[.*)$")
_TTY_ERROR = re.compile(r"=> ERROR (\[.*?\] .*?)\s+\d+(?:\.\d+)?s\s*$")
_ERROR = re.compile(r"^(#\d+ )?ERROR[: ]|^error:|failed to solve", re.IGNORECASE)


def build_failure(lines: Sequence[str]) -> BuildError:
    """Name the failing BuildKit step and keep the tail of its log."""
    steps: dict[str, str] = {}
    failing = ""
    for line in lines:
        m = _STEP.match(line)
        if m:
            steps[m.group(1)] = m.group(2)
        if _ERROR.search(line):
            num = line.split(" ", 1)[0].lstrip("#")
            failing = steps.get(num, failing)
    if not failing:  # the tty display names the failing step as "=> ERROR [2/5] RUN ...   0.9s"
        failing = next((m.group(1) for ln in lines if (m := _TTY_ERROR.search(ln))), "")
    step_lines = [ln for ln in lines if failing and ln.startswith("#")]
    num = next((k for k, v in steps.items() if v == failing), "")
    tail_src = [ln for ln in step_lines if ln.startswith(f"#{num} ")] if num else list(lines)
    tail = "\n".join(tail_src[-25:] or list(lines)[-25:])
    reason = next((ln for ln in reversed(lines) if _ERROR.search(ln)), _last_line("\n".join(lines)))
    unreachable = _unreachable(tail_src or list(lines))
    if unreachable:  # say which server the build could not reach, not just "exit code: 2"
        url, cause = unreachable
        host = urllib.parse.urlsplit(url).netloc or url
        # torch's CPU builds live only there; a local wheelhouse the host's pip uses serves instead
        wheels = (", or put its CPU wheel for this Python in a folder named by PIP_FIND_LINKS (or find-links in "
                  "pip.conf): dockyard then takes torch from there" if host == "download.pytorch.org" else "")
        return BuildError(
            f"build failed at step {_brief(failing) or '(unknown)'}: cannot reach {url} ({cause})",
            f"the build downloads from {host}, which this engine cannot reach: let it through (DNS, proxy), "
            f"or install from an index it can reach{wheels}; the log tail is below",
            step=failing,
            log_tail=tail,
        )
    conflict = _unresolvable(tail_src or list(lines))
    if conflict:  # the resolver's own explanation, not "executor failed running [...]"
        return BuildError(
            f"build failed at step {_brief(failing) or '(unknown)'}: no set of versions satisfies the project's "
            f"requirements: {conflict}",
            "change the versions the explanation names in the project's dependency file (pip refuses the same "
            "set: this is the requirements', not the image's); if a version has no release for this Python, pin "
            "another Python; the log tail is below",
            step=failing,
            log_tail=tail,
        )
    return BuildError(
        f"build failed at step {failing or '(unknown)'}: {reason.strip()}",
        "fix the failing step (log tail below); re-run with --no-cache if a cached layer is stale",
        step=failing,
        log_tail=tail,
    )


# uv/pip say which URL failed, then why, one "cause:" per line.
_FETCH = re.compile(r"(?:Failed to fetch|error sending request for url|Could not fetch URL)[:\s(]+(https?://[^\s)]+)")
_NETWORK = re.compile(r"dns error|failed to lookup address|Name or service not known|Temporary failure in name resolution|"
                      r"Connection refused|Network is unreachable|timed out|client error \(Connect\)", re.IGNORECASE)


def _unreachable(lines: Sequence[str]) -> tuple[str, str] | None:
    """(url, cause) when the failing step could not reach a server at all (DNS, connect, timeout)."""
    url = ""
    causes: list[str] = []
    for line in lines:
        found = _FETCH.search(line)
        if found and not url:
            url = found.group(1)
        hit = _NETWORK.search(line)
        if url and hit:
            causes.append(line.split("cause:", 1)[-1].strip() if "cause:" in line else hit.group(0))
    if not url or not causes:
        return None
    return url, causes[-1]


# uv: "No solution found when resolving dependencies:" then "Because ... we can conclude that ..." lines
# ("cause:" / "╰─▶" prefixed); pip: "ResolutionImpossible" / "conflicting dependencies".
_NO_SOLUTION = re.compile(r"No solution found when resolving|ResolutionImpossible|conflicting dependencies|"
                          r"requirements are unsatisfiable")
_BUILDKIT_PREFIX = re.compile(r"^#\d+ [\d.]+ ")


def _unresolvable(lines: Sequence[str]) -> str:
    """The resolver's explanation (its sentences, joined) when it found no set of versions; else ""."""
    text = [_BUILDKIT_PREFIX.sub("", ln).strip() for ln in lines]
    if not any(_NO_SOLUTION.search(ln) for ln in text):
        return ""
    why: list[str] = []
    for ln in text:
        ln = re.sub(r"^(?:cause:|╰─▶|\|)\s*", "", ln).strip()
        if re.match(r"(?:And )?[Bb]ecause |ERROR: Cannot install|The conflict is caused by|\S+ depends on ", ln):
            why.append(ln)
        elif why and ln and not ln.startswith(("hint:", "#", "ERROR", "------", ">")) and not why[-1].endswith("."):
            why[-1] += " " + ln  # a sentence the resolver wrapped over several lines
    said = " ".join(why)
    return (said[:600] + " …") if len(said) > 600 else (said or "the resolver found no versions that satisfy them all")


def _brief(step: str, limit: int = 90) -> str:
    """A step name short enough for one line: '[builder 3/3] RUN --mount=...' -> its first words."""
    return step if len(step) <= limit else step[:limit].rstrip() + " ..."
