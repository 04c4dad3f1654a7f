"""Shared fixtures. Tests that use the `engine` fixture (directly or through another
fixture) get the `docker` marker automatically; without an engine they skip locally
and FAIL under CI=true, so a broken CI engine can never pass silently."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
BASE_IMAGE = "dockyard/python:3.11-slim"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    from dockyard.engine import Engine
    from dockyard.errors import DockyardError

    try:
        eng = Engine.connect()
    except DockyardError as exc:
        if IN_CI:
            pytest.fail(f"CI needs a Docker Engine: {exc.problem}")
        pytest.skip(f"no Docker Engine: {exc.problem}")
    if not eng.image_exists(BASE_IMAGE):
        if IN_CI:
            pytest.fail(f"CI needs {BASE_IMAGE}: .ci/run runs `dockyard base bootstrap` first")
        pytest.skip(f"{BASE_IMAGE} missing: run `dockyard base bootstrap --python 3.11`")
    return eng


@pytest.fixture
def unique_tag() -> Iterator[str]:
    """A throwaway image tag; the image is removed after the test."""
    tag = f"dockyard-test-{uuid.uuid4().hex[:10]}:t"
    yield tag
    from dockyard.engine import Engine

    try:
        Engine.connect().remove_image(tag, force=True)
    except Exception:  # noqa: BLE001 - cleanup must not mask the test result
        pass


def copy_example(name: str, dest: Path) -> Path:
    """A private copy of an example, so builds never write into the repo."""
    target = dest / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns(".dockyard", "outputs", "__pycache__"))
    return target


@pytest.fixture
def digits_project(tmp_path: Path) -> Path:
    return copy_example("digits", tmp_path)
