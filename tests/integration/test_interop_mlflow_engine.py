"""MLflow projects go train -> serve with no code, on the real engine.

Two projects written the way MLflow users write them: one on mlflow >= 3 (no tracking URI set, so
dockyard captures a file store under /outputs; the model is a logged model saved as model.skops)
and one on mlflow 2.x (its own sqlite mlflow.db next to the code; the model under the run's
artifacts as model.pkl). Both must: record the run's params and final metrics (and the per-step
history) in the version, serve the logged model by default from ``serve --model NAME:1``, and
answer /invocations (MLflow's scoring protocol), /predict and V2 with the model's own predictions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import copy_project, project_name
from dockyard import serving
from dockyard.engine import Engine
from dockyard.store import Store
from dockyard.train import train

PROJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "projects"
TEST_LABELS = {"io.dockyard.test": "1"}


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize(("project", "name", "port", "param", "metric", "steps", "data_file"), [
    ("mlflow3_wine", "wine3", 18461, ("C", "2.0"), ("loss", 0.2), 5, "model.skops"),
    ("mlflow2_wine", "wine2", 18462, ("n_estimators", "7"), ("val_loss", 0.3), 3, "model.pkl"),
])
def test_mlflow_project_trains_and_serves_its_logged_model_with_no_code(
        engine: Engine, tmp_path: Path, project: str, name: str, port: int, param: tuple[str, str],
        metric: tuple[str, float], steps: int, data_file: str) -> None:
    src = copy_project(PROJECTS / project, tmp_path / project, ignore=())
    name = project_name(src)  # the fixture's name plus a unique suffix
    store = Store(tmp_path / "store")
    outcome = train(src, engine, store=store, labels=TEST_LABELS)
    v = outcome.version
    # params and metrics the run logged to MLflow are the version's
    assert v.params[param[0]] == param[1]
    assert v.metrics[metric[0]] == pytest.approx(metric[1])
    assert 0.5 < v.metrics["accuracy"] <= 1.0
    paths = {a.path for a in v.artifacts}
    assert any(p.endswith(f"/{data_file}") for p in paths) and any(p.endswith("/MLmodel") for p in paths)
    history = json.loads(store.artifact_path(v.ref, "metrics.json").read_text())["metrics"][metric[0]]
    assert [p["step"] for p in history] == list(range(steps))
    # `models show` prints them
    shown = subprocess.run([sys.executable, "-m", "dockyard", "models", "show", v.ref, "--store", str(store.root)],
                           capture_output=True, text=True, check=True).stdout
    assert f"{param[0]}={param[1]}" in shown and f"{metric[0]}={metric[1]:.4g}" in shown

    expected = json.loads(store.artifact_path(v.ref, "expected.json").read_text())
    res = serving.serve(src, engine, model=v.ref, port=port, name=f"dockyard-test-{name}",
                        store_root=store.root, labels=TEST_LABELS)
    try:
        base = res.url
        # MLflow's scoring protocol: every input format, and CSV
        split = {"dataframe_split": {"columns": expected["columns"], "data": expected["data"]}}
        records = [dict(zip(expected["columns"], row)) for row in expected["data"]]
        for body in (split, {"dataframe_records": records}, {"instances": records}, {"inputs": expected["data"]}):
            assert _post(f"{base}/invocations", json.dumps(body).encode()) == (
                200, {"predictions": expected["predictions"]}), body
        csv_body = ",".join(expected["columns"]) + "\n" + "\n".join(
            ",".join(repr(x) for x in row) for row in expected["data"]) + "\n"
        assert _post(f"{base}/invocations", csv_body.encode(), "text/csv") == (
            200, {"predictions": expected["predictions"]})
        status, error = _post(f"{base}/invocations", b'{"columns": []}')
        assert status == 400 and error["error_code"] == "BAD_REQUEST"
        assert _get(f"{base}/ping")[0] == 200
        # our own protocol, with column-named inputs (a space in the name)
        status, out = _post(f"{base}/predict", json.dumps(records[0]).encode())
        assert (status, out) == (200, {"output": expected["predictions"][0]})
        # V2: the signature is the metadata; one input per column
        meta = json.loads(_get(f"{base}/v2/models/{name}")[1])
        assert [i["name"] for i in meta["inputs"]] == expected["columns"]
        assert meta["platform"] == "mlflow_sklearn"
        infer = {"inputs": [{"name": c, "datatype": "FP64", "shape": [len(expected["data"])],
                             "data": [row[i] for row in expected["data"]]}
                            for i, c in enumerate(expected["columns"])]}
        status, out = _post(f"{base}/v2/models/{name}/infer", json.dumps(infer).encode())
        assert status == 200 and out["outputs"][0]["data"] == expected["predictions"]
        openapi = json.loads(_get(f"{base}/openapi.json")[1])
        assert "/invocations" in openapi["paths"]
        assert set(openapi["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
                   ["schema"]["properties"]) == set(expected["columns"])
    finally:
        engine.remove_container(res.container)
        engine.remove_image(res.tag, force=True)
        engine.remove_image(f"{name}:train", force=True)


_SCALER = """
import mlflow


class Scaler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["alcohol"] * 10 + model_input["pH"]


mlflow.models.set_model(Scaler())
"""


def test_a_custom_pyfunc_gets_mlflow_skinny_in_the_serving_image_only(engine: Engine, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    pd = pytest.importorskip("pandas")
    from dockyard.planning import make_plan

    project = tmp_path / "scorer"
    project.mkdir()
    name = f"scorer-{uuid.uuid4().hex[:8]}"  # names are per project folder: never share one
    (project / "dockyard.yaml").write_text(f'name: {name}\npython: "3.11"\n'
                                           "dependencies: {file: requirements.txt, kind: requirements}\n")
    (project / "requirements.txt").write_text("numpy\n")
    rows = pd.DataFrame({"alcohol": [0.1, 0.5], "pH": [3.0, 3.5]})
    (tmp_path / "scaler.py").write_text(_SCALER)
    model_dir = tmp_path / "scaler_model"
    mlflow.pyfunc.save_model(model_dir, python_model=str(tmp_path / "scaler.py"),
                             signature=mlflow.models.infer_signature(rows, rows["alcohol"] * 10 + rows["pH"]))
    assert not any("mlflow" in r for r in make_plan(project).requirements)  # not in the train image
    res = serving.serve(project, engine, model=str(model_dir), port=18463, name="dockyard-test-pyfunc",
                        labels=TEST_LABELS)
    try:
        body = {"dataframe_records": rows.to_dict(orient="records")}
        status, out = _post(f"{res.url}/invocations", json.dumps(body).encode())
        assert (status, out["predictions"]) == (200, pytest.approx([4.0, 8.5]))
        assert json.loads(_get(f"{res.url}/v2/models/{name}")[1])["platform"] == "mlflow_pyfunc"
    finally:
        engine.remove_container(res.container)
        engine.remove_image(res.tag, force=True)
