"""Serve the project's own web app (``serve: {app: api/main.py:app}``) in the hardened image.

    python -m dockyard_runtime.webapp --app api.main:app [--host H] [--port P] [--workers N]

An ASGI app (FastAPI, Starlette, Litestar, ...) runs under uvicorn, a WSGI app (Flask, ...)
under gunicorn, both from the project's own dependencies (dockyard installs neither). A thin
wrapper keeps dockyard's contract around the app: GET /healthz (the process answers), GET
/readyz (200 once the app's lifespan start-up finished, 503 while starting or draining) and
GET /metrics (request counts and latency by status, Prometheus text); the wrapper answers those
three paths before the app sees them. ``--workers N`` gives N uvicorn worker processes (each
loads the app; /readyz and /metrics answer for the worker that takes the request) or N gunicorn
workers. Stdlib only; the servers are imported late.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import threading
import time
from typing import Any, Callable, Sequence

from .contract import CONTAINER_PORT, HEALTH_PATH, READY_PATH
from .logs import log
from .model import TargetMissing, import_target

METRICS_PATH = "/metrics"
EXIT_BAD_APP = 1


class AppProblem(Exception):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


class State:
    """Readiness and request counters shared by the wrapper and the server hooks."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.seconds = 0.0

    def observe(self, status: int, seconds: float) -> None:
        with self.lock:
            key = str(status)
            self.requests[key] = self.requests.get(key, 0) + 1
            self.seconds += seconds

    def metrics(self) -> bytes:
        with self.lock:
            lines = ["# HELP dockyard_app_requests_total Requests the app answered, by status.",
                     "# TYPE dockyard_app_requests_total counter"]
            lines += [f'dockyard_app_requests_total{{status="{k}"}} {v}' for k, v in sorted(self.requests.items())]
            lines += ["# HELP dockyard_app_request_seconds_total Time spent answering requests.",
                      "# TYPE dockyard_app_request_seconds_total counter",
                      f"dockyard_app_request_seconds_total {self.seconds:.6f}",
                      f"dockyard_app_ready {1 if self.ready and not self.draining else 0}"]
        return ("\n".join(lines) + "\n").encode()


def load_app(target: str, app_dir: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not attr:
        raise AppProblem(f"--app {target!r} has no ':NAME' part", "write it as MODULE:NAME, e.g. api.main:app")
    try:
        module, attr = import_target(target, app_dir)
    except TargetMissing as exc:
        raise AppProblem(str(exc), "check serve.app in dockyard.yaml") from None
    except ModuleNotFoundError as exc:
        raise AppProblem(f"importing {module_name} needs {exc.name!r}, which is not installed",
                         f"add the package providing {exc.name} to the project's requirements") from None
    app = getattr(module, attr, None)
    if app is None:
        raise AppProblem(f"module {module_name!r} has no attribute {attr!r}", f"check the NAME part of {target}")
    if not callable(app):
        raise AppProblem(f"{target} is a {type(app).__name__}, not an ASGI or WSGI app", "point serve.app at the app object")
    return app


def is_asgi(app: Any) -> bool:
    """ASGI apps are async callables (scope, receive, send); WSGI apps are plain (environ, start_response)."""
    if hasattr(app, "wsgi_app"):  # Flask and kin
        return False
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)
    return inspect.iscoroutinefunction(call)


