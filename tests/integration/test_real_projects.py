"""Projects shaped like the real ones that failed unchanged (issue 11), on the real engine.

Each fixture in tests/fixtures/projects/ reproduces one pattern, written for these tests:
``lightgbm_subfolder`` (train script in model/, a README run line, a notebook, serve.model
inside the code folder, LightGBM's model.txt), ``mlflow_params`` (an MLflow project whose
conda.yaml says scikit-learn>0.19.1, parameters in the command, GitPython imported),
``imports_only`` (no dependency file), ``xgboost_metadata`` (importlib.metadata asked for
"xgboost"). Every image and container a test makes is removed by id.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dockyard import serving
from dockyard.engine import Engine
from dockyard.errors import UsageError
from dockyard.store import Store
from dockyard.train import train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "projects"
TEST_LABELS = {"io.dockyard.test": "1"}


def copy_fixture(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(FIXTURES / name, target)
    return target


def dockyard(*args: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_in(image: str, code: str) -> str:
    proc = subprocess.run(["docker", "run", "--rm", "--label", "io.dockyard.test=1", "--entrypoint", "python",
                           image, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


class Cleanup:
    """Images and containers a test made, removed by id whatever happens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.images: list[str] = []
        self.containers: list[str] = []

    def close(self) -> None:
        for cid in self.containers:
            self.engine.remove_container(cid)
        for image in self.images:
            self.engine.remove_image(image, force=True)


@pytest.fixture
def cleanup(engine: Engine) -> Iterator[Cleanup]:
    made = Cleanup(engine)
    yield made
    made.close()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    return Store(tmp_path / "store")


def test_lightgbm_project_with_its_script_in_a_subfolder_trains_and_serves_model_txt(
    engine: Engine, tmp_path: Path, store: Store, cleanup: Cleanup
) -> None:
    proj = copy_fixture("lightgbm_subfolder", tmp_path)
    # The project as its owner has it after a first local training run: model/model.txt beside the script.
    subprocess.run([sys.executable, "model/train.py"], cwd=proj, check=True, capture_output=True, timeout=120)

    init = dockyard("init", str(proj))
    assert init.returncode == 0, init.stderr
    config = yaml.safe_load((proj / "dockyard.yaml").read_text())
    assert config["train"]["command"] == "python model/train.py"  # bug 10: found through the README / model/
    assert config["serve"]["model"] == "model/model.txt"  # bug 3: LightGBM text is a model format
    assert "framework_version" not in config  # bug 1: lightgbm>=4.0 is a range, not a pin

    # bug 7: serve.model inside model/ no longer drops model/train.py from the train image.
    trained = train(proj, engine, store=store, labels=TEST_LABELS)
    cleanup.images.append(trained.image_id)
    logs = (store.blobs_dir / trained.version.logs.sha256).read_text()  # type: ignore[union-attr]
    assert "trained lightgbm" in logs
    assert {a.path for a in trained.version.artifacts} >= {"model.txt"}

    # bug 9: a relative --model is the user's current directory, not the project's.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(proj / "model" / "model.txt", elsewhere / "model.txt")
    model = serving.model_argument("model.txt", cwd=elsewhere)
    port = free_port()
    # bugs 3 and 4: the bytecode stage imports lightgbm (needs libgomp1); the runtime loads model.txt.
    res = serving.serve(proj, engine, model=model, port=port, tag=f"dockyard-test-lgb-{port}:t",
                        name=f"dockyard-test-lgb-{port}", labels=TEST_LABELS)
    cleanup.containers.append(res.container)
    cleanup.images.append(res.image)

    out = serving.predict(res.url, {"input": [[0.5, -1.0, 2.0, 0.0]]})
    assert isinstance(out["output"][0], float) and out["output"][0] > 1.0  # 0.5 + 2 + 1 = 3.5, roughly

    # bug 13: a refused request is a user error (exit 1), not a failed run (exit 3).
    bad = dockyard("predict", res.url, "--input", json.dumps({"wrong": [[1]]}))
    assert bad.returncode == 1, bad.stderr
    assert "422" in bad.stderr and "Traceback" not in bad.stderr

    # The serving image: model/ code kept, its model file only in the weights layer, no notebook.
    seen = json.loads(run_in(res.image, (
        "import json, os; print(json.dumps([os.path.exists('/app/model/train.py'), "
        "os.path.exists('/app/model/model.txt'), os.path.exists('/app/notebooks/explore.ipynb'), "
        "sorted(os.listdir('/opt/dockyard/model'))]))")))
    assert seen == [True, False, False, ["model.txt"]]


