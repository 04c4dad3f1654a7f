"""Zero-code serving of saved model files (ONNX, XGBoost, LightGBM, TorchScript, Keras) over real HTTP.

Each framework trains a small real model on the digits data in tmp_path, saves it the framework's
own way, and serves it with ``python -m dockyard.runtime --model FILE``. The server's answers must
equal what the framework itself predicts in this process for the same rows.

A missing framework skips its tests locally but FAILS under CI=true (same rule as the Docker
Engine in tests/conftest.py), so CI can never pass by skipping them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import Server, post_json, request

np = pytest.importorskip("numpy")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
READY_TIMEOUT_S = 180.0  # torch/keras imports take seconds on a busy 2-core runner
ROWS = 5  # rows per multi-row request
CONCURRENT = 12  # simultaneous single-row requests in the batching test


def need(module: str) -> ModuleType:
    """Import a framework, or skip (locally) / fail (CI) naming the missing package."""
    if IN_CI:
        return importlib.import_module(module)
    return pytest.importorskip(module)


def digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y  # k/16 is exact in FP32, FP64 and JSON


@dataclass(frozen=True)
class Case:
    """A saved model file and the framework's own in-process predictions for it."""

    path: Path
    input_name: str
    datatype: str  # V2 datatype of the input
    outputs: dict[str, tuple[str, list[int]]]  # output name -> (V2 datatype, shape)
    platform: str
    reference: Callable[[Any], dict[str, Any]]  # rows -> {output name: predictions}
    extra_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.path.stem


# ---------------------------------------------------------------------------------------------
# One builder per framework: train, save, and keep a reference predictor.


