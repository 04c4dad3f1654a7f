"""Shared fixtures. Tests that use the `engine` fixture (directly or through another
fixture) get the `docker` marker automatically; without an engine they skip locally
and FAIL under CI=true, so a broken CI engine can never pass silently."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
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


#: project folders tests made with copy_project/copy_example outside the session's temp folder
_COPIES: list[Path] = []


def unique_name(project: Path) -> str:
    """Give a copied project its own name (dockyard.yaml's `name:` plus a random suffix) and
    return it. Names are per project folder (dockyard.names): two copies of one example built
    under the same name would clash, as they would for users."""
    config = project / "dockyard.yaml"
    text = config.read_text()
    match = re.search(r"(?m)^name:[ \t]*(\S+)", text)
    assert match, f"{config} has no name: line"
    name = f"{match.group(1).strip(chr(34) + chr(39))[:40]}-{uuid.uuid4().hex[:8]}"
    config.write_text(text[:match.start()] + f"name: {name}" + text[match.end():])
    return name


def project_name(project: Path) -> str:
    """The name a test project builds and trains under (see unique_name)."""
    match = re.search(r"(?m)^name:[ \t]*(\S+)", (project / "dockyard.yaml").read_text())
    assert match
    return match.group(1)


def copy_project(source: Path, target: Path, *,
                 ignore: Sequence[str] = (".dockyard", "outputs", "__pycache__", "mlruns")) -> Path:
    """A private copy of a project under its own unique name (with no dockyard.yaml, in a folder
    of its own unique name, which `init` takes), so builds never write into the repo and never clash with another test's copy. Images built
    from it are removed at the end of the session (found by their io.dockyard.project label).
    What earlier runs left in the source (.dockyard, outputs, an MLflow mlruns folder) is not copied."""
    if not (source / "dockyard.yaml").is_file():  # `init` names it after its folder: make that unique
        target = target.with_name(f"{target.name}-{uuid.uuid4().hex[:8]}")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*ignore))
    if (target / "dockyard.yaml").is_file():
        unique_name(target)
    _COPIES.append(target.resolve())
    return target


def copy_example(name: str, dest: Path) -> Path:
    """A private copy of an example (see copy_project)."""
    return copy_project(EXAMPLES / name, dest / name)


@pytest.fixture(autouse=True, scope="session")
def _remove_images_of_test_projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """At the end of the session (module fixtures may share a copy's images across tests), remove
    every image built from a project folder this session made: those under its temp folder and
    the copies. pytest keeps the last three sessions' temp folders, and names are per project
    folder (dockyard.names), so an image left behind would still claim its name against the next
    session's project of the same folder name."""
    yield
    roots = [str(tmp_path_factory.getbasetemp().resolve())] + [str(c) for c in _COPIES]
    _COPIES[:] = []
    if shutil.which("docker") is None:
        return
    from dockyard.engine import Engine
    from dockyard.runtime.contract import LABEL_PROJECT

    try:
        eng = Engine.connect()
        for row in eng.images([f"label={LABEL_PROJECT}"]):
            labels = eng.docker("image", "inspect", "--format", "{{json .Config.Labels}}", row["ID"],
                                check=False).stdout.strip()
            folder = (json.loads(labels or "null") or {}).get(LABEL_PROJECT, "")
            if any(folder == root or folder.startswith(root + os.sep) for root in roots):
                eng.remove_image(row["ID"], force=True)
    except Exception:  # noqa: BLE001 - cleanup must not mask the test result
        pass


@pytest.fixture
def digits_project(tmp_path: Path) -> Path:
    return copy_example("digits", tmp_path)


def leave_swarm_if_ours(engine, created: bool) -> None:  # type: ignore[no-untyped-def]
    """Leave a swarm this test created, unless services run on it: on a shared engine another
    session may have started deploying onto the swarm meanwhile, and leaving would kill them."""
    if not created:
        return
    if engine.docker("service", "ls", "-q", check=False).stdout.strip():
        return
    engine.docker("swarm", "leave", "--force", check=False, timeout=120)