def test_mlflow_shaped_project_trains_with_params_then_serves_with_no_code(
    engine: Engine, tmp_path: Path, store: Store, cleanup: Cleanup
) -> None:
    proj = copy_fixture("mlflow_params", tmp_path)
    init = dockyard("init", str(proj))
    assert init.returncode == 0, init.stderr
    assert yaml.safe_load((proj / "dockyard.yaml").read_text())["train"]["command"] == "python train.py {alpha} {l1_ratio}"

    # bug 1: conda.yaml's scikit-learn>0.19.1 is a range; plan names the release that gets installed.
    plan = dockyard("plan", str(proj))
    assert plan.returncode == 0, plan.stderr
    assert "framework: scikit-learn 1.9.1" in plan.stdout
    assert "older than any release" not in plan.stdout + plan.stderr

    # bug 2: an unknown --param is refused before any build, naming the declared ones.
    with pytest.raises(UsageError) as info:
        train(proj, engine, store=store, params={"alpah": "0.3"}, labels=TEST_LABELS)
    assert "alpha (float, default 0.5)" in info.value.problem and "l1_ratio" in info.value.problem

    res = train(proj, engine, store=store, params={"alpha": "0.3", "l1_ratio": "0.7"}, labels=TEST_LABELS)
    cleanup.images.append(res.image_id)
    v = res.version
    logs = (store.blobs_dir / v.logs.sha256).read_text()  # type: ignore[union-attr]
    assert "Elasticnet model (alpha=0.300000, l1_ratio=0.700000) sklearn=1.9.1" in logs  # the script saw them
    assert dict(v.params) == {"alpha": "0.3", "l1_ratio": "0.7"}
    assert v.command[-1] == "python train.py 0.3 0.7"  # the record says what ran
    # bug 13: GitPython (imported as mlflow does) stays quiet in an image without git.
    assert "Failed to import Git" not in logs and "Bad git executable" not in logs

    second = train(proj, engine, store=store, labels=TEST_LABELS)  # defaults, recorded as such
    assert dict(second.version.params) == {"alpha": "0.5", "l1_ratio": "0.1"}
    assert "alpha=0.500000, l1_ratio=0.100000" in (store.blobs_dir / second.version.logs.sha256).read_text()  # type: ignore[union-attr]

    port = free_port()
    served = serving.serve(proj, engine, model=v.ref, port=port, store_root=store.root,
                           name=f"dockyard-test-mlflow-{port}", labels=TEST_LABELS)
    cleanup.containers.append(served.container)
    cleanup.images.append(served.image)
    out = serving.predict(served.url, {"input": [[1.0, 0.0, 0.0]]})
    assert 1.0 < out["output"][0] < 3.5


def test_project_with_imports_and_no_dependency_file_gets_its_framework_installed(
    engine: Engine, tmp_path: Path, store: Store, cleanup: Cleanup
) -> None:
    proj = copy_fixture("imports_only", tmp_path)
    assert dockyard("init", str(proj)).returncode == 0
    plan = dockyard("plan", str(proj))
    assert "inferred requirement: scikit-learn==1.9.1" in plan.stdout  # bug 8: inferred, with the version shown

    res = train(proj, engine, store=store, labels=TEST_LABELS)
    cleanup.images.append(res.image_id)

    assert "coef=2.0" in (store.blobs_dir / res.version.logs.sha256).read_text()  # type: ignore[union-attr]


def test_failed_build_step_with_brackets_prints_error_and_fix_not_a_markup_traceback(
    engine: Engine, tmp_path: Path
) -> None:
    proj = tmp_path / "broken"
    proj.mkdir()
    (proj / "requirements.txt").write_text("dockyard-test-no-such-distribution-7f3a==0.0.1\n")
    (proj / "train.py").write_text("print(1)\n")
    assert dockyard("init", str(proj)).returncode == 0

    proc = dockyard("build", str(proj), "--target", "train", "--tag", "dockyard-test-broken:t")

    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.splitlines()
    assert any(line.startswith("error: build failed at step [") for line in lines), proc.stderr
    assert any(line.startswith("fix:") for line in lines)
    assert "MarkupError" not in proc.stderr and "Traceback" not in proc.stderr
    assert "dockyard-test-no-such-distribution-7f3a" in proc.stderr


def test_python_without_a_local_base_names_the_bootstrap_command(engine: Engine, tmp_path: Path) -> None:
    if engine.image_exists("dockyard/python:3.13-slim"):
        pytest.skip("a 3.13 base exists on this engine; the build would use it")
    proj = tmp_path / "py313"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[project]\nname = "py313"\nversion = "0"\nrequires-python = ">=3.13"\n'
                                         'dependencies = ["numpy"]\n')
    (proj / "train.py").write_text("import numpy\n")
    assert dockyard("init", str(proj)).returncode == 0
    assert yaml.safe_load((proj / "dockyard.yaml").read_text())["python"] == "3.13"

    plan = dockyard("plan", str(proj))
    assert "dockyard base bootstrap --python 3.13" in plan.stdout  # announced before any build

    proc = dockyard("build", str(proj), "--target", "train", "--tag", "dockyard-test-py313:t", "--no-bootstrap-base",
                    timeout=300)

    assert proc.returncode == 3, proc.stderr
    assert "cannot pull the base image python:3.13" in proc.stderr
    assert "fix: run `dockyard base bootstrap --python 3.13`" in proc.stderr
    assert "--no-cache" not in proc.stderr