def build_onnx(tmp: Path) -> Case:
    ort = need("onnxruntime")
    skl2onnx = need("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    x, y = digits()
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    onx = skl2onnx.to_onnx(estimator, x[:1], options={"zipmap": False})  # plain tensors out
    path = tmp / "digits_onnx.onnx"
    path.write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def reference(rows: Any) -> dict[str, Any]:
        return dict(zip(names, session.run(names, {"X": rows})))

    assert (reference(x[:ROWS])["label"] == estimator.predict(x[:ROWS])).all()  # the export is faithful
    return Case(path, "X", "FP32", {"label": ("INT64", [-1]), "probabilities": ("FP32", [-1, 10])},
                "onnxruntime_onnx", reference)


def build_xgboost(tmp: Path, suffix: str) -> Case:
    xgb = need("xgboost")
    x, y = digits()
    booster = xgb.train({"objective": "multi:softprob", "num_class": 10, "max_depth": 3, "nthread": 1},
                        xgb.DMatrix(x, label=y), num_boost_round=8)
    path = tmp / f"digits_xgb{suffix.replace('.', '_')}{suffix}"
    booster.save_model(str(path))
    loaded = xgb.Booster(model_file=str(path))
    return Case(path, "input", "FP32", {"output": ("FP32", [-1, 10])}, "xgboost",
                lambda rows: {"output": loaded.predict(xgb.DMatrix(rows))})


def build_lightgbm(tmp: Path) -> Case:
    lgb = need("lightgbm")
    x, y = digits()
    booster = lgb.train({"objective": "multiclass", "num_class": 10, "num_leaves": 8, "verbose": -1,
                         "num_threads": 1}, lgb.Dataset(x, label=y), num_boost_round=8)
    path = tmp / "digits_lgb.txt"
    booster.save_model(str(path))
    loaded = lgb.Booster(model_file=str(path))
    return Case(path, "input", "FP64", {"output": ("FP64", [-1, 10])}, "lightgbm",
                lambda rows: {"output": loaded.predict(rows.astype(np.float64))})


def build_torchscript(tmp: Path) -> Case:
    torch = need("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    path = tmp / "digits_torch.pt"
    torch.jit.save(torch.jit.script(net.eval()), str(path))
    loaded = torch.jit.load(str(path))

    def reference(rows: Any) -> dict[str, Any]:
        with torch.inference_mode():
            return {"output": loaded(torch.from_numpy(rows)).numpy()}

    return Case(path, "input", "FP32", {"output": ("FP32", [-1, 10])}, "pytorch_torchscript", reference)


def keras_backend() -> str:
    """The backend this process uses to build the reference model (any installed one will do)."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen
    for backend in ("jax", "torch", "tensorflow"):
        if importlib.util.find_spec(backend) is not None:
            return backend
    if IN_CI:
        pytest.fail("CI needs a Keras backend: install jax, torch or tensorflow")
    pytest.skip("no Keras backend installed (jax, torch or tensorflow)")


def import_keras(home: Path) -> ModuleType:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_BACKEND", keras_backend())
        mp.setenv("KERAS_HOME", str(home))  # keep keras.json out of the real home directory
        keras = need("keras")  # the backend is fixed at first import; the env is restored after
    keras.utils.set_random_seed(0)
    return keras


def build_keras(tmp: Path) -> Case:
    home = tmp / "keras-home"
    keras = import_keras(home)
    net = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                            keras.layers.Dense(10, activation="softmax")])
    path = tmp / "digits_keras.keras"
    net.save(str(path))
    loaded = keras.models.load_model(str(path))
    # The server gets no KERAS_BACKEND: it must find an installed backend by itself.
    return Case(path, "input", "FP32", {"output": ("FP32", [-1, 10])}, "keras",
                lambda rows: {"output": np.asarray(loaded.predict_on_batch(rows))},
                env=(("KERAS_HOME", str(home)),))


BUILDERS: dict[str, Callable[[Path], Case]] = {
    "onnx": build_onnx,
    "xgboost_ubj": lambda tmp: build_xgboost(tmp, ".ubj"),
    "xgboost_json": lambda tmp: build_xgboost(tmp, ".json"),
    "lightgbm": build_lightgbm,
    "torchscript": build_torchscript,
    "keras": build_keras,
}


@dataclass(frozen=True)
class Served:
    server: Server
    case: Case
    rows: Any  # float32 digits rows


@pytest.fixture(scope="module", params=list(BUILDERS))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp(request.param)
    case = BUILDERS[request.param](tmp)
    # A batch waits up to 100 ms to fill so that the concurrency test reliably sees batches.
    args = ["--model", str(case.path), "--max-batch-wait-ms", "100", *case.extra_args]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("KERAS_BACKEND", raising=False)
        server = Server(args, tmp, env=dict(case.env))
    with server:
        yield Served(server.wait_ready(READY_TIMEOUT_S), case, digits()[0])


def v2_tensor(name: str, datatype: str, rows: Any) -> dict[str, Any]:
    return {"name": name, "shape": list(rows.shape), "datatype": datatype, "data": rows.reshape(-1).tolist()}


def assert_same(got: Any, want: Any, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind in "iub":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:  # a batch of rows may sum in another order than one row: allow float rounding only
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


def predict_outputs(case: Case, body: dict[str, Any]) -> dict[str, Any]:
    """/predict answers {"output": v} for one output and {"outputs": {name: v}} for several."""
    if len(case.outputs) == 1:
        return {next(iter(case.outputs)): body["output"]}
    return body["outputs"]


# ---------------------------------------------------------------------------------------------
# The HTTP contract, for every framework.


def test_v2_metadata_exposes_the_tensor_signature(served: Served) -> None:
    case = served.case
    status, _, data = request(served.server.port, "GET", f"/v2/models/{case.name}")
    meta = json.loads(data)
    assert status == 200, meta
    assert meta["name"] == case.name and meta["platform"] == case.platform
    assert meta["inputs"] == [{"name": case.input_name, "datatype": case.datatype, "shape": [-1, 64]}]
    assert {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]} == case.outputs


def test_v2_json_infer_equals_the_frameworks_own_predictions(served: Served) -> None:
    case, rows = served.case, served.rows[10:10 + ROWS]
    status, body = post_json(served.server.port, f"/v2/models/{case.name}/infer",
                             {"id": "zc-1", "inputs": [v2_tensor(case.input_name, case.datatype, rows)]})
    assert status == 200, body
    assert body["id"] == "zc-1" and body["model_name"] == case.name
    want = case.reference(rows)
    assert {o["name"] for o in body["outputs"]} == set(want)
    for out in body["outputs"]:
        assert out["datatype"] == case.outputs[out["name"]][0]
        assert out["shape"] == list(want[out["name"]].shape)
        assert_same(np.asarray(out["data"]).reshape(out["shape"]), want[out["name"]], out["name"])


def test_predict_rows_and_single_row_equal_the_frameworks_own_predictions(served: Served) -> None:
    case, rows = served.case, served.rows[20:20 + ROWS]
    status, body = post_json(served.server.port, "/predict", {case.input_name: rows.tolist()})
    assert status == 200, body
    want = case.reference(rows)
    for name, value in predict_outputs(case, body).items():
        assert_same(value, want[name], name)
    status, body = post_json(served.server.port, "/predict", {case.input_name: rows[0].tolist()})
    assert status == 200, body
    for name, value in predict_outputs(case, body).items():  # one row in, one row out (no batch dim)
        assert_same(value, want[name][0], name)


V2_NUMPY = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "INT32": "<i4"}


def test_v2_binary_tensors_equal_the_frameworks_own_predictions(served: Served) -> None:
    case, rows = served.case, served.rows[30:30 + ROWS]
    raw = rows.astype(V2_NUMPY[case.datatype]).tobytes()
    header = json.dumps({"inputs": [{"name": case.input_name, "shape": list(rows.shape), "datatype": case.datatype,
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in case.outputs]})
    status, headers, data = request(served.server.port, "POST", f"/v2/models/{case.name}/infer",
                                    header.encode() + raw,
                                    headers={"Inference-Header-Content-Length": str(len(header)),
                                             "Content-Type": "application/octet-stream"})
    assert status == 200, data[:500]
    n = int(headers["inference-header-content-length"])
    offset, want = n, case.reference(rows)
    for out in json.loads(data[:n])["outputs"]:  # binary outputs follow the header in order
        size = out["parameters"]["binary_data_size"]
        got = np.frombuffer(data[offset:offset + size], dtype=V2_NUMPY[out["datatype"]]).reshape(out["shape"])
        assert_same(got, want[out["name"]], out["name"])
        offset += size
    assert offset == len(data)


def batch_size_counts(metrics: str, model: str) -> tuple[int, int]:
    """(predict calls with one request, all predict calls) from the batch-size histogram."""
    def value(pattern: str) -> int:
        match = re.search(pattern, metrics)
        assert match, f"{pattern!r} not in /metrics:\n{metrics}"
        return int(float(match.group(1)))

    label = re.escape(f'model="{model}"')
    ones = value(r"dockyard_batch_size_bucket\{" + label + r',le="1"\} (\S+)')
    return ones, value(r"dockyard_batch_size_count\{" + label + r"\} (\S+)")


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(served: Served) -> None:
    case, port = served.case, served.server.port
    rows = served.rows[100:100 + CONCURRENT]
    before = batch_size_counts(request(port, "GET", "/metrics")[2].decode(), case.name)
    answers: dict[int, tuple[int, Any]] = {}
    start = threading.Barrier(CONCURRENT)

    def one(i: int) -> None:
        start.wait()
        answers[i] = post_json(port, "/predict", {case.input_name: rows[i].tolist()}, timeout=60)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CONCURRENT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    want = case.reference(rows)
    for i in range(CONCURRENT):  # a batched request must get back its own row, not a neighbour's
        status, body = answers[i]
        assert status == 200, body
        for name, value in predict_outputs(case, body).items():
            assert_same(value, want[name][i], f"request {i} {name}")
    ones, calls = batch_size_counts(request(port, "GET", "/metrics")[2].decode(), case.name)
    new_calls, new_ones = calls - before[1], ones - before[0]
    assert 0 < new_calls < CONCURRENT, f"{CONCURRENT} requests took {new_calls} predict calls"
    assert new_ones < new_calls, "no predict call took more than one request"


def test_wrong_shape_is_4xx_json_error_naming_the_input(served: Served) -> None:
    case, port = served.case, served.server.port
    short = served.rows[:2, :63]
    status, body = post_json(port, f"/v2/models/{case.name}/infer",
                             {"inputs": [v2_tensor(case.input_name, case.datatype, short)]})
    assert status == 400 and f"{case.input_name!r}" in body["error"] and "shape" in body["error"], body
    status, body = post_json(port, "/predict", {case.input_name: short.tolist()})
    assert status == 422 and f"{case.input_name!r}" in body["error"] and "shape" in body["error"], body
    status, body = post_json(port, "/predict", {case.input_name: served.rows[0].tolist()})
    assert status == 200, body  # still serving


# ---------------------------------------------------------------------------------------------
# Loader edge cases.


def onnx_fixed_batch_of_one(path: Path) -> tuple[Any, Any]:
    """A linear model exported with batch size 1 (torch.onnx.export's default), built by hand."""
    onnx = need("onnx")
    need("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = rng.normal(size=(64, 10)).astype(np.float32)
    bias = rng.normal(size=(10,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "fixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime of the last years
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return weights, bias


def test_onnx_model_with_a_fixed_batch_of_one_serves_many_rows(tmp_path: Path) -> None:
    weights, bias = onnx_fixed_batch_of_one(tmp_path / "fixed.onnx")
    rows = digits()[0][:ROWS]
    with Server(["--model", str(tmp_path / "fixed.onnx")], tmp_path) as server:
        server.wait_ready(READY_TIMEOUT_S)
        meta = json.loads(request(server.port, "GET", "/v2/models/fixed")[2])
        assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}]
        status, body = post_json(server.port, "/v2/models/fixed/infer",
                                 {"inputs": [v2_tensor("x", "FP32", rows)]})
    assert status == 200, body
    assert body["outputs"][0]["shape"] == [ROWS, 10]
    assert_same(np.asarray(body["outputs"][0]["data"]).reshape(ROWS, 10), rows @ weights + bias, "y")


def conv_torchscript(path: Path) -> Any:
    """A net whose first layer is a Conv2d: its only 2-D weight (the head) says nothing of the input."""
    torch = need("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 10))
    torch.jit.save(torch.jit.script(net.eval()), str(path))
    return net


def test_torchscript_without_a_first_linear_layer_asks_for_input_shape(tmp_path: Path) -> None:
    conv_torchscript(tmp_path / "conv.pt")
    with Server(["--model", str(tmp_path / "conv.pt")], tmp_path) as server:
        code = server.proc.wait(READY_TIMEOUT_S)
        assert code != 0
        assert "does not record its input shape" in server.log and "--input-shape" in server.log


def test_torchscript_with_input_shape_serves_image_rows(tmp_path: Path) -> None:
    torch = need("torch")
    net = conv_torchscript(tmp_path / "conv.pt")
    images = digits()[0][:ROWS].reshape(ROWS, 1, 8, 8)
    with Server(["--model", str(tmp_path / "conv.pt"), "--input-shape", "1,8,8"], tmp_path) as server:
        server.wait_ready(READY_TIMEOUT_S)
        meta = json.loads(request(server.port, "GET", "/v2/models/conv")[2])
        assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
        status, body = post_json(server.port, "/predict", {"input": images.tolist()})
    assert status == 200, body
    with torch.inference_mode():
        want = net(torch.from_numpy(images)).numpy()
    assert_same(body["output"], want, "output")


def test_json_file_that_is_not_an_xgboost_model_fails_setup_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"layers": [1, 2]}))
    with Server(["--model", str(tmp_path / "config.json")], tmp_path) as server:
        assert server.proc.wait(60) != 0
        assert "config.json is JSON but not an XGBoost model" in server.log


def test_keras_model_with_two_typed_inputs_and_two_outputs_serves_them_by_name(tmp_path: Path) -> None:
    keras = import_keras(tmp_path / "keras-home")
    pixels = keras.Input((64,), name="pixels")
    flags = keras.Input((2,), name="flags", dtype="int32")
    hidden = keras.layers.Concatenate()([pixels, keras.ops.cast(flags, "float32")])
    net = keras.Model([pixels, flags], [keras.layers.Dense(1, name="score")(hidden),
                                        keras.layers.Dense(10, activation="softmax", name="klass")(hidden)])
    net.save(str(tmp_path / "two.keras"))
    rows, ints = digits()[0][:ROWS], np.arange(ROWS * 2, dtype=np.int32).reshape(ROWS, 2)
    score, klass = keras.models.load_model(str(tmp_path / "two.keras")).predict_on_batch([rows, ints])
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("KERAS_BACKEND", raising=False)
        server = Server(["--model", str(tmp_path / "two.keras")], tmp_path,
                        env={"KERAS_HOME": str(tmp_path / "keras-home")})
    with server:
        server.wait_ready(READY_TIMEOUT_S)
        meta = json.loads(request(server.port, "GET", "/v2/models/two")[2])
        status, body = post_json(server.port, "/predict", {"pixels": rows.tolist(), "flags": ints.tolist()})
        v2_status, v2 = post_json(server.port, "/v2/models/two/infer", {"inputs": [
            v2_tensor("pixels", "FP32", rows), v2_tensor("flags", "INT32", ints)]})
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]},
                              {"name": "flags", "datatype": "INT32", "shape": [-1, 2]}]
    assert {o["name"]: o["shape"] for o in meta["outputs"]} == {"score": [-1, 1], "klass": [-1, 10]}
    assert status == 200, body
    assert_same(body["outputs"]["score"], score, "score")
    assert_same(body["outputs"]["klass"], klass, "klass")
    assert v2_status == 200, v2
    got = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in v2["outputs"]}
    assert_same(got["score"], score, "score")
    assert_same(got["klass"], klass, "klass")


