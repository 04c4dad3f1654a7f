"""`dockyard deploy swarm` refusals against the real engine: no swarm, `--init`, a missing image,
a model version the store does not have. Each is an error line plus a fix line, no traceback.

Runs after test_swarm.py, which leaves the swarm again if it created it, so on a fresh engine
(CI) the first test sees an engine outside any swarm."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import leave_swarm_if_ours
from dockyard.deploy import swarm
from dockyard.engine import Engine

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"


def dockyard_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    environ.update({"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True,
                          env=environ, timeout=300, check=False)  # fmt: skip


def assert_error(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "error:" in proc.stderr and "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture
def no_swarm(engine: Engine) -> Engine:
    state, _ = swarm.swarm_state(engine)
    if state == "active":
        pytest.skip("this engine is in a swarm this test did not create; leaving it would break its services")
    return engine


@pytest.fixture
def swarm_for_this_test(engine: Engine) -> Iterator[Engine]:
    created = swarm.init_swarm(engine)
    yield engine
    leave_swarm_if_ours(engine, created)


def test_deploy_without_a_swarm_says_how_to_create_one(no_swarm: Engine) -> None:
    proc = dockyard_cli("deploy", "swarm", "--image", "dockyard/python:3.11-slim", "--name", "dockyard-test-x",
                        "--replicas", "1")

    assert_error(proc, 2)
    assert "not part of a swarm" in proc.stderr
    assert "docker swarm init --advertise-addr 127.0.0.1" in proc.stderr
    assert "--init" in proc.stderr


def test_init_flag_creates_the_swarm_then_a_missing_image_is_named(no_swarm: Engine) -> None:
    try:
        proc = dockyard_cli("deploy", "swarm", "--init", "--image", "dockyard-test-missing:7",
                            "--name", "dockyard-test-x", "--replicas", "1")

        assert_error(proc, 1)
        assert "initialised a single-node swarm" in proc.stderr
        assert "image dockyard-test-missing:7 is not on this node" in proc.stderr
        assert "dockyard build" in proc.stderr
        assert swarm.swarm_state(no_swarm) == ("active", True)
    finally:
        leave_swarm_if_ours(no_swarm, True)  # no_swarm: it was not in one before


def test_a_model_version_the_store_does_not_have_is_refused(swarm_for_this_test: Engine, tmp_path: Path) -> None:
    project = tmp_path / "digits"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".dockyard", "outputs", "__pycache__"))

    proc = dockyard_cli("deploy", "swarm", str(project), "--model", "digits:99", "--replicas", "1",
                        env={"DOCKYARD_HOME": str(tmp_path / "home")})

    assert_error(proc, 1)
    assert "digits" in proc.stderr and "store" in proc.stderr
