"""The `dockyard` command as a user meets it: a subprocess, exit codes, and error + fix lines.

None of these needs a Docker Engine: the build case points DOCKER_HOST at a socket that does
not exist, so only the docker *client* runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dockyard
from dockyard.config import load_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "projects"
SKLEARN_PROJECT = FIXTURES / "requirements_project"


def dockyard_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    environ.update({"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "dockyard", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], code: int = 1) -> None:
    """The shape every failure shares: the exit code, an error line and a fix line, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert any(line.startswith("error:") for line in lines), proc.stderr
    assert any(line.startswith("fix:") for line in lines), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "internal error" not in proc.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scikit-learn project with a predictor, copied so tests may write into it."""
    dest = tmp_path / "iris"
    shutil.copytree(SKLEARN_PROJECT, dest)
    return dest


def test_plan_without_config_says_to_run_init(tmp_path: Path) -> None:
    proc = dockyard_cli("plan", "--offline", str(tmp_path))

    assert_user_error(proc)
    assert "no dockyard.yaml" in proc.stderr
    assert "dockyard init" in proc.stderr


def test_invalid_config_names_the_key_and_the_line(tmp_path: Path) -> None:
    (tmp_path / "dockyard.yaml").write_text("name: demo\nresources:\n  cpus: 0\n")

    proc = dockyard_cli("plan", "--offline", str(tmp_path))

    assert_user_error(proc)
    assert f"{tmp_path / 'dockyard.yaml'}:3: resources.cpus:" in proc.stderr


def test_unquoted_python_version_tells_the_user_to_quote_it(tmp_path: Path) -> None:
    (tmp_path / "dockyard.yaml").write_text("name: demo\npython: 3.10\n")

    proc = dockyard_cli("plan", "--offline", str(tmp_path))

    assert_user_error(proc)
    assert "dockyard.yaml:2: python:" in proc.stderr
    assert 'python: "3.10"' in proc.stderr


def test_init_writes_a_config_that_validates_and_plans(project: Path) -> None:
    proc = dockyard_cli("init", str(project))

    assert proc.returncode == 0, proc.stderr
    assert (project / "dockyard.yaml").is_file()
    config = load_config(project)
    assert config.name == "iris"
    assert config.framework == "scikit-learn"
    assert config.serve.predictor == "predict.py:Predictor"

    planned = dockyard_cli("plan", "--offline", str(project))
    assert planned.returncode == 0, planned.stderr
    assert "FROM python:3.11-slim AS runtime-base" in planned.stdout


def test_init_twice_without_force_refuses_and_keeps_the_file(project: Path) -> None:
    assert dockyard_cli("init", str(project)).returncode == 0
    (project / "dockyard.yaml").write_text("name: hand-edited\n")

    proc = dockyard_cli("init", str(project))

    assert_user_error(proc)
    assert "already exists" in proc.stderr and "--force" in proc.stderr
    assert (project / "dockyard.yaml").read_text() == "name: hand-edited\n"


def test_init_with_force_overwrites(project: Path) -> None:
    (project / "dockyard.yaml").write_text("name: hand-edited\n")

    proc = dockyard_cli("init", "--force", str(project))

    assert proc.returncode == 0, proc.stderr
    assert load_config(project).name == "iris"


def test_missing_requirements_file_is_named(project: Path) -> None:
    (project / "dockyard.yaml").write_text(
        "name: iris\ndependencies:\n  file: requirements-prod.txt\n  kind: requirements\n"
    )

    proc = dockyard_cli("plan", "--offline", str(project))

    assert_user_error(proc)
    assert "requirements-prod.txt" in proc.stderr
    assert "does not exist" in proc.stderr


def test_missing_lock_file_is_named(project: Path) -> None:
    (project / "dockyard.yaml").write_text("name: iris\ndependencies:\n  lock: requirements.lock\n")

    proc = dockyard_cli("plan", "--offline", str(project))

    assert_user_error(proc)
    assert "requirements.lock" in proc.stderr and "dockyard lock" in proc.stderr


def test_impossible_framework_python_combination_names_the_nearest(tmp_path: Path) -> None:
    (tmp_path / "dockyard.yaml").write_text('name: tf\npython: "3.13"\nframework: tensorflow\nframework_version: "2.15.1"\n')

    proc = dockyard_cli("plan", "--offline", str(tmp_path))

    assert_user_error(proc)
    assert "tensorflow 2.15" in proc.stderr and 'python: "3.11"' in proc.stderr


def _docker_client() -> str:
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no docker client binary on this host (the daemon is not needed, the client is)")


def test_build_with_an_unreachable_engine_exits_2(project: Path) -> None:
    assert dockyard_cli("init", str(project)).returncode == 0

    proc = dockyard_cli(
        "build", str(project), env={"DOCKER_HOST": "unix:///nonexistent.sock", "DOCKYARD_DOCKER": _docker_client()}
    )

    assert_user_error(proc, code=2)
    assert "cannot reach the Docker Engine" in proc.stderr
    assert "DOCKER_HOST" in proc.stderr


def test_version_flag_prints_the_version() -> None:
    proc = dockyard_cli("--version")

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == dockyard.__version__


def test_unknown_option_is_a_usage_error_not_an_internal_error(tmp_path: Path) -> None:
    proc = dockyard_cli("plan", "--no-such-flag", str(tmp_path))

    assert proc.returncode == 1, proc.stderr
    assert "--no-such-flag" in proc.stderr
    assert "internal error" not in proc.stderr
    assert "Traceback" not in proc.stderr
