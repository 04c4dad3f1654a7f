"""The public surface of `import dockyard` is pinned: changing it is a deliberate, visible edit."""

from __future__ import annotations

import inspect

import dockyard
from dockyard import errors

PUBLIC = [
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


def test_all_is_pinned() -> None:
    assert sorted(dockyard.__all__) == sorted(PUBLIC)
    assert len(dockyard.__all__) == len(set(dockyard.__all__)), "duplicate names in __all__"


def test_every_public_name_resolves() -> None:
    missing = [name for name in dockyard.__all__ if not hasattr(dockyard, name)]

    assert missing == []


def test_public_errors_are_the_errors_module_classes() -> None:
    for name in PUBLIC:
        if name.endswith("Error"):
            cls = getattr(dockyard, name)
            assert cls is getattr(errors, name)
            assert issubclass(cls, errors.DockyardError)


def test_public_verbs_are_typed_functions() -> None:
    for name in ("load_config", "make_plan", "render_dockerfile", "init", "plan", "build", "run", "log_metric"):
        func = getattr(dockyard, name)
        assert inspect.isfunction(func), name
        assert inspect.signature(func).return_annotation is not inspect.Signature.empty, f"{name} has no return type"


def test_version_is_a_plain_string() -> None:
    assert isinstance(dockyard.__version__, str)
    assert dockyard.__version__.count(".") >= 2
