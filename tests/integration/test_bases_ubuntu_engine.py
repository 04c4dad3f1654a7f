"""Python 3.10 and 3.12 from Ubuntu (jammy, noble), on the real engine (issue 11: other Pythons).

`base bootstrap` makes the same two images as for Debian (slim + -build, same labels), verified
against the pinned Ubuntu archive key; builds of projects that pin 3.10 (runtime.txt, Poetry),
and of a Pipfile for Python 3.6, make the base when it is missing and run on it. Every image a
test makes is removed by tag; a base the module's builds bootstrapped is removed at its end.
Each bootstrap takes a few minutes (debootstrap + an upgrade from -updates/-security): slow.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import base, serving
from dockyard.engine import Engine
from dockyard.store import Store
from dockyard.train import train

pytestmark = pytest.mark.slow

BASE_310 = "dockyard/python:3.10-slim"


def dockyard(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def sh(engine: Engine, image: str, script: str, *, user: str = "0") -> str:
    proc = engine.docker("run", "--rm", "--label", "io.dockyard.test=1", "--user", user, "--entrypoint", "sh",
                         image, "-c", script, check=False)
    assert proc.returncode == 0, f"{script}: {proc.stdout}{proc.stderr}"
    return str(proc.stdout)


def _remove(engine: Engine, *refs: str) -> None:
    for ref in refs:
        if engine.image_exists(ref):
            engine.remove_image(engine.image_id(ref), force=True)


@pytest.fixture(scope="module")
def base_310(engine: Engine) -> Iterator[bool]:
    """Whether dockyard/python:3.10-slim was missing (the first build then bootstraps it). A base
    the module's builds made is removed at its end; one that was there before is left alone."""
    missing = not engine.image_exists(BASE_310)
    yield missing
    if missing:
        _remove(engine, BASE_310, BASE_310.replace("-slim", "-build"))


@pytest.mark.parametrize(("python", "suite"), [("3.10", "jammy"), ("3.12", "noble")])
def test_bootstrap_makes_ubuntu_bases_with_the_debian_contract(engine: Engine, python: str, suite: str) -> None:
    tag = f"dockyard-test/python:{python}-slim"
    build = tag.replace("-slim", "-build")
    try:
        made = base.bootstrap(engine, python, tag=tag)
        assert (made.ref, made.suite, made.python) == (tag, suite, python)
        assert made.size_bytes < 160e6, "apt lists, caches, docs and locales are dropped"
        slim = sh(engine, tag, "python3 -c 'import ssl, venv, ensurepip, sys; print(sys.version_info[:2])'; "
                               "command -v uv strip || echo none; ls /var/lib/apt/lists | wc -l; "
                               "dpkg -s binutils >/dev/null 2>&1 && echo binutils || echo no-binutils; "
                               "readlink /usr/bin/python").split("\n")
        major, minor = python.split(".")
        assert slim[:5] == [f"({major}, {minor})", "none", slim[2], "no-binutils", "python3"]
        assert int(slim[2]) <= 2
        assert sh(engine, build, "uv --version && command -v strip").startswith("uv ")
        for ref, variant in ((tag, None), (build, "build")):
            labels = engine.inspect(ref)["Config"]["Labels"]
            assert labels["io.dockyard.base.python"] == python and labels["io.dockyard.base.suite"] == suite
            assert labels.get("io.dockyard.base.variant") == variant
        # apt in the image points at the archive it came from, with updates and security, and
        # verifies it: a later build's apt-get install (apt.txt, libgomp1 for LightGBM) works.
        sources = sh(engine, tag, "cat /etc/apt/sources.list")
        for pocket in (suite, f"{suite}-updates", f"{suite}-security"):
            assert f"http://archive.ubuntu.com/ubuntu {pocket} main universe" in sources
        installed = sh(engine, tag, "apt-get update -qq && apt-get install -y -qq --no-install-recommends libgomp1 "
                                    ">/dev/null && ls /usr/lib/x86_64-linux-gnu/ | grep -c '^libgomp.so.1'")
        assert int(installed.strip()) >= 1
    finally:
        _remove(engine, tag, build)


def _project(root: Path, files: dict[str, str]) -> Path:
    """A project in a folder of its own unique name (`init` names the project after its folder;
    names are per folder, so a killed earlier session's image must not claim this one's)."""
    root = root.with_name(f"{root.name}-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_runtime_txt_python_3_10_builds_and_runs_on_3_10_with_apt_libraries(
        engine: Engine, tmp_path: Path, base_310: bool) -> None:
    """runtime.txt python-3.10 + LightGBM (libgomp1 from the Ubuntu archive at build time)."""
    proj = _project(tmp_path / "py310", {
        "runtime.txt": "python-3.10\n",
        "requirements.txt": "lightgbm\nnumpy\n",
        "train.py": "import sys, numpy, lightgbm\n"
                    "d = lightgbm.Dataset(numpy.random.rand(50, 3), label=numpy.arange(50) % 2)\n"
                    "b = lightgbm.train({'objective': 'binary', 'verbose': -1}, d, num_boost_round=2)\n"
                    "print('python', '.'.join(map(str, sys.version_info[:2])), 'lightgbm', lightgbm.__version__)\n",
    })
    _init_plan_build_run(engine, proj, "3.10", "jammy", missing=base_310, plan_shows=("libgomp1",),
                         output="python 3.10 lightgbm ")


