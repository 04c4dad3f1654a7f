"""What goes into the image for projects as people have them (issue 11), on the real engine:

* no dependency file: every third-party import is installed, not only the frameworks (LightGBM's
  python-guide imports pandas; a keras script that sets KERAS_BACKEND=jax needs jax);
* a setup.py project's own package is installed (binder's setup.py example imports it from a
  notebook in a subfolder);
* an example collection with no train-named script trains with the script that saves a model,
  and that model is served (LightGBM's simple_example.py saves model.txt beside the working dir).

Each project here is our own, small, written to reproduce one pattern.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine import Engine
from dockyardcli import dockyard_cli, free_port
from projectfiles import write




@pytest.fixture
def name(engine: Engine) -> Iterator[str]:
    """A project name of this test's own; every image dockyard tags for it is removed afterwards."""
    value = f"dockyard-test-deps-{uuid.uuid4().hex[:8]}"
    yield value
    for tag in ("train", "latest", "1"):
        engine.remove_image(f"{value}:{tag}", force=True)


REPORT = """\
import sys
import pandas as pd
import yaml                      # installs as pyyaml
import helpers                   # the project's own module, beside this script
try:
    import some_optional_speedup  # optional: the script runs without it
except ImportError:
    some_optional_speedup = None
frame = pd.DataFrame({"x": [1, 2, 3]})
print("sum", int(frame.x.sum()), "yaml", yaml.safe_dump({"ok": helpers.OK}).strip(), "pandas", pd.__version__)
"""


def test_imports_without_a_dependency_file_are_installed_and_shown_in_plan(
        engine: Engine, tmp_path: Path, name: str) -> None:
    proj = write(tmp_path / "proj", {"scripts/report.py": REPORT, "scripts/helpers.py": "OK = True\n",
                                     "scripts/gpu.py": "import cupy\n",
                                     "dockyard.yaml": f"name: {name}\npython: '3.11'\n"})
    home = tmp_path / "home"

    plan = dockyard_cli("plan", str(proj), cwd=tmp_path, home=home)
    assert plan.returncode == 0, plan.stderr
    assert "inferred requirement: pandas (unpinned: the newest release for Python 3.11 when the image is built; " \
        "`dockyard lock` pins it)  (`import pandas` in scripts/report.py)" in plan.stdout
    assert "inferred requirement: pyyaml" in plan.stdout
    assert "not installed: cupy (scripts/gpu.py)" in plan.stderr + plan.stdout
    assert "helpers" not in plan.stdout.split("# Generated")[0] and "some_optional_speedup" not in plan.stdout

    ran = dockyard_cli("run", str(proj), "-q", "--", "python", "scripts/report.py", cwd=tmp_path, home=home)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "sum 6 yaml ok: true pandas " in ran.stdout


KERAS_DEMO = """\
import os
os.environ["KERAS_BACKEND"] = "jax"   # the only place that says jax: no `import jax` anywhere
import keras
print("backend", keras.backend.backend())
"""


@pytest.mark.slow
def test_keras_backend_set_in_the_script_is_installed(engine: Engine, tmp_path: Path, name: str) -> None:
    proj = write(tmp_path / "proj", {"demo.py": KERAS_DEMO, "dockyard.yaml": f"name: {name}\npython: '3.11'\n"})
    home = tmp_path / "home"

    plan = dockyard_cli("plan", str(proj), cwd=tmp_path, home=home)
    assert "inferred requirement: jax (unpinned" in plan.stdout and "KERAS_BACKEND=jax in demo.py" in plan.stdout

    ran = dockyard_cli("run", str(proj), "-q", "--", "python", "demo.py", cwd=tmp_path, home=home)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "backend jax" in ran.stdout


SETUP_PY = """\
import os
from setuptools import find_packages, setup
here = os.path.abspath(os.path.dirname(__file__))
about = {}
with open(os.path.join(here, "mypackage", "__version__.py")) as f:   # read, like binder's example
    exec(f.read(), about)
setup(name="mypackage", version=about["__version__"], packages=find_packages(exclude=("tests",)),
      python_requires=">=3.6", install_requires=[])
"""


def test_a_setup_py_project_is_installed_and_importable_from_any_folder(
        engine: Engine, tmp_path: Path, name: str) -> None:
    proj = write(tmp_path / "proj", {
        "setup.py": SETUP_PY,
        "mypackage/__init__.py": "from .core import answer\n",
        "mypackage/__version__.py": "__version__ = '5.2.0'\n",
        "mypackage/core.py": "def answer():\n    return 42\n",
        "example_notebook/use.py": "import mypackage\nprint('answer', mypackage.answer())\n",
        "dockyard.yaml": f"name: {name}\npython: '3.11'\n",
    })
    home = tmp_path / "home"
    plan = dockyard_cli("plan", str(proj), cwd=tmp_path, home=home)
    assert "project: uv pip install --no-deps -e /app (from setup.py)" in plan.stdout

    # -I: not found through the working directory or PYTHONPATH, but installed in the venv
    check = "import mypackage, importlib.metadata as m; print(mypackage.__file__, m.version('mypackage'))"
    ran = dockyard_cli("run", str(proj), "-q", "--", "python", "-I", "-c", check, cwd=tmp_path, home=home)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "/app/mypackage/__init__.py 5.2.0" in ran.stdout  # editable: the code in /app
    ran = dockyard_cli("run", str(proj), "-q", "--", "sh", "-c", "cd example_notebook && python use.py",
                       cwd=tmp_path, home=home)
    assert ran.returncode == 0 and "answer 42" in ran.stdout, ran.stderr[-3000:]

    # A code edit reuses every dependency layer: only the code (and the project's own files) change.
    first = engine.inspect(f"{name}:train")["RootFS"]["Layers"]
    (proj / "mypackage" / "core.py").write_text("def answer():\n    return 43\n")
    ran = dockyard_cli("run", str(proj), "-q", "--", "python", "example_notebook/use.py", cwd=tmp_path, home=home)
    assert "answer 43" in ran.stdout, ran.stderr[-3000:]
    second = engine.inspect(f"{name}:train")["RootFS"]["Layers"]
    assert len(first) == len(second) and first[:-2] == second[:-2] and first != second


