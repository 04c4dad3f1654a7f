"""MLflow model directories served with no code, checked against mlflow itself.

Real mlflow (the test extra) saves each flavor into tmp_path; the runtime serves the directory
over real HTTP, and its answers on /invocations, /predict and V2 must equal what
``mlflow.pyfunc.load_model(dir).predict`` returns in this process. Tracking stores (file and
sqlite) are made by real mlflow too, and ``runs:/`` / ``models:/`` references resolve against them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import Server, post_json, request

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")
np = pytest.importorskip("numpy")

from dockyard.interop import mlflow_refs  # noqa: E402
from dockyard.interop.mlflow_serving import serving_requirements  # noqa: E402
from dockyard.interop.mlflow_tracking import TrackingError, open_store  # noqa: E402
from dockyard.runtime.mlflow_model import parse_block_yaml  # noqa: E402
from dockyard.runtime.mlflow_protocol import BadRequest, parse_request  # noqa: E402

COLUMNS = ["fixed acidity", "alcohol", "pH"]
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


def wine() -> tuple[Any, Any]:
    rng = np.random.RandomState(0)
    x = pd.DataFrame(rng.rand(60, 3), columns=COLUMNS)
    return x, (x["alcohol"] + 0.2 * x["pH"] > 0.6).astype(int)


def _sklearn(path: Path, fmt: str) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = wine()
    model = LogisticRegression().fit(x, y)
    mlflow.sklearn.save_model(model, path, serialization_format=fmt,
                              signature=mlflow.models.infer_signature(x, model.predict(x)))


def _xgboost_sklearn_api(path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = wine()
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    mlflow.xgboost.save_model(model, path, signature=mlflow.models.infer_signature(x, model.predict(x)))


def _xgboost_booster(path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    x, y = wine()
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=y), num_boost_round=4)
    mlflow.xgboost.save_model(booster, path, signature=mlflow.models.infer_signature(x))


def _lightgbm_booster(path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = wine()
    booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 5},
                        lgb.Dataset(x, label=y), num_boost_round=4)
    mlflow.lightgbm.save_model(booster, path, signature=mlflow.models.infer_signature(x))


def _lightgbm_sklearn_api(path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    x, y = wine()
    model = lgb.LGBMClassifier(n_estimators=4, min_child_samples=5, verbose=-1).fit(x, y)
    mlflow.lightgbm.save_model(model, path, serialization_format="cloudpickle",
                               signature=mlflow.models.infer_signature(x, model.predict(x)))


_DOUBLER = """
import mlflow


class Doubler(mlflow.pyfunc.PythonModel):  # a custom pyfunc: only mlflow can load it
    def predict(self, context, model_input, params=None):
        return model_input["alcohol"] * 2 + model_input["pH"]