def _init_plan_build_run(engine: Engine, proj: Path, python: str, suite: str, *, missing: bool,
                         plan_shows: tuple[str, ...] = (), output: str) -> None:
    """init, plan (which announces the bootstrap of a missing base), build --target train (which
    makes it), then the image's default command prints ``output``...; the image is removed."""
    assert dockyard("init", str(proj)).returncode == 0
    plan = dockyard("plan", str(proj))
    assert plan.returncode == 0 and f"python: {python}" in plan.stdout, plan.stderr
    assert all(text in plan.stdout for text in plan_shows), plan.stdout
    if missing:  # announced before any build
        assert (f"makes a local one from Ubuntu {suite} packages first (`dockyard base bootstrap --python {python}`"
                in plan.stdout)
    tag = f"dockyard-test-py{python.replace('.', '')}-{uuid.uuid4().hex[:8]}:t"
    try:
        built = dockyard("build", str(proj), "--target", "train", "--tag", tag)
        assert built.returncode == 0, built.stderr[-3000:]
        if missing:
            assert f"making dockyard/python:{python}-slim from Ubuntu {suite} packages" in built.stderr
        out = engine.docker("run", "--rm", "--label", "io.dockyard.test=1", tag).stdout
        assert out.startswith(output), out
    finally:
        _remove(engine, tag)


POETRY_122 = {
    "pyproject.toml": '[tool.poetry]\nname = "edge-model"\nversion = "0.1.0"\ndescription = ""\n'
                      'authors = ["a <a@example.invalid>"]\n\n[tool.poetry.dependencies]\npython = "3.10.11"\n'
                      'scikit-learn = "1.2.2"\n',
    "poetry.lock": "".join(f'[[package]]\nname = "{n}"\nversion = "{v}"\noptional = false\npython-versions = ">=3.8"\n\n'
                           for n, v in (("joblib", "1.2.0"), ("numpy", "1.24.3"), ("scikit-learn", "1.2.2"),
                                        ("scipy", "1.10.1"), ("threadpoolctl", "3.1.0")))
                   + '[metadata]\nlock-version = "2.0"\npython-versions = "3.10.11"\ncontent-hash = "0"\n',
    "train_model.py": "import sys, joblib, sklearn\nfrom sklearn.datasets import load_iris\n"
                      "from sklearn.linear_model import LogisticRegression\n"
                      "X, y = load_iris(return_X_y=True)\nm = LogisticRegression(max_iter=200).fit(X, y)\n"
                      "joblib.dump(m, 'model.joblib')\n"
                      "print('python', '.'.join(map(str, sys.version_info[:2])), 'scikit-learn', sklearn.__version__)\n",
    "Makefile": "train:\n\tpoetry run python train_model.py\n",
}


