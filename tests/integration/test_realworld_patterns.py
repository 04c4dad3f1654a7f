"""Patterns the real-world corpus (bench/realworld.py) tripped over, each as a small project of
our own, driven through the `dockyard` command on the real engine as a user would."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from dockyard.engine import Engine

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "projects"


def dockyard_cli(*args: str, cwd: Path, timeout: float = 900,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    environ.update({"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], cwd=cwd, capture_output=True, text=True,
                          env=environ, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_build_error_with_brackets_prints_error_and_fix_not_a_markup_traceback(
        engine: Engine, tmp_path: Path, unique_tag: str) -> None:
    """docker 20.10 says `executor failed running [/bin/sh -c exit 3]`; rich used to read the
    bracket as a closing markup tag and crash with MarkupError instead of printing error + fix."""
    proj = tmp_path / "failing"
    shutil.copytree(FIXTURES / "failing_run_step", proj)
    assert dockyard_cli("init", str(proj), cwd=tmp_path).returncode == 0

    proc = dockyard_cli("build", str(proj), "-t", unique_tag, cwd=tmp_path)

    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors and "[2/2] RUN exit 3" in errors[0], proc.stderr  # the step name survives, brackets and all
    assert "[/bin/sh -c exit 3]" in proc.stderr
    assert any(ln.startswith("fix:") for ln in proc.stderr.splitlines()), proc.stderr
    assert "MarkupError" not in proc.stderr and "Traceback" not in proc.stderr and "internal error" not in proc.stderr


def test_relative_model_path_is_the_current_directory_and_a_bad_input_exits_1(engine: Engine, tmp_path: Path) -> None:
    """`serve PROJECT --model some/model.joblib` run from elsewhere reads the path from the current
    directory, as every command-line path is read; then a 422 from the server is a user error (1)."""
    name = f"dockyard-test-relmodel-{uuid.uuid4().hex[:8]}"
    proj = tmp_path / "proj"
    shutil.copytree(REPO / "examples" / "digits", proj, ignore=shutil.ignore_patterns(".dockyard", "outputs", "__pycache__"))
    cfg = proj / "dockyard.yaml"
    cfg.write_text(cfg.read_text().replace("name: digits", f"name: {name}"))
    subprocess.run([sys.executable, "train.py"], cwd=proj, check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(str(proj / "outputs" / "model.joblib"), elsewhere / "model.joblib")
    port = free_port()
    container = f"dockyard-serve-{name}-{port}"
    try:
        served = dockyard_cli("serve", "proj", "--model", "elsewhere/model.joblib", "--port", str(port), "--detach",
                              "-q", cwd=tmp_path)
        assert served.returncode == 0, served.stderr
        url = f"http://127.0.0.1:{port}"

        sample = json.loads((proj / "sample.json").read_text())
        good = dockyard_cli("predict", url, "--input", json.dumps(sample), cwd=tmp_path, timeout=60)
        assert good.returncode == 0, good.stderr
        assert json.loads(good.stdout) == {"output": 0}

        bad = dockyard_cli("predict", url, "-i", "no_such_input=1", cwd=tmp_path, timeout=60)
        assert bad.returncode == 1, (bad.returncode, bad.stderr)
        assert "error: the server answered 422" in bad.stderr
        assert any(ln.startswith("fix:") for ln in bad.stderr.splitlines())
    finally:
        engine.remove_container(container)
        engine.remove_image(f"{name}:latest", force=True)


def test_a_missing_relative_model_names_the_current_directory(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    shutil.copytree(REPO / "examples" / "digits", proj, ignore=shutil.ignore_patterns(".dockyard", "outputs", "__pycache__"))

    proc = dockyard_cli("serve", "proj", "--model", "nowhere/model.joblib", "--local", cwd=tmp_path, timeout=60)

    assert proc.returncode == 1, proc.stderr
    assert f"{tmp_path.resolve() / 'nowhere' / 'model.joblib'} does not exist" in proc.stderr  # where it looked
    assert "relative to the current directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_mlflow_logged_model_folder_is_served_with_no_code(engine: Engine, tmp_path: Path) -> None:
    """The MLflow example's shape end to end: MLproject parameters reach the script, the model is
    whatever mlflow.sklearn.log_model wrote under mlruns/ (an MLmodel folder; MLflow 3 writes
    model.skops, not a pickle), and `serve NAME:1` serves that folder with no code."""
    name = f"dockyard-test-mlflow-{uuid.uuid4().hex[:8]}"
    proj = tmp_path / "proj"
    shutil.copytree(FIXTURES / "mlflow_logged_model", proj)
    home = {"DOCKYARD_HOME": str(tmp_path / "home")}
    assert dockyard_cli("init", str(proj), "--name", name, cwd=tmp_path).returncode == 0
    port = free_port()
    try:
        trained = dockyard_cli("train", str(proj), "--param", "alpha=0.3", "--json", "-q", cwd=tmp_path, env=home)
        assert trained.returncode == 0, trained.stderr
        assert "Elasticnet model (alpha=0.300000, l1_ratio=0.100000)" in trained.stderr  # the script saw it
        version = json.loads(trained.stdout)
        # The run logged to the MLflow store dockyard pointed it at (under /outputs): the logged
        # model's MLmodel folder is part of the version.
        paths = [a["path"] for a in version["artifacts"]]
        assert any(path.endswith("/MLmodel") for path in paths), paths

        served = dockyard_cli("serve", str(proj), "--model", version["ref"], "--port", str(port), "--detach", "-q",
                              cwd=tmp_path, env=home)
        assert served.returncode == 0, served.stderr
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as resp:
            signature = json.load(resp)["x-dockyard-signature"]
        assert signature["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 3]}]

        answer = dockyard_cli("predict", url, "--input", json.dumps({"input": [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]}),
                              cwd=tmp_path, timeout=60)
        assert answer.returncode == 0, answer.stderr
        first, second = json.loads(answer.stdout)["output"]
        assert 3.5 < first < 5.0 and 2.5 < second < 3.5  # y = 1.5*x0 - 2*x1 + 0.5*x2 + 3, shrunk by alpha
    finally:
        engine.remove_container(f"dockyard-serve-{name}-{port}")
        for tag in ("train", "1", "latest"):
            engine.remove_image(f"{name}:{tag}", force=True)


def test_a_build_that_cannot_reach_an_index_names_the_server(engine: Engine, tmp_path: Path, unique_tag: str) -> None:
    """pytorch/examples' `torch` requirement sends the build to download.pytorch.org, which a host
    that reaches only PyPI cannot resolve; the error must name the server and the cause."""
    proj = tmp_path / "unreachable"
    shutil.copytree(FIXTURES / "unreachable_index", proj)
    assert dockyard_cli("init", str(proj), cwd=tmp_path).returncode == 0

    proc = dockyard_cli("build", str(proj), "--target", "train", "-t", unique_tag, cwd=tmp_path, timeout=600)

    assert proc.returncode == 3, proc.stderr
    error = next(ln for ln in proc.stderr.splitlines() if ln.startswith("error:"))
    assert "cannot reach https://wheels.dockyard-test.invalid/simple/six/" in error, error
    assert "fix: the build downloads from wheels.dockyard-test.invalid" in proc.stderr
    assert "Traceback" not in proc.stderr
