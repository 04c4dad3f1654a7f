"""dockyard: containerise machine-learning projects end to end.

The library mirrors the CLI: every verb is a function (``init``, ``plan``, ``build``, ``run``...).
Names load lazily so ``import dockyard`` stays fast for the CLI and inside training containers.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    BuildError,
    ConfigError,
    DeployError,
    DockyardError,
    EngineError,
    RegistryError,
    RunError,
    ScanError,
    StoreError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "DockyardError",
    "ConfigError",
    "EngineError",
    "BuildError",
    "RunError",
    "RegistryError",
    "StoreError",
    "ScanError",
    "DeployError",
    "ProjectConfig",
    "load_config",
    "Plan",
    "make_plan",
    "render_dockerfile",
    "init",
    "plan",
    "build",
    "run",
    "log_metric",
]

_LAZY = {
    "ProjectConfig": ("config", "ProjectConfig"),
    "load_config": ("config", "load_config"),
    "Plan": ("planning", "Plan"),
    "make_plan": ("planning", "make_plan"),
    "render_dockerfile": ("render", "render_dockerfile"),
    "init": ("project", "init"),
    "plan": ("project", "plan"),
    "build": ("project", "build"),
    "run": ("project", "run"),
    "log_metric": ("store.metrics", "log_metric"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'dockyard' has no attribute {name!r}")
