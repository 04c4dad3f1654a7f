"""The runtime runs in a user venv that pins old web/validation libraries (pydantic 1, old FastAPI),
copied as the top-level package `dockyard_runtime`, exactly as images ship it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import REPO, Server, make_digits_model, post_json  # noqa: E402

from dockyard.base import find_uv  # noqa: E402

UV = find_uv()  # the uv wheel dockyard depends on: .venv/bin is not on PATH in the README command
PINS = ["pydantic==1.10.13", "fastapi==0.95.0", "starlette==0.26.1", "scikit-learn", "joblib"]


@pytest.mark.slow
@pytest.mark.skipif(UV is None, reason="needs uv to build the pinned venv")
def test_runtime_serves_from_a_venv_with_old_pydantic_and_fastapi(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    subprocess.run([str(UV), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *PINS],
                   check=True, timeout=600)
    runtime = tmp_path / "opt" / "dockyard_runtime"
    shutil.copytree(REPO / "src" / "dockyard" / "runtime", runtime,
                    ignore=shutil.ignore_patterns("__pycache__"))
    row = make_digits_model(tmp_path / "digits.joblib")
    with Server(["--model", str(tmp_path / "digits.joblib")], tmp_path, python=str(venv / "bin" / "python"),
                module="dockyard_runtime", pythonpath=str(runtime.parent)) as server:
        server.wait_ready(60)
        assert post_json(server.port, "/predict", {"input": row}) == (200, {"output": 0})
        version = subprocess.run([str(venv / "bin" / "python"), "-c", "import pydantic; print(pydantic.VERSION)"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        assert version.startswith("1.")
        assert server.terminate() == 0