SIMPLE_EXAMPLE = """\
from pathlib import Path
import numpy as np
import pandas as pd
import lightgbm as lgb

data = Path(__file__).absolute().parents[1] / "regression" / "train.tsv"
frame = pd.read_csv(data, sep="\\t", header=None)
booster = lgb.train({"objective": "regression", "verbose": -1, "min_data_in_leaf": 2},
                    lgb.Dataset(frame.drop(columns=0), frame[0]), num_boost_round=10)
booster.save_model("model.txt")
print("saved model.txt")
"""
ADVANCED_EXAMPLE = SIMPLE_EXAMPLE.replace("num_boost_round=10", "num_boost_round=20") + "\n# more\n" * 30
PLOT_EXAMPLE = "import lightgbm as lgb\nbooster = lgb.train({}, lgb.Dataset([[1.0]], [1.0]))\nprint('no model saved')\n"


def test_an_example_collection_trains_with_the_script_that_saves_a_model_and_serves_it(
        engine: Engine, tmp_path: Path, name: str) -> None:
    rng = __import__("random").Random(0)
    rows = []
    for _ in range(80):
        x = [rng.uniform(0, 1) for _ in range(3)]
        rows.append("\t".join(str(v) for v in [2 * x[0] - x[1] + 0.5 * x[2], *x]))
    proj = write(tmp_path / "examples", {
        "python-guide/simple_example.py": SIMPLE_EXAMPLE,
        "python-guide/advanced_example.py": ADVANCED_EXAMPLE,
        "python-guide/plot_example.py": PLOT_EXAMPLE,
        "regression/train.tsv": "\n".join(rows) + "\n",
    })
    home = tmp_path / "home"
    init = dockyard_cli("init", str(proj), "--name", name, cwd=tmp_path, home=home)
    assert init.returncode == 0, init.stderr
    assert "train:\n  command: python python-guide/simple_example.py" in (proj / "dockyard.yaml").read_text()
    assert "the others: python-guide/advanced_example.py" in init.stderr + init.stdout

    trained = dockyard_cli("train", str(proj), "--json", "-q", cwd=tmp_path, home=home)
    assert trained.returncode == 0, trained.stderr[-3000:]
    version = json.loads(trained.stdout)
    assert "model.txt" in version["captured"]  # saved beside the working directory, in its writable copy

    port = free_port()
    try:
        served = dockyard_cli("serve", str(proj), "--model", version["ref"], "--port", str(port), "--detach", "-q",
                              cwd=tmp_path, home=home)
        assert served.returncode == 0, served.stderr[-3000:]
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/openapi.json", timeout=10) as resp:
            assert "lightgbm" in json.load(resp)["info"]["description"]
        answer = dockyard_cli("predict", url, "--input", json.dumps({"input": [[0.9, 0.1, 0.5]]}),
                              cwd=tmp_path, home=home, timeout=60)
        assert answer.returncode == 0, answer.stderr
        (value,) = json.loads(answer.stdout)["output"]
        assert 0.5 < value < 2.5  # y = 2*x0 - x1 + 0.5*x2 = 1.95, roughly, after 10 rounds on 80 rows
    finally:
        engine.remove_container(f"dockyard-serve-{name}-{port}")


def test_the_notebook_image_imports_the_package_from_the_mounted_project(
        engine: Engine, tmp_path: Path, name: str) -> None:
    """`dockyard notebook` mounts the project at /app: the editable install finds the code there, so
    edits show without a rebuild."""
    from dockyard import project

    proj = write(tmp_path / "proj", {"setup.py": SETUP_PY, "mypackage/__init__.py": "from .core import answer\n",
                                     "mypackage/__version__.py": "__version__ = '5.2.0'\n",
                                     "mypackage/core.py": "def answer():\n    return 42\n",
                                     "dockyard.yaml": f"name: {name}\npython: '3.11'\n"})
    tag = f"{name}:dev"
    try:
        project.build(proj, engine, target="dev", tag=tag)
        (proj / "mypackage" / "core.py").write_text("def answer():\n    return 7\n")  # after the build
        proc = engine.docker("run", "--rm", "--label", "io.dockyard.test=1", "--read-only", "-v", f"{proj}:/app:ro",
                             "--entrypoint", "python", tag, "-I", "-c",
                             "import mypackage; print(mypackage.__file__, mypackage.answer())", check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "/app/mypackage/__init__.py 7"
    finally:
        engine.remove_image(tag, force=True)