TWO_HEADS = '''
import torch


class TwoHeads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.body(x)
        return logits, torch.softmax(logits, dim=1)
'''


def test_torchscript_returning_a_tuple_serves_each_output(tmp_path: Path) -> None:
    torch = need("torch")
    (tmp_path / "two_heads.py").write_text(TWO_HEADS)  # torch.jit.script reads the class's source file
    spec = importlib.util.spec_from_file_location("two_heads", tmp_path / "two_heads.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = module.TwoHeads().eval()
    torch.jit.save(torch.jit.script(net), str(tmp_path / "heads.pt"))
    rows = digits()[0][:ROWS]
    with torch.inference_mode():
        logits, probs = (t.numpy() for t in net(torch.from_numpy(rows)))
    with Server(["--model", str(tmp_path / "heads.pt")], tmp_path) as server:
        server.wait_ready(READY_TIMEOUT_S)
        meta = json.loads(request(server.port, "GET", "/v2/models/heads")[2])
        status, body = post_json(server.port, "/predict", {"input": rows.tolist()})
    assert {o["name"]: o["shape"] for o in meta["outputs"]} == {"output_0": [-1, 10], "output_1": [-1, 10]}
    assert status == 200, body
    assert_same(body["outputs"]["output_0"], logits, "output_0")
    assert_same(body["outputs"]["output_1"], probs, "output_1")