mlflow.models.set_model(Doubler())
"""


def _custom_pyfunc(path: Path) -> None:
    x, _ = wine()
    code = path.parent / "doubler.py"
    code.write_text(_DOUBLER)
    out = x["alcohol"] * 2 + x["pH"]
    mlflow.pyfunc.save_model(path, python_model=str(code), signature=mlflow.models.infer_signature(x, out))


FLAVORS = {
    "sklearn-skops": lambda p: _sklearn(p, "skops"),
    "sklearn-cloudpickle": lambda p: _sklearn(p, "cloudpickle"),
    "sklearn-pickle": lambda p: _sklearn(p, "pickle"),
    "xgboost-sklearn-api": _xgboost_sklearn_api,
    "xgboost-booster": _xgboost_booster,
    "lightgbm-booster": _lightgbm_booster,
    "lightgbm-sklearn-api": _lightgbm_sklearn_api,
    "custom-pyfunc": _custom_pyfunc,
}


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_mlmodel_dir_answers_as_mlflow_pyfunc_predicts(flavor: str, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    FLAVORS[flavor](model_dir)
    x, _ = wine()
    rows = x.iloc[:5]
    expected = np.asarray(mlflow.pyfunc.load_model(str(model_dir)).predict(rows)).tolist()
    with Server(["--model", str(model_dir), "--name", "wine"], tmp_path) as server:
        server.wait_ready(120)
        split = {"dataframe_split": {"columns": COLUMNS, "data": rows.values.tolist()}}
        status, body = post_json(server.port, "/invocations", split)
        assert status == 200, body
        assert body["predictions"] == pytest.approx(expected)
        status, body = post_json(server.port, "/predict", {c: rows[c].tolist() for c in COLUMNS})
        assert status == 200 and body["output"] == pytest.approx(expected)
        infer = {"inputs": [{"name": c, "datatype": "FP64", "shape": [5], "data": rows[c].tolist()}
                            for c in COLUMNS]}
        status, body = post_json(server.port, "/v2/models/wine/infer", infer)
        assert status == 200 and body["outputs"][0]["data"] == pytest.approx(expected)
        status, _, meta = request(server.port, "GET", "/v2/models/wine")
        assert [i["name"] for i in json.loads(meta)["inputs"]] == COLUMNS


def test_block_yaml_reader_reads_mlmodel_files_as_pyyaml_does(tmp_path: Path) -> None:
    import yaml

    _sklearn(tmp_path / "m", "skops")
    _custom_pyfunc(tmp_path / "p")
    for d in ("m", "p"):
        text = (tmp_path / d / "MLmodel").read_text()
        assert parse_block_yaml(text) == yaml.safe_load(text)
    folded = "signature:\n  inputs: '[{\"type\": \"double\", \"name\": \"it''s\"}, {\"type\":\n    \"long\"}]'\n"
    assert parse_block_yaml(folded) == yaml.safe_load(folded)


def test_unloadable_flavor_names_the_flavor_and_what_to_do(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors:\n  spark:\n    model_data: sparkml\nmlflow_version: 2.22.5\n")
    with Server(["--model", str(model_dir)], tmp_path) as server:
        assert server.proc.wait(60) == 1
    assert "flavor(s) spark cannot be served" in server.log and "mlflow.pyfunc.log_model" in server.log


def test_serving_requirements_add_mlflow_only_for_flavors_that_need_its_loader(tmp_path: Path) -> None:
    _custom_pyfunc(tmp_path / "p")
    _sklearn(tmp_path / "s", "skops")
    added = serving_requirements(tmp_path / "p", ("pandas",))
    assert added[0] == f"mlflow-skinny=={mlflow.__version__}"
    assert not any(r.startswith(("mlflow==", "pandas")) for r in added)  # the model's own needs, minus ours
    assert serving_requirements(tmp_path / "p", ("mlflow==3.1",)) == ()
    assert serving_requirements(tmp_path / "s", ("scikit-learn",)) == ("skops",)
    assert serving_requirements(tmp_path / "s", ("scikit-learn", "skops>=0.10")) == ()


# -- references ------------------------------------------------------------------------------
def _log_and_register(uri: str, cwd: Path) -> str:
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    x, y = wine()
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name="model", registered_model_name="wine")
    mlflow.MlflowClient().set_registered_model_alias("wine", "champion", "1")
    return str(run.info.run_id)


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_runs_and_models_references_resolve_to_the_logged_mlmodel(kind: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri() if kind == "file" else f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = _log_and_register(uri, tmp_path)
    env = {"MLFLOW_TRACKING_URI": uri}
    found = {ref: mlflow_refs.resolve(ref, tmp_path, env)
             for ref in (f"runs:/{run_id}/model", "models:/wine/1", "models:/wine@champion", "models:/wine/latest")}
    assert len(set(found.values())) == 1
    (model_dir,) = set(found.values())
    assert (model_dir / "MLmodel").is_file()
    for bad, what in ((f"runs:/{run_id}/nope", "has no MLflow model at 'nope'"), ("runs:/0123/model", "no run with id"),
                      ("models:/wine/9", "has no version '9'"), ("models:/wine@gone", "has no alias 'gone'")):
        with pytest.raises(TrackingError) as info:
            mlflow_refs.resolve(bad, tmp_path, env)
        assert uri in info.value.problem and bad in info.value.problem and what in info.value.problem


def test_a_tracking_server_uri_is_refused_with_a_way_forward(tmp_path: Path) -> None:
    with pytest.raises(TrackingError) as info:
        open_store("http://mlflow.internal:5000", cwd=tmp_path)
    assert "http://mlflow.internal:5000" in info.value.problem and "mlflow artifacts download" in info.value.fix


# -- the scoring protocol's request parsing (pure) ----------------------------------------------
def test_invocations_formats_become_the_same_columns() -> None:
    want = {"a": [1, 3], "b": [2.5, 4.0]}
    bodies = [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4.0]]}},
        {"dataframe_records": [{"a": 1, "b": 2.5}, {"a": 3, "b": 4.0}]},
        {"instances": [{"a": 1, "b": 2.5}, {"a": 3, "b": 4.0}]},
        {"inputs": {"a": [1, 3], "b": [2.5, 4.0]}},
        {"inputs": [[1, 2.5], [3, 4.0]]},
        {"dataframe_split": {"columns": ["b", "a", "extra"], "data": [[2.5, 1, "x"], [4.0, 3, "y"]]}},
    ]
    for body in bodies:
        assert parse_request("application/json", json.dumps(body).encode(), ["a", "b"], True) == want, body
    assert parse_request("text/csv; charset=utf-8", b"a,b\n1,2.5\n3,4.0\n", ["a", "b"], True) == want
    assert parse_request("application/json", b'{"inputs": [[1, 2], [3, 4]]}', ["input"], False) == {
        "input": [[1, 2], [3, 4]]}


@pytest.mark.parametrize(("content_type", "body", "status", "text"), [
    ("application/json", b'{"dataframe_split": {}, "inputs": []}', 400, "exactly one of the input fields"),
    ("application/json", b"[1, 2]", 400, "Received a list"),
    ("application/json", b'{"dataframe_records": [{"a": 1}]}', 400, "missing input column(s) ['b']"),
    ("application/json", b"{nope", 400, "valid JSON"),
    ("text/plain", b"a,b", 415, "only supports the following content types"),
    ("application/json; charset=latin-1", b"{}", 415, "only supports UTF-8"),
])
def test_invocations_bad_requests_answer_as_mlflow_does(content_type: str, body: bytes, status: int, text: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_request(content_type, body, ["a", "b"], True)
    assert info.value.status == status and text in info.value.message


# -- export --------------------------------------------------------------------------------------
def _stored(tmp_path: Path, files: dict[str, Any]) -> tuple[Any, str]:
    from datetime import UTC, datetime

    from dockyard.store import ImageInfo, RunRecord, Store

    outputs = tmp_path / "outputs"
    for rel, write in files.items():
        (outputs / rel).parent.mkdir(parents=True, exist_ok=True)
        write(outputs / rel)
    now = datetime.now(UTC)
    run = RunRecord(name="wine", run_id="wine-run-1", command="python train.py",
                    image=ImageInfo(id="sha256:" + "a" * 64), started=now, ended=now)
    store = Store(tmp_path / "store")
    return store, store.record_success(run, outputs).ref


def _export_and_compare(tmp_path: Path, files: dict[str, Any], predict: Any) -> Path:
    from dockyard.interop.mlflow_export import export_mlflow

    store, ref = _stored(tmp_path, files)
    dest = export_mlflow(store, ref, tmp_path / "exported")
    x, _ = wine()
    got = np.asarray(mlflow.pyfunc.load_model(str(dest)).predict(x.values))
    assert got.tolist() == pytest.approx(np.asarray(predict(x.values)).tolist())
    return dest


def test_export_writes_an_mlmodel_dir_mlflow_loads_for_a_joblib_estimator(tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = wine()
    model = LogisticRegression().fit(x.values, y)
    dest = _export_and_compare(tmp_path, {"model.joblib": lambda p: joblib.dump(model, p)}, model.predict)
    assert (dest / "model.pkl").is_file()


def test_export_writes_an_mlmodel_dir_mlflow_loads_for_xgboost_and_lightgbm(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    x, y = wine()
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x.values, label=y), num_boost_round=3)
    _export_and_compare(tmp_path / "x", {"model.json": lambda p: booster.save_model(str(p))},
                        lambda a: booster.predict(xgb.DMatrix(a)))
    gbm = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 5}, lgb.Dataset(x.values, label=y), 3)
    _export_and_compare(tmp_path / "l", {"model.txt": lambda p: gbm.save_model(str(p))}, gbm.predict)


def test_export_of_a_logged_mlflow_model_is_that_directory(tmp_path: Path) -> None:
    from dockyard.interop.mlflow_export import export_mlflow

    store, ref = _stored(tmp_path, {"mlruns/1/models/m-1/artifacts": lambda p: _sklearn(p, "cloudpickle")})
    dest = export_mlflow(store, ref, tmp_path / "exported")
    assert sorted(f.name for f in dest.iterdir()) == sorted(
        f.name for f in (tmp_path / "outputs/mlruns/1/models/m-1/artifacts").iterdir())


def test_export_refuses_a_format_without_an_mlflow_flavor(tmp_path: Path) -> None:
    from dockyard.errors import UsageError
    from dockyard.interop.mlflow_export import export_mlflow

    store, ref = _stored(tmp_path, {"model.pt": lambda p: p.write_bytes(b"PK\x03\x04")})
    with pytest.raises(UsageError) as info:
        export_mlflow(store, ref, tmp_path / "exported")
    assert "model.pt (torchscript)" in info.value.problem and "log_model" in info.value.fix


# -- training capture -> the version record -----------------------------------------------------
def _train_once(outputs: Path, c: float) -> None:
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(f"sqlite:///{outputs / 'mlflow.db'}")
    x, y = wine()
    with mlflow.start_run():
        mlflow.log_param("C", c)
        for step in range(4):
            mlflow.log_metric("loss", c / (step + 1), step=step)
        mlflow.sklearn.log_model(LogisticRegression(C=c).fit(x, y), name="model")


def test_captured_mlflow_runs_show_in_models_show_and_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    from datetime import UTC, datetime

    from dockyard.interop.mlflow_capture import capture
    from dockyard.store import ImageInfo, RunRecord, Store

    store = Store(tmp_path / "store")
    refs = []
    for n, c in enumerate((1.0, 0.5)):
        outputs = tmp_path / f"out{n}"
        outputs.mkdir()
        monkeypatch.chdir(outputs)  # mlflow puts artifacts in ./mlruns, as in a training container's /app
        started = datetime.now(UTC)
        _train_once(outputs, c)
        captured = capture(outputs, started)
        assert len(captured.runs) == 1 and captured.models[0].endswith("artifacts")
        run = RunRecord(name="wine", run_id=f"wine-run-{n}", command="python train.py",
                        image=ImageInfo(id="sha256:" + "a" * 64), started=started, ended=datetime.now(UTC))
        refs.append(store.record_success(run, outputs).ref)
    v = store.get(refs[1])
    assert v.params == {"C": "0.5"} and v.metrics == {"loss": 0.125}

    def cli(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "dockyard", "models", *args, "--store", str(store.root)],
                              capture_output=True, text=True, check=True).stdout

    shown = cli("show", refs[1])
    assert "params: C=0.5" in shown and "metrics: loss=0.125" in shown and "loss (4 steps)" in shown
    diff = cli("diff", refs[0], refs[1])
    assert "~ C: 1.0 -> 0.5" in diff and "~ loss: 0.25 -> 0.125" in diff


# -- flavors that load only through mlflow, with tensor signatures --------------------------------
def _torch_model(path: Path) -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(dim=1))
    x = np.random.RandomState(0).rand(8, 3).astype(np.float32)
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    mlflow.pytorch.save_model(net, path, input_example=x, signature=mlflow.models.infer_signature(x, out))
    return x


def _keras_model(path: Path) -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")  # the test extras carry torch, not tensorflow
    keras = pytest.importorskip("keras")

    net = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2, activation="softmax")])
    x = np.random.RandomState(0).rand(8, 3).astype(np.float32)
    mlflow.keras.save_model(net, str(path), signature=mlflow.models.infer_signature(x, net.predict(x, verbose=0)))
    return x


@pytest.mark.parametrize("flavor", ["pytorch", "keras"])
def test_tensor_flavors_load_through_mlflow_and_answer_as_it_predicts(flavor: str, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    x = (_torch_model if flavor == "pytorch" else _keras_model)(model_dir)
    expected = np.asarray(mlflow.pyfunc.load_model(str(model_dir)).predict(x)).tolist()
    env = {"KERAS_BACKEND": "torch"}
    with Server(["--model", str(model_dir), "--name", "net"], tmp_path, env=env) as server:
        server.wait_ready(180)
        status, body = post_json(server.port, "/invocations", {"inputs": x.tolist()})
        assert status == 200, body
        assert np.asarray(body["predictions"]) == pytest.approx(np.asarray(expected), abs=1e-6)
        meta = json.loads(request(server.port, "GET", "/v2/models/net")[2])
        assert meta["platform"] == f"mlflow_{flavor}"
        assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3]}]


def test_serve_model_ref_stages_the_mlmodel_and_the_plan_serves_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.planning import make_plan
    from dockyard.serving import resolve_model

    project = tmp_path / "wine"
    project.mkdir()
    (project / "dockyard.yaml").write_text('name: wine\npython: "3.11"\n')
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _log_and_register(uri, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    staged = resolve_model(project, "models:/wine@champion").context_path
    assert staged == ".dockyard/model" and (project / staged / "artifacts" / "MLmodel").is_file()
    plan = make_plan(project, model_file=staged)
    assert plan.serve_model == "artifacts" and plan.model_files == (".dockyard/model",)
    assert "skops" in plan.requirements  # mlflow >= 3 saved it with skops; the project does not list it
    with pytest.raises(TrackingError) as info:
        resolve_model(project, "models:/wine@retired")
    assert uri in info.value.problem


def test_models_export_format_mlflow_cli(tmp_path: Path) -> None:
    import subprocess

    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = wine()
    model = LogisticRegression().fit(x.values, y)
    store, ref = _stored(tmp_path, {"model.joblib": lambda p: joblib.dump(model, p)})
    dest = tmp_path / "wine-mlflow"
    out = subprocess.run([sys.executable, "-m", "dockyard", "models", "export", ref, "--format", "mlflow",
                          "-o", str(dest), "--store", str(store.root)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "exported wine:1 as an MLflow model" in out.stdout
    got = mlflow.pyfunc.load_model(str(dest)).predict(x.values)
    assert np.asarray(got).tolist() == model.predict(x.values).tolist()
    bad = subprocess.run([sys.executable, "-m", "dockyard", "models", "export", ref, "--format", "onnx",
                          "--store", str(store.root)], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown format 'onnx'" in bad.stderr
