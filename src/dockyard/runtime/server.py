"""Lifecycle: listen, set up + warm up the model, become ready, drain on SIGTERM.

    listening  -> /healthz answers at once; /readyz says 503 "loading"
    ready      -> after setup() and one warm-up prediction succeeded
    draining   -> SIGTERM/SIGINT: /readyz fails at once (the listener closes), requests in flight
                  finish, idle connections close; exit 0 when idle or when the grace period ends
    setup fail -> the error is logged, the process exits 1; /readyz never answered 200

``--workers N`` forks N worker processes that each bind the port with SO_REUSEPORT (the kernel
spreads connections) and each load the model; the parent forwards signals and exits with the
first failing worker's status. SO_REUSEPORT would let a second ``--workers`` instance share the
port unnoticed, so the parent first claims the port in the abstract socket namespace (Linux; per
network namespace, like ports): a second instance fails to start instead.

Errors the event loop reports (accept() out of file descriptors, a callback that raised) are
logged as JSON, at most LOOP_ERRORS_PER_WINDOW per window, each traceback once.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from typing import Any, Sequence

from . import jsonfast, llhttp
from .config import ConfigProblem, ServeConfig, parse_args
from .http import HttpConnection, error_body, sweep
from .logs import log
from .model import PythonModel, SetupError
from .routes import Routes

EXIT_SETUP_FAILED = 1
EXIT_BAD_CONFIG = 2
LOOP_ERRORS_PER_WINDOW = 5
LOOP_ERRORS_WINDOW_S = 10.0
FD_RESERVE = 64  # file descriptors kept back from --max-connections 0 for the model, logs and refusals


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_args(argv)
    except ConfigProblem as exc:
        log("bad_config", "error", error=exc.problem, fix=exc.fix)
        return EXIT_BAD_CONFIG
    return serve(config)


def serve(config: ServeConfig) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit status."""
    if config.workers > 1:
        return _supervise(config)
    return _run_worker(config, reuse_port=False)


def make_model(config: ServeConfig) -> Any:
    if config.predictor:
        from .cog_model import CogModel, is_cog_predictor  # Cog predictors run with the real cog package

        if is_cog_predictor(config.predictor, config.app_dir):
            return CogModel(config.predictor, config.app_dir, config.name, config.version)
        return PythonModel(config.predictor, config.app_dir, config.name, config.version)
    from .loaders import model_from_file

    assert config.model is not None
    return model_from_file(config.model, config.name, config.version, config.input_shape)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]  # optional: faster when present

        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.new_event_loop()


def max_connections(config: ServeConfig) -> int:
    """--max-connections, or with 0 the open-files limit less a reserve (0: no limit known)."""
    if config.max_connections:
        return config.max_connections
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 0
    if soft == resource.RLIM_INFINITY:
        return 0
    return max(16, soft - FD_RESERVE)


class LoopErrors:
    """The event loop's exception handler: JSON lines, rate-limited, one traceback per kind.

    Without it asyncio prints plain tracebacks to stderr, one per failed accept() when file
    descriptors run out: thousands a second, and the JSON log is unreadable."""

    def __init__(self) -> None:
        self.window_start = time.monotonic()
        self.logged = 0
        self.suppressed = 0
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.flush()
        if self.logged >= LOOP_ERRORS_PER_WINDOW:
            self.suppressed += 1
            return
        self.logged += 1
        exc = context.get("exception")
        message = str(context.get("message") or "event loop error")
        fields: dict[str, Any] = {"error": f"{type(exc).__name__}: {exc}" if exc is not None else message,
                                  "message": message}
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            fields["fix"] = ("raise the open-files limit (docker run --ulimit nofile=N) or lower "
                             "--max-connections")
        key = (message, type(exc).__name__)
        if exc is not None and key not in self.seen:
            self.seen.add(key)
            fields["traceback"] = "".join(traceback.format_exception(exc))
        log("loop_error", "error", **fields)

    def flush(self) -> None:
        """Start a new window once the old one is over, saying how many lines it held back."""
        now = time.monotonic()
        if now - self.window_start < LOOP_ERRORS_WINDOW_S:
            return
        if self.suppressed:
            log("loop_errors_suppressed", "warning", count=self.suppressed,
                seconds=round(now - self.window_start, 1))
        self.window_start, self.logged, self.suppressed = now, 0, 0


