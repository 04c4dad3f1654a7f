"""Patterns from the fourth round of real public projects (issue 11), on the real engine. Each
project here is our own, small, written to reproduce one pattern a public project showed:

* an MLflow project whose python_env.yaml lists build_dependencies (pip, setuptools, wheel) and
  whose code relies on them: MLflow's virtualenv manager installs them first, dockyard did not;
  and the newest setuptools no longer has pkg_resources, which old mlflow imports: the train
  error says so and names the pin;
* a BentoML project whose bentofile lists python.packages without bentoml (BentoML installs it in
  every bento) and saves its model with bentoml.models.create + joblib: it trains and is served;
* a requirements.txt whose pins conflict: the build error quotes the resolver's explanation.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine import Engine
from dockyard.runtime import contract
from dockyardcli import dockyard_cli, free_port
from projectfiles import write




@pytest.fixture
def name(engine: Engine) -> Iterator[str]:
    """A project name of this test's own; every image and container dockyard makes for it is removed."""
    value = f"dockyard-test-c4-{uuid.uuid4().hex[:8]}"
    yield value
    for c in engine.containers([f"label={contract.LABEL_NAME}={value}"]):
        engine.remove_container(c["ID"])
    for tag in ("train", "latest", "1"):
        engine.remove_image(f"{value}:{tag}", force=True)


def test_python_env_build_dependencies_are_installed_and_a_missing_pkg_resources_is_explained(
        engine: Engine, tmp_path: Path, name: str) -> None:
    proj = write(tmp_path / f"{name}-mlenv", {
        "MLproject": f"name: {name}\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: python train.py\n",
        "python_env.yaml": 'python: "3.11"\nbuild_dependencies:\n- pip\n- setuptools\ndependencies:\n'
                           "- -r requirements.txt\n",
        "requirements.txt": "packaging\n",
        # what mlflow 2.x does at import: pkg_resources comes with setuptools, before its release 81
        "train.py": "import setuptools\nprint('setuptools', setuptools.__version__)\nimport pkg_resources\n",
    })
    home = tmp_path / "home"
    assert dockyard_cli("init", str(proj), "--name", name, cwd=tmp_path, home=home).returncode == 0

    ran = dockyard_cli("run", str(proj), "-q", "--", "python", "-c", "import setuptools, packaging; print('ok')",
                       cwd=tmp_path, home=home)
    assert ran.returncode == 0, ran.stderr[-3000:]  # before: No module named 'setuptools' (uv's venv has none)
    assert "ok" in ran.stdout

    trained = dockyard_cli("train", str(proj), cwd=tmp_path, home=home)
    assert trained.returncode == 1, trained.stderr[-3000:]
    assert "No module named 'pkg_resources'" in trained.stderr
    assert "setuptools<81" in trained.stderr  # the fix line names the pin


PREPARE = """\
import joblib
from sklearn import datasets
from sklearn.linear_model import LogisticRegression

import bentoml

X, y = datasets.load_iris(return_X_y=True)
clf = LogisticRegression(max_iter=500).fit(X, y)
with bentoml.models.create("c4_iris") as bento_model:
    joblib.dump(clf, bento_model.path_of("model.pkl"))
print("saved", bento_model, "first", int(clf.predict(X[:1])[0]))
"""


def test_bentofile_packages_without_bentoml_train_and_the_created_model_is_served(
        engine: Engine, tmp_path: Path, name: str) -> None:
    proj = write(tmp_path / f"{name}-bento", {
        "bentofile.yaml": 'service: "service.py:Iris"\npython:\n  packages:\n    - scikit-learn\n',
        "prepare_model.py": PREPARE,
        "service.py": "import bentoml\n\n\n@bentoml.service\nclass Iris:\n    pass\n",
    })
    home = tmp_path / "home"
    init = dockyard_cli("init", str(proj), "--name", name, cwd=tmp_path, home=home)
    assert init.returncode == 0, init.stderr
    assert "plus bentoml" in init.stderr + init.stdout
    trained = dockyard_cli("train", str(proj), "--json", cwd=tmp_path, home=home)
    assert trained.returncode == 0, trained.stderr[-3000:]  # before: No module named 'bentoml'
    version = json.loads(trained.stdout[trained.stdout.index("{"):])
    port = free_port()
    served = dockyard_cli("serve", str(proj), "--model", version["ref"], "--port", str(port), "--detach", "-q",
                          cwd=tmp_path, home=home)
    assert served.returncode == 0, served.stderr[-3000:]
    body = json.dumps({"input": [[5.1, 3.5, 1.4, 0.2]]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.load(resp) == {"output": [0]}  # iris row 0 is class 0


def test_conflicting_pins_name_the_conflict(engine: Engine, tmp_path: Path, name: str) -> None:
    # as a Kaggle-style requirements.txt had it: streamlit==1.26.0 needs pillow<10 beside pillow==10.2.0
    proj = write(tmp_path / f"{name}-pins", {
        "requirements.txt": "requests==2.31.0\nurllib3==1.20\n",
        "app.py": "import requests\n",
        "dockyard.yaml": f"name: {name}\npython: '3.11'\n",
    })
    built = dockyard_cli("build", str(proj), cwd=tmp_path, home=tmp_path / "home")
    assert built.returncode == 3, built.stderr[-3000:]
    problem = next(ln for ln in built.stderr.splitlines() if ln.startswith("error:"))
    assert "no set of versions satisfies the project's requirements" in problem
    assert "urllib3" in problem and "requests==2.31.0" in problem
    assert "executor failed" not in problem
    fix = next(ln for ln in built.stderr.splitlines() if ln.startswith("fix:"))
    assert "dependency file" in fix


FLASK_APP = """\
import pickle

from flask import Flask, request

app = Flask(__name__)
model = pickle.load(open("model.pkl", "rb"))  # read from the working directory at import, as tutorials do


@app.route("/predict", methods=["POST"])
def predict():
    rooms = int(request.form["rooms"])
    distance = int(request.form["distance"])
    return {"value": model["per_room"] * rooms - model["per_km"] * distance}
"""


def test_a_flask_app_with_no_requirements_file_is_served_under_gunicorn(
        engine: Engine, tmp_path: Path, name: str) -> None:
    # a tutorial web app: app.py + a pickled model, no dependency file (flask inferred from the import);
    # dockyard runs the app under gunicorn, which the project cannot list anywhere
    import pickle

    proj = write(tmp_path / f"{name}-flask", {"app.py": FLASK_APP, "dockyard.yaml": f"name: {name}\nserve:\n  app: app.py:app\n"})
    (proj / "model.pkl").write_bytes(pickle.dumps({"per_room": 10, "per_km": 2}))
    home = tmp_path / "home"
    plan = dockyard_cli("plan", str(proj), cwd=tmp_path, home=home)
    assert plan.returncode == 0, plan.stderr
    assert "inferred requirement: gunicorn" in plan.stdout
    port = free_port()
    served = dockyard_cli("serve", str(proj), "--port", str(port), "--detach", "-q", cwd=tmp_path, home=home)
    assert served.returncode == 0, served.stderr[-3000:]  # before: "the app is WSGI, and gunicorn is not installed"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=b"rooms=3&distance=5",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.load(resp) == {"value": 20}
