"""A project's own web app that the project itself runs (a Makefile's `uvicorn MODULE:app`), beside
a conventional app/main.py that only works in one cloud; the app loads the model its training
wrote to the working directory (`joblib.load("model.joblib")`). Shaped like a real edge-deployment
project of the corpus (docs/realworld.md): init must pick the app the Makefile runs, and serving a
trained version must put the version's file where that app reads it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard import serving
from dockyard.engine import Engine
from dockyard.project import init
from dockyard.store import Store
from dockyard.train import train
from projectfiles import write

TEST_LABELS = {"io.dockyard.test": "1"}

TRAIN = """\
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

iris = load_iris()
joblib.dump(LogisticRegression(max_iter=500).fit(iris.data, iris.target), "model.joblib")
print("saved model.joblib")
"""

SERVICE = """\
import joblib
import numpy as np
import pydantic
from fastapi import FastAPI

app = FastAPI()
model = joblib.load("model.joblib")  # from the working directory, where train.py wrote it


class Sample(pydantic.BaseModel):
    sepal_length: float = 5.1
    sepal_width: float = 3.5
    petal_length: float = 1.4
    petal_width: float = 0.2


@app.post("/predict")
def predict(s: Sample):
    row = [[s.sepal_length, s.sepal_width, s.petal_length, s.petal_width]]
    return {"prediction": int(model.predict(np.asarray(row))[0])}
"""

CLOUD_ONLY = """\
import os
from fastapi import FastAPI

app = FastAPI()
BUCKET = os.environ["CLOUD_STORAGE_URI"]  # set only by the cloud it was written for
"""


def test_init_picks_the_app_the_makefile_runs_and_the_version_is_where_it_reads_it(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    store = Store(tmp_path / "store")
    name = f"edge-{os.urandom(4).hex()}"
    proj = write(tmp_path / name, {
        "requirements.txt": "fastapi==0.165.0\nuvicorn==0.54.0\nscikit-learn\njoblib\n",
        "train.py": TRAIN,
        "app/__init__.py": "",
        "app/main.py": CLOUD_ONLY,
        "app/prediction_service.py": SERVICE,
        "Makefile": "serve:\n\tuvicorn app.prediction_service:app --reload\n",
    })
    result = init(proj)
    assert result.config.serve.app == "app/prediction_service.py:app"
    assert any("Makefile runs app.prediction_service:app" in n for n in result.notes), result.notes

    trained = train(proj, engine, store=store, labels=TEST_LABELS)
    images = [trained.image_id]
    assert {a.path for a in trained.version.artifacts} >= {"model.joblib"}
    assert not (proj / "model.joblib").exists()  # training wrote into its copy, not the user's folder
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = None
    try:
        res = serving.serve(proj, engine, model=trained.version.ref, port=port, store_root=store.root,
                            name=f"dockyard-test-{name}",
                            labels=TEST_LABELS)
        images.append(res.image)
        assert serving.predict(res.url, {}) == {"prediction": 0}  # the defaults are a setosa
        assert serving.predict(res.url, {"petal_length": 6.0, "petal_width": 2.3}) == {"prediction": 2}
        # The same through the CLI, as users run it.
        cli = subprocess.run([sys.executable, "-m", "dockyard", "predict", res.url, "--input", "{}"],
                             capture_output=True, text=True, timeout=120, check=False)
        assert cli.returncode == 0 and json.loads(cli.stdout) == {"prediction": 0}, cli.stderr
    finally:
        if res is not None:
            engine.remove_container(res.container)
        for image in images:
            engine.remove_image(image, force=True)
