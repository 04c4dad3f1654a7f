"""Command-line flags of the runtime; every flag can also come from ``DOCKYARD_<FLAG>``.

Images set defaults with ``ENV DOCKYARD_MODEL=/opt/dockyard/model/model.joblib`` and the like;
an explicit flag wins over the environment, which wins over the built-in default.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .contract import CONTAINER_PORT
from .contract import SERVABLE_SUFFIXES

ENV_PREFIX = "DOCKYARD_"


class ConfigProblem(Exception):
    """A flag or environment value the runtime cannot use (problem + fix)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class ServeConfig:
    predictor: str | None = None
    model: str | None = None
    app_dir: str = "."
    name: str | None = None
    version: str = "1"
    host: str = "127.0.0.1"
    port: int = CONTAINER_PORT
    workers: int = 1
    max_batch_size: int = 32
    max_batch_wait_ms: float = 0.0
    max_body_bytes: int = 16 * 1024 * 1024
    request_timeout_s: float = 30.0
    read_timeout_s: float = 30.0
    keepalive_timeout_s: float = 75.0
    max_queue: int = 256
    grace_period_s: float = 10.0
    liveness_grace_s: float = 30.0
    input_shape: str | None = None
    backlog: int = 2048
    max_connections: int = 0
    http_parser: str = "auto"


# flag -> (type, help). Defaults come from ServeConfig so they are written down once.
_FLAGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "predictor": (str, "MODULE:CLASS of a predictor with setup() and predict(**inputs)"),
    "model": (str, "a saved model file to serve with no code (" + " ".join(SERVABLE_SUFFIXES) + "), "
                   "or an MLflow model directory (MLmodel)"),
    "app-dir": (str, "directory MODULE is imported from (default: current directory)"),
    "name": (str, "model name in the V2 API (default: from the file or class name)"),
    "version": (str, "model version in the V2 API"),
    "host": (str, "address to listen on"),
    "port": (int, "port to listen on"),
    "workers": (int, "worker processes sharing the port (SO_REUSEPORT)"),
    "max-batch-size": (int, "most requests one predict call takes (batching predictors)"),
    "max-batch-wait-ms": (float, "how long a batch may wait to fill; 0 batches what queued "
                                 "while the model was busy"),
    "max-body-bytes": (int, "largest request body; bigger ones get 413"),
    "request-timeout-s": (float, "per-request time limit; slower requests get 504 (0: none)"),
    "read-timeout-s": (float, "time a client may take to send one whole request; slower ones get 408 (0: none)"),
    "keepalive-timeout-s": (float, "idle keep-alive connections close after this long; keep it above a "
                                   "load balancer's idle timeout (0: never)"),
    "max-queue": (int, "requests waiting for the model before new ones get 503"),
    "grace-period-s": (float, "after SIGTERM, how long in-flight requests may take"),
    "liveness-grace-s": (float, "how long the model may stay stuck (a predict call over --request-timeout-s, "
                                "or a dead predict thread; readiness fails at once) before /healthz fails "
                                "too, so the orchestrator restarts the server"),
    "input-shape": (str, "per-row input shape for models that do not record it, e.g. 64 or "
                         "3,224,224 (TorchScript)"),
    "backlog": (int, "listen queue length: connections the kernel holds before they are accepted"),
    "max-connections": (int, "open connections per worker; more get 503 (0: the open-files limit less "
                             "a reserve)"),
    "http-parser": (str, "request-head parser: llhttp (httptools, shipped in images), python (strict "
                         "pure-Python), or auto (llhttp when it loads, else python)"),
}


def _attr(flag: str) -> str:
    return flag.replace("-", "_")


def env_name(flag: str) -> str:
    return ENV_PREFIX + _attr(flag).upper()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dockyard_runtime",
        description="Serve a predictor class or a saved model file over HTTP "
                    "(/predict, KServe V2, /docs, /metrics).",
    )
    for flag, (_, help_text) in _FLAGS.items():
        # default=None so we can tell "not given" from "given": then the env var applies.
        parser.add_argument(f"--{flag}", default=None, help=f"{help_text} [env {env_name(flag)}]")
    return parser


def _convert(flag: str, raw: str, source: str) -> Any:
    kind, _ = _FLAGS[flag]
    try:
        return kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise ConfigProblem(
            f"{source} is {raw!r}, which is not {expected}",
            f"set {source} to {expected}, e.g. {ServeConfig.__dataclass_fields__[_attr(flag)].default}",
        ) from None


def parse_args(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> ServeConfig:
    """Flags win over ``DOCKYARD_*`` env vars, which win over defaults. Raises ConfigProblem."""
    environ = os.environ if env is None else env
    ns = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for flag in _FLAGS:
        raw = getattr(ns, _attr(flag))
        source = f"--{flag}"
        if raw is None and environ.get(env_name(flag), "") != "":
            raw, source = environ[env_name(flag)], env_name(flag)
        if raw is not None:
            values[_attr(flag)] = _convert(flag, raw, source)
    config = ServeConfig(**values)
    check(config)
    return config


def check(config: ServeConfig) -> None:
    if bool(config.predictor) == bool(config.model):
        raise ConfigProblem(
            "give exactly one of --predictor MODULE:CLASS and --model FILE",
            "serve your own class with --predictor app:Predictor, or a saved model with --model model.joblib",
        )
    if config.predictor and ":" not in config.predictor:
        raise ConfigProblem(
            f"--predictor {config.predictor!r} has no ':CLASS' part",
            "write it as MODULE:CLASS, e.g. --predictor predict:Predictor",
        )
    positive = {"port": config.port >= 0, "workers": config.workers >= 1,
                "max-batch-size": config.max_batch_size >= 1, "max-queue": config.max_queue >= 1,
                "max-body-bytes": config.max_body_bytes >= 1,
                "max-batch-wait-ms": config.max_batch_wait_ms >= 0,
                "request-timeout-s": config.request_timeout_s >= 0,
                "read-timeout-s": config.read_timeout_s >= 0,
                "keepalive-timeout-s": config.keepalive_timeout_s >= 0,
                "grace-period-s": config.grace_period_s >= 0,
                "backlog": config.backlog >= 1, "max-connections": config.max_connections >= 0,
                "liveness-grace-s": config.liveness_grace_s >= 0}
    for flag, ok in positive.items():
        if not ok:
            raise ConfigProblem(f"--{flag} is {getattr(config, _attr(flag))}, which is out of range",
                                f"use a value of at least {1 if flag in ('workers', 'backlog') else 0}")
    if config.http_parser not in ("auto", "llhttp", "python"):
        raise ConfigProblem(f"--http-parser is {config.http_parser!r}", "use auto, llhttp or python")
    if config.workers > 1 and config.port == 0:
        raise ConfigProblem("--workers > 1 needs a fixed --port (port 0 picks one per worker)",
                            f"pass --port {CONTAINER_PORT}, or --workers 1")
