"""The reference grammar against the real engine and a real registry: NAME:latest names the newest
stored version's serving image even when an older NAME:latest tag exists, and `push NAME:N` builds
that version's serving image first when it is missing (and says so)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.engine import TEST_LABEL, Engine
from dockyard.store import ImageInfo, RunRecord, Store

sys.path.insert(0, str(Path(__file__).parent))
from test_registry_engine import Registry, start_registry  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "tiny"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from start_registry(tmp_path_factory.mktemp("registry-refs"))


@pytest.fixture
def tiny_versions(engine: Engine, tmp_path: Path) -> Iterator[tuple[Path, str, Path]]:
    """A copy of the tiny project under a unique name, with versions 1 and 2 in a private store."""
    name = f"dockyard-test-refs-{uuid.uuid4().hex[:8]}"
    project = tmp_path / "tiny"
    shutil.copytree(FIXTURE, project)
    cfg = project / "dockyard.yaml"
    cfg.write_text(cfg.read_text().replace("name: tiny", f"name: {name}"))
    home = tmp_path / "home"
    store = Store(home / "store")
    t0 = datetime(2026, 11, 30, tzinfo=UTC)
    for run in (1, 2):
        out = tmp_path / f"out{run}"
        out.mkdir()
        (out / "weights.json").write_text(json.dumps({"w": [run, 0, 0], "b": 0}))
        store.record_success(RunRecord(name=name, run_id=f"run-{run}", command="python train.py",
                                       image=ImageInfo(id="sha256:" + "a" * 64, ref=f"{name}:train"),
                                       started=t0, ended=t0 + timedelta(seconds=1), exit_status=0), out)
    yield project, name, home
    refs = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    for ref in refs:
        if ref.rpartition(":")[0].endswith(name):
            engine.remove_image(ref, force=True)


def dockyard(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], check=False, capture_output=True, text=True,
                          timeout=900, cwd=cwd, env={**os.environ, "DOCKYARD_HOME": str(home)})


def test_latest_names_the_newest_version_not_a_stale_latest_tag(engine: Engine, tiny_versions: tuple[Path, str, Path],
                                                                tmp_path: Path) -> None:
    project, name, home = tiny_versions
    # A stale NAME:latest from some older build: exactly what hid the README demo's bug.
    ctx = tmp_path / "stale"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM dockyard/python:3.11-slim\n")
    engine.build(ctx, ctx / "Dockerfile", f"{name}:latest", labels={TEST_LABEL: "1"})

    built = dockyard(home, "build", str(project), "--model", f"{name}:latest", "--json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["tag"] == f"{name}:2"
    labels = engine.inspect(f"{name}:2")["Config"]["Labels"]  # type: ignore[index]
    assert labels["io.dockyard.model-version"] == "2"

    scanned = dockyard(home, "scan", f"{name}:latest", "--offline", "--format", "json")
    assert scanned.returncode in (0, 1), scanned.stderr
    assert json.loads(scanned.stdout)["target"] == f"{name}:2"


def test_push_builds_a_missing_version_image_and_says_so(engine: Engine, registry: Registry,
                                                         tiny_versions: tuple[Path, str, Path]) -> None:
    project, name, home = tiny_versions
    assert not engine.image_exists(f"{name}:1")
    pushed = dockyard(home, "push", f"{name}:1", "--registry", registry.host, "--json", cwd=project)
    assert pushed.returncode == 0, pushed.stderr
    assert f"built {name}:1" in pushed.stderr
    assert json.loads(pushed.stdout)["digest"] == registry.digest(name, "1")
    assert engine.inspect(f"{name}:1")["Config"]["Labels"]["io.dockyard.model-version"] == "1"  # type: ignore[index]

    elsewhere = dockyard(home, "push", f"{name}:2", "--registry", registry.host, cwd=project.parent)
    assert elsewhere.returncode == 1
    assert "project" in elsewhere.stderr and "--path" in elsewhere.stderr