# -- ASGI -------------------------------------------------------------------------------------
def asgi_wrapper(app: Any, state: State) -> Callable[..., Any]:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(app, state, scope, receive, send)
            return
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            own = _own_answer(scope.get("path", ""), state)
            if own is not None:
                status, body, ctype = own
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started, seen = time.perf_counter(), {"status": 500}

        async def counting_send(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                seen["status"] = int(message.get("status", 500))
            await send(message)

        try:
            await app(scope, receive, counting_send)
        finally:
            state.observe(seen["status"], time.perf_counter() - started)

    return wrapped


async def _lifespan(app: Any, state: State, scope: dict[str, Any], receive: Any, send: Any) -> None:
    async def tracking_send(message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            state.ready = True
            log("ready", app="asgi")
        elif kind == "lifespan.shutdown.complete":
            state.draining = True
        await send(message)

    async def tracking_receive() -> dict[str, Any]:
        message: dict[str, Any] = await receive()
        if message.get("type") == "lifespan.shutdown":
            state.draining = True
        return message

    try:
        await app(scope, tracking_receive, tracking_send)
    except Exception:
        # An app without lifespan support: uvicorn carries on ("lifespan unsupported"); it is ready.
        state.ready = True
        raise


def _own_answer(path: str, state: State) -> tuple[int, bytes, bytes] | None:
    if path == HEALTH_PATH:
        return 200, b'{"status":"alive"}', b"application/json"
    if path == READY_PATH:
        if state.ready and not state.draining:
            return 200, b'{"status":"ready"}', b"application/json"
        return 503, b'{"status":"loading"}' if not state.draining else b'{"status":"draining"}', b"application/json"
    if path == METRICS_PATH:
        return 200, state.metrics(), b"text/plain; version=0.0.4"
    return None


# -- WSGI -------------------------------------------------------------------------------------
def wsgi_wrapper(app: Any, state: State) -> Callable[..., Any]:
    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            own = _own_answer(environ.get("PATH_INFO", ""), state)
            if own is not None:
                status, body, ctype = own
                start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                               [("Content-Type", ctype.decode()), ("Content-Length", str(len(body)))])
                return [body]
        started, seen = time.perf_counter(), {"status": 500}

        def counting_start(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            return app(environ, counting_start)
        finally:
            state.observe(seen["status"], time.perf_counter() - started)

    return wrapped


# -- servers ------------------------------------------------------------------------------------
def run_asgi(app: Any, host: str, port: int, workers: int, grace_s: float) -> int:
    try:  # the project's own uvicorn (by name: the runtime itself never imports web frameworks)
        uvicorn = importlib.import_module("uvicorn")
    except ImportError:
        raise AppProblem("the app is ASGI, and uvicorn is not installed",
                         "add uvicorn to the project's requirements") from None
    options = {"host": host, "port": port, "lifespan": "auto", "log_level": "info",
               "timeout_graceful_shutdown": int(grace_s), "proxy_headers": False, "server_header": False}
    if workers > 1:  # uvicorn's worker processes import the app again: through asgi_factory
        module = __spec__.name if __spec__ is not None else __name__
        uvicorn.run(f"{module}:asgi_factory", factory=True, workers=workers, **options)
    else:
        uvicorn.run(asgi_wrapper(app, State()), **options)
    return 0


def asgi_factory() -> Callable[..., Any]:
    """The wrapped app, for each uvicorn worker process (--workers N; DOCKYARD_APP names the app)."""
    return asgi_wrapper(load_app(os.environ["DOCKYARD_APP"], os.environ.get("DOCKYARD_APP_DIR", ".")), State())


def run_wsgi(app: Any, host: str, port: int, workers: int, grace_s: float) -> int:
    try:  # the project's own gunicorn
        BaseApplication: Any = importlib.import_module("gunicorn.app.base").BaseApplication
    except ImportError:
        raise AppProblem("the app is WSGI, and gunicorn is not installed",
                         "add gunicorn to the project's requirements") from None
    state = State()
    state.ready = True  # gunicorn imports the app before it binds: listening means loaded
    wrapped = wsgi_wrapper(app, state)

    class Server(BaseApplication):  # type: ignore[misc,valid-type,unused-ignore]
        def load_config(self) -> None:
            for key, value in {"bind": f"{host}:{port}", "workers": workers, "graceful_timeout": int(grace_s),
                               "worker_tmp_dir": "/tmp" if os.path.isdir("/tmp") else None,
                               "accesslog": "-", "errorlog": "-"}.items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return wrapped

    Server().run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dockyard_runtime.webapp",
                                     description="Serve the project's own ASGI/WSGI app with dockyard's probes.")
    parser.add_argument("--app", default=os.environ.get("DOCKYARD_APP"), help="MODULE:NAME [env DOCKYARD_APP]")
    parser.add_argument("--app-dir", default=os.environ.get("DOCKYARD_APP_DIR", "."))
    parser.add_argument("--host", default=os.environ.get("DOCKYARD_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DOCKYARD_PORT", CONTAINER_PORT)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("DOCKYARD_WORKERS", "1")))
    parser.add_argument("--grace-period-s", type=float, default=float(os.environ.get("DOCKYARD_GRACE_PERIOD_S", "10")))
    args = parser.parse_args(argv)
    try:
        if not args.app:
            raise AppProblem("no app to serve", "pass --app MODULE:NAME (serve.app in dockyard.yaml)")
        app = load_app(args.app, args.app_dir)
        os.environ["DOCKYARD_APP"], os.environ["DOCKYARD_APP_DIR"] = args.app, args.app_dir  # for workers
        kind = "asgi" if is_asgi(app) else "wsgi"
        log("app_loaded", app=args.app, kind=kind, host=args.host, port=args.port)
        runner = run_asgi if kind == "asgi" else run_wsgi
        return runner(app, args.host, args.port, args.workers, args.grace_period_s)
    except AppProblem as exc:
        log("setup_failed", "error", error=exc.problem, fix=exc.fix)
        return EXIT_BAD_APP


if __name__ == "__main__":
    sys.exit(main())