def claim_port(port: int) -> socket.socket | None:
    """Hold an abstract unix socket named after the port for as long as this process lives, so a
    second --workers instance on the same port fails instead of silently sharing it (both would
    bind with SO_REUSEPORT). Raises OSError when another instance holds it; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    guard = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        guard.bind(f"\0dockyard-runtime-port-{port}")
    except OSError:
        guard.close()
        raise
    return guard


def _listen(host: str, port: int, reuse_port: bool, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


class Worker:
    def __init__(self, config: ServeConfig, reuse_port: bool, metrics_dir: str | None = None,
                 index: int = 0) -> None:
        self.config = config
        self.loop = _new_loop()
        try:  # before the user's code is imported: our httptools is loaded and hidden again first
            parser_class, self.http_parser = llhttp.select(config.http_parser)
        except ValueError as exc:
            raise SetupError(f"--http-parser llhttp: {exc}",
                             "use --http-parser auto (falls back to the pure-Python parser), or install "
                             "httptools") from None
        self.model = make_model(config)
        self.routes = Routes(self.model, max_body_bytes=config.max_body_bytes,
                             request_timeout_s=config.request_timeout_s, max_batch_size=config.max_batch_size,
                             max_batch_wait_ms=config.max_batch_wait_ms, max_queue=config.max_queue,
                             loop=self.loop, metrics_dir=metrics_dir, worker=index,
                             liveness_grace_s=config.liveness_grace_s)
        self.routes.parser_class = parser_class
        self.reuse_port = reuse_port
        self.exit_code = 0
        self.server: asyncio.base_events.Server | None = None
        self.started = time.monotonic()
        self.loop_errors = LoopErrors()

    def run(self) -> int:
        try:
            sock = _listen(self.config.host, self.config.port, self.reuse_port, self.config.backlog)
        except OSError as exc:
            log("listen_failed", "error", error=str(exc), host=self.config.host, port=self.config.port,
                fix="pick a free port with --port, or stop whatever listens there")
            return EXIT_SETUP_FAILED
        asyncio.set_event_loop(self.loop)
        self.loop.set_exception_handler(self.loop_errors)
        cap = max_connections(self.config)
        # create_server listens again, with its own default backlog of 100 unless given ours
        self.server = self.loop.run_until_complete(self.loop.create_server(
            lambda: HttpConnection(self.routes, cap), sock=sock, backlog=self.config.backlog))
        port = sock.getsockname()[1]
        log("listening", host=self.config.host, port=port, url=f"http://{self.config.host}:{port}",
            model=self.model.name, version=self.model.version, backlog=self.config.backlog,
            max_connections=cap or None, http_parser=self.http_parser)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.drain, sig)
        self.routes.runner.start(self._on_ready)
        self._sweep()
        try:
            self.loop.run_forever()
        finally:
            self.routes.runner.stop()
            self.loop.close()
        return self.exit_code

    def _sweep(self) -> None:
        """Every second or so: 408 for stalled requests, close idle keep-alive connections, and
        publish this worker's metrics for its siblings (--workers N)."""
        read, idle = self.config.read_timeout_s, self.config.keepalive_timeout_s
        sweep(self.routes.connections, read, idle)
        self.routes.metrics.publish()
        self.loop_errors.flush()
        self.loop.call_later(min([1.0] + [t / 2 for t in (read, idle) if t > 0]), self._sweep)

    def _on_ready(self, error: BaseException | None) -> None:
        if error is not None:
            problem = getattr(error, "problem", f"setup failed: {type(error).__name__}: {error}")
            fix = getattr(error, "fix", "fix the exception in setup() (traceback in this log)")
            log("setup_failed", "error", error=problem, fix=fix,
                traceback="".join(traceback.format_exception(error)) if not isinstance(error, SetupError)
                else None)
            self.exit_code = EXIT_SETUP_FAILED
            self.loop.stop()
            return
        if self.routes.draining:
            return
        self.routes.ready = True
        log("ready", model=self.model.name, version=self.model.version, platform=self.model.platform,
            inputs=[s.metadata() for s in self.model.inputs], outputs=[s.metadata() for s in self.model.outputs],
            batching=bool(self.model.batchable), json=jsonfast.BACKEND, http_parser=self.routes.parser_class.backend,
            seconds=round(time.monotonic() - self.started, 3))

    def drain(self, sig: int = signal.SIGTERM) -> None:
        if self.routes.draining:
            return
        self.routes.draining = True
        busy = sum(1 for c in self.routes.connections if c.busy)
        log("draining", signal=signal.Signals(sig).name, in_flight=busy,
            grace_period_s=self.config.grace_period_s)
        if self.server is not None:
            self.server.close()  # new connections are refused: readiness fails at once
        deadline = time.monotonic() + self.config.grace_period_s
        self._check_drained(deadline)

    def _check_drained(self, deadline: float) -> None:
        for conn in list(self.routes.connections):
            conn.close_if_idle()  # busy ones close after their response (draining => no keep-alive)
        busy = sum(1 for c in self.routes.connections if c.busy)
        if busy == 0 and self.routes.runner.idle:
            log("stopped", reason="drained")
            self.loop.stop()
        elif time.monotonic() >= deadline:
            for conn in list(self.routes.connections):  # a clear answer beats a dropped connection
                conn.respond(503, error_body("the server shut down before this prediction finished; retry"),
                             extra=b"retry-after: 1\r\n")
            log("stopped", "warning", reason="grace period over", abandoned=busy)
            self.loop.stop()
        else:
            self.loop.call_later(0.02, self._check_drained, deadline)