def test_poetry_project_pinning_an_old_scikit_learn_builds_with_a_warning_on_its_python(
        engine: Engine, tmp_path: Path, base_310: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shaped like a real edge-deployment project: poetry.lock pins scikit-learn 1.2.2 (older than
    dockyard's data) for python = "3.10.11": plan warns and the pinned release runs on 3.10."""
    proj = _project(tmp_path / "edge", POETRY_122)
    assert dockyard("init", str(proj)).returncode == 0
    plan = dockyard("plan", str(proj))
    assert plan.returncode == 0, plan.stderr
    assert "framework: scikit-learn 1.2.2" in plan.stdout
    assert "warning: scikit-learn==1.2.2 is older than dockyard's compatibility data" in plan.stdout
    assert "train: python train_model.py" in plan.stdout
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    store = Store(tmp_path / "store")
    trained = train(proj, engine, store=store, labels={"io.dockyard.test": "1"})  # `dockyard train`
    engine.remove_image(trained.image_id, force=True)
    logs = (store.blobs_dir / trained.version.logs.sha256).read_text()  # type: ignore[union-attr]
    assert "python 3.10 scikit-learn 1.2.2" in logs, logs[-2000:]
    assert {a.path for a in trained.version.artifacts} >= {"model.joblib"}
    # Served on 3.10 with no code: the runtime itself must run on 3.10 (it once used a 3.11-only regex).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    served = serving.serve(proj, engine, model=trained.version.ref, port=port, store_root=store.root,
                           name=f"dockyard-test-edge-{port}", labels={"io.dockyard.test": "1"})
    try:
        out = serving.predict(served.url, {"input": [[5.1, 3.5, 1.4, 0.2]]})
        assert out["output"] == [0], out
        version = engine.docker("exec", served.container, "python", "-c",
                                "import sys; print(sys.version_info[:2])").stdout.strip()
        assert version == "(3, 10)"
    finally:
        engine.remove_container(served.container)
        engine.remove_image(served.image, force=True)
    # On 3.12 the pin has no wheel: refused before any build, with a fix that fits.
    text = (proj / "dockyard.yaml").read_text().replace("python: '3.10'", "python: '3.12'")
    (proj / "dockyard.yaml").write_text(text)
    refused = dockyard("plan", str(proj))
    assert refused.returncode == 1
    assert "scikit-learn 1.2.2, which published no wheels for Python 3.12" in refused.stderr
    assert 'set python: "3.11"' in refused.stderr and "Traceback" not in refused.stderr


def test_pipfile_for_python_3_6_builds_on_3_10_from_its_packages(
        engine: Engine, tmp_path: Path, base_310: bool) -> None:
    lock = {"_meta": {"requires": {"python_version": "3.6"}},
            "default": {"numpy": {"version": "==1.16.4"}, "pandas": {"version": "==0.24.2"}}, "develop": {}}
    proj = _project(tmp_path / "pip36", {
        "Pipfile": '[packages]\nnumpy = "*"\npandas = "*"\n\n[requires]\npython_version = "3.6"\n',
        "Pipfile.lock": json.dumps(lock),
        "check.py": "import sys, numpy, pandas\n"
                    "print('python', '.'.join(map(str, sys.version_info[:2])), 'numpy', numpy.__version__)\n",
    })
    assert dockyard("init", str(proj)).returncode == 0
    plan = dockyard("plan", str(proj))
    assert plan.returncode == 0, plan.stderr
    assert "python: 3.10" in plan.stdout
    assert "Pipfile.lock pins releases made for Python 3.6 and is NOT installed" in plan.stdout
    proc = dockyard("run", str(proj), "--", "python", "check.py")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Pipfile.lock pins releases made for Python 3.6 and is NOT installed" in proc.stderr  # run warns too
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("python 3.10 numpy ") and not line.endswith("1.16.4"), line


def test_python_version_3_12_without_a_base_bootstraps_ubuntu_noble_and_runs_on_it(
        engine: Engine, tmp_path: Path) -> None:
    """.python-version 3.12: plan announces the noble bootstrap, the build makes the base and runs on it."""
    base_312 = "dockyard/python:3.12-slim"
    missing = not engine.image_exists(base_312)
    proj = _project(tmp_path / "py312", {
        ".python-version": "3.12\n",
        "requirements.txt": "numpy\n",
        "train.py": "import sys, numpy\nprint('python', '.'.join(map(str, sys.version_info[:2])), 'numpy', numpy.__version__)\n",
    })
    try:
        _init_plan_build_run(engine, proj, "3.12", "noble", missing=missing, output="python 3.12 numpy ")
    finally:
        if missing:
            _remove(engine, base_312, base_312.replace("-slim", "-build"))


def test_own_dockerfile_from_an_unpullable_python_names_the_image_and_the_registry_free_way(
        engine: Engine, tmp_path: Path) -> None:
    """The real project also ships its own Dockerfile (FROM python:3.10.11, no train stage): `train`
    builds dockyard's generated one; `dockyard build` builds the project's as-is, and with no
    registry the error names that image and the way out."""
    files = {**POETRY_122, "Dockerfile": "FROM python:3.10.11 AS prediction-service\nWORKDIR /code\n"
                                         "COPY train_model.py /code/\nCMD [\"python\", \"train_model.py\"]\n"}
    proj = _project(tmp_path / "own", files)
    assert dockyard("init", str(proj)).returncode == 0
    plan = dockyard("plan", str(proj))
    assert "it has no train/serve/dev stage, so `train`, `serve`, `dev` use dockyard's generated" in plan.stdout
    # A serving-only Dockerfile has no train stage: `train` builds dockyard's generated Dockerfile.
    no_stage = dockyard("build", str(proj), "--target", "train", "--tag", "dockyard-test-own:train", timeout=900)
    try:
        assert no_stage.returncode == 0, no_stage.stderr[-3000:]
        assert "has no `train` stage: building dockyard's generated Dockerfile" in no_stage.stderr
    finally:
        _remove(engine, "dockyard-test-own:train")
    built = dockyard("build", str(proj), "--tag", "dockyard-test-own:t", timeout=300)
    if built.returncode == 0:  # this engine can pull from Docker Hub after all
        _remove(engine, "dockyard-test-own:t")
        pytest.skip("the engine reached Docker Hub")
    assert built.returncode == 3, built.stderr
    assert "the engine cannot pull python:3.10.11, which Dockerfile builds FROM" in built.stderr
    assert "dockyard/python:3.10-slim" in built.stderr and "--no-cache" not in built.stderr
