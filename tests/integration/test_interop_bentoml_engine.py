"""A BentoML project: init reads bentofile.yaml, train installs its dependencies and captures the
model it saves to the BentoML store, and serve --model NAME:1 serves that model with no code."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import copy_project
from dockyard import serving
from dockyard.engine import Engine
from dockyard.project import init
from dockyard.store import Store
from dockyard.train import train

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "projects" / "bentoml_iris"


def test_bentoml_project_trains_and_serves_its_saved_model(engine: Engine, tmp_path: Path) -> None:
    project = copy_project(PROJECT, tmp_path / "iris", ignore=())  # a unique folder: init names it
    cfg = init(project).config
    assert cfg.dependencies.file == "requirements-bentoml.txt" and cfg.env == {"IRIS_GREETING": "hello"}
    store = Store(tmp_path / "store")
    v = train(project, engine, store=store, labels={"io.dockyard.test": "1"}).version
    saved = [a.path for a in v.artifacts if a.path.endswith("/saved_model.pkl")]
    assert len(saved) == 1 and saved[0].startswith("bentoml/models/iris_clf/")
    expected = json.loads(store.artifact_path(v.ref, "expected.json").read_text())
    res = serving.serve(project, engine, model=v.ref, port=18491, name="dockyard-test-bentoml",
                        store_root=store.root, labels={"io.dockyard.test": "1"})
    try:
        assert serving.predict(res.url, {"input": expected["rows"]}) == {"output": expected["predictions"]}
    finally:
        engine.remove_container(res.container)
        engine.remove_image(res.tag, force=True)
        engine.remove_image(f"{cfg.name}:train", force=True)
