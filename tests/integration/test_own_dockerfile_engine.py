"""A project that ships its own (serving-only) Dockerfile, as abhishek-kumar/ml-edge does: dockyard
builds it as it is, and when that cannot work the CLI says why in the Dockerfile's terms (the FROM it
cannot pull, the stage it lacks) and how to let dockyard generate one. The FROM names a registry that
cannot resolve anywhere (.invalid, RFC 2606), so no test host ever pulls anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dockyard.engine import Engine

IMAGE = "registry.invalid/dockyard-test/python:3.10.11"


def dockyard(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_own_dockerfile_pull_and_missing_stage_are_explained(engine: Engine, tmp_path: Path) -> None:
    proj = tmp_path / "own-dockerfile"
    proj.mkdir()
    (proj / "requirements.txt").write_text("scikit-learn\n")
    (proj / "train_model.py").write_text("import sklearn\nprint('trained')\n")
    (proj / "Dockerfile").write_text(f"FROM {IMAGE} AS prediction-service\nCOPY . /code\nCMD [\"python\"]\n")
    assert dockyard("init", str(proj), "--name", "dockyard-test-own-df").returncode == 0

    built = dockyard("build", str(proj), "--tag", "dockyard-test-own-df:t")
    trained = dockyard("train", str(proj))

    assert built.returncode == 3, built.stderr
    assert f"cannot pull {IMAGE} (no registry access?)" in built.stderr
    assert "move that Dockerfile aside" in built.stderr and "--no-cache" not in built.stderr
    assert trained.returncode == 3, trained.stderr
    assert "the Dockerfile has no stage named 'train'" in trained.stderr
    assert not engine.image_exists("dockyard-test-own-df:t")