def _run_worker(config: ServeConfig, reuse_port: bool, metrics_dir: str | None = None, index: int = 0) -> int:
    try:
        return Worker(config, reuse_port, metrics_dir, index).run()
    except SetupError as exc:
        log("setup_failed", "error", error=exc.problem, fix=exc.fix)
        return EXIT_SETUP_FAILED


def _supervise(config: ServeConfig) -> int:
    try:
        guard = claim_port(config.port)
    except OSError:
        log("listen_failed", "error", error=f"another dockyard runtime with --workers already serves port "
                                            f"{config.port}; SO_REUSEPORT would split connections between them",
            host=config.host, port=config.port, fix="stop the other instance, or pick a free port with --port")
        return EXIT_SETUP_FAILED
    try:
        return _supervise_in_tmp(config)
    finally:
        if guard is not None:
            guard.close()


def _supervise_in_tmp(config: ServeConfig) -> int:
    try:  # where workers publish metrics for each other (a tmpfs /tmp on a read-only root)
        metrics_dir: str | None = tempfile.mkdtemp(prefix="dockyard-metrics-")
    except OSError as exc:
        metrics_dir = None
        log("metrics_per_worker", "warning", error=f"no writable temporary directory: {exc}",
            fix="give the container a writable /tmp (--tmpfs /tmp) so /metrics covers every worker")
    try:
        return _supervise_workers(config, metrics_dir)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with(supervisor: int) -> None:
    """A worker must not outlive its supervisor: killed with SIGKILL (or by the OOM killer), the
    supervisor cannot forward a signal, and its workers would go on serving the port unsupervised
    (outside a container nothing else reaps them). Linux: the kernel sends the worker SIGTERM
    (a normal drain) when the supervisor dies; elsewhere this is a no-op."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux / no libc symbol
        return
    if os.getppid() != supervisor:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _supervise_workers(config: ServeConfig, metrics_dir: str | None) -> int:
    children: dict[int, int] = {}
    supervisor = os.getpid()
    for index in range(config.workers):
        pid = os.fork()
        if pid == 0:  # child: never return into the parent's code path
            code = 1
            try:
                _die_with(supervisor)
                code = _run_worker(config, reuse_port=True, metrics_dir=metrics_dir, index=index)
            finally:
                os._exit(code)
        children[pid] = index
    log("supervising", workers=config.workers, pids=sorted(children))
    stopping = False

    def forward(sig: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    while children:
        try:
            pid, raw = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        children.pop(pid, None)
        code = os.waitstatus_to_exitcode(raw)
        if code != 0 and not stopping:
            # One worker dying means this replica is broken: stop the rest so the orchestrator
            # restarts us, rather than serving at a fraction of capacity unnoticed.
            log("worker_exited", "error", pid=pid, exit_code=code)
            status = status or (code if code > 0 else 1)
            forward(signal.SIGTERM, None)
    return status


if __name__ == "__main__":
    sys.exit(main())