def test_xgboost_keeps_its_distribution_name_and_serves_model_json(
    engine: Engine, tmp_path: Path, store: Store, cleanup: Cleanup
) -> None:
    proj = copy_fixture("xgboost_metadata", tmp_path)
    assert dockyard("init", str(proj)).returncode == 0
    plan = dockyard("plan", str(proj))
    assert "not swapped for xgboost-cpu" in plan.stdout  # bug 6: the plan says why

    res = train(proj, engine, store=store, labels=TEST_LABELS)
    cleanup.images.append(res.image_id)
    logs = (store.blobs_dir / res.version.logs.sha256).read_text()  # type: ignore[union-attr]
    assert "xgboost distribution " in logs

    port = free_port()
    served = serving.serve(proj, engine, model=res.version.ref, port=port, store_root=store.root,
                           name=f"dockyard-test-xgb-{port}", labels=TEST_LABELS)
    cleanup.containers.append(served.container)
    cleanup.images.append(served.image)
    out = serving.predict(served.url, {"input": [[2.0, 0.0, 0.0]]})
    assert 0.5 < out["output"][0] <= 1.0


def test_repo2docker_conventions_apt_txt_post_build_and_pipfile(
    engine: Engine, tmp_path: Path, store: Store, cleanup: Cleanup
) -> None:
    proj = copy_fixture("repo2docker_conventions", tmp_path)
    assert dockyard("init", str(proj)).returncode == 0
    plan = dockyard("plan", str(proj))
    assert plan.returncode == 0, plan.stderr
    assert "FROM runtime-base AS post-build" in plan.stdout
    assert "apt-get install -y --no-install-recommends jq" in plan.stdout

    res = train(proj, engine, store=store, labels=TEST_LABELS)
    cleanup.images.append(res.image_id)

    logs = (store.blobs_dir / res.version.logs.sha256).read_text()  # type: ignore[union-attr]
    assert "prepared_by=postBuild" in logs and "uid=10001" in logs
    # What postBuild wrote is in the image, root-owned like the rest of the code.
    assert run_in(res.image_id, "import os; print(os.stat('/app/prepared.json').st_uid)") == "0"
    # pytest is a dev-package: left out.
    assert run_in(res.image_id, "import importlib.util; print(importlib.util.find_spec('pytest') is None)") == "True"


def test_post_build_that_needs_root_is_refused_before_any_build(engine: Engine, tmp_path: Path) -> None:
    proj = tmp_path / "rootpb"
    proj.mkdir()
    (proj / "postBuild").write_text("#!/bin/sh\nsudo apt-get install -y ffmpeg\n")
    (proj / "requirements.txt").write_text("numpy\n")
    (proj / "train.py").write_text("print(1)\n")
    assert dockyard("init", str(proj)).returncode == 0

    proc = dockyard("build", str(proj), "--target", "train")

    assert proc.returncode == 1, proc.stderr
    assert "postBuild:2: sudo apt-get install -y ffmpeg" in proc.stderr
    assert "post_build_as_root: true" in proc.stderr


@pytest.mark.slow
def test_build_makes_a_missing_base_from_debian_when_it_cannot_be_pulled(engine: Engine, tmp_path: Path) -> None:
    """A uv-style project on Python 3.13 with no 3.13 base: the build bootstraps it (Debian
    trixie), says so, and goes on. The base images it made are removed afterwards."""
    if engine.image_exists("dockyard/python:3.13-slim"):
        pytest.skip("a 3.13 base exists on this engine already")
    proj = tmp_path / "py313"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[project]\nname = "py313"\nversion = "0"\nrequires-python = ">=3.13"\n'
                                         'dependencies = ["numpy"]\n')
    (proj / "train.py").write_text("import numpy\n")
    assert dockyard("init", str(proj)).returncode == 0
    tag = "dockyard-test-py313-boot:t"
    try:
        proc = dockyard("build", str(proj), "--target", "train", "--tag", tag, timeout=1500)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "making dockyard/python:3.13-slim from Debian trixie packages" in proc.stderr
        assert run_in(tag, "import sys, numpy; print(sys.version_info[:2])") == "(3, 13)"
    finally:
        for ref in (tag, "dockyard/python:3.13-slim", "dockyard/python:3.13-build"):
            if engine.image_exists(ref):
                engine.remove_image(engine.image_id(ref), force=True)
