"""User predictor classes: type hints become the schema, batching is opt-in, errors stay 4xx/500 JSON."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import Server, post_json, request, write_predictor  # noqa: E402

TYPED = '''
class Typed:
    def setup(self):
        self.offset = 1

    def predict(self, n: int, xs: list[float], name: str, flag: bool = False,
                grid: list[list[float]] | None = None) -> dict:
        if n < 0:
            raise ValueError("secret internal detail")
        return {"n": n + self.offset, "total": sum(xs), "name": name.upper(), "flag": flag,
                "cells": sum(len(r) for r in grid or [])}
'''

BATCHED = '''
class Batched:
    batch = True
    example = {"x": [1.0, 2.0]}

    def setup(self):
        pass

    def predict(self, x: list[float]) -> list:
        return [{"sum": sum(v), "batch": len(x)} for v in x]
'''

# The same, but each batch takes 0.3 s: requests that arrive while one batch runs must leave
# together in the next, however slowly a loaded machine starts the client threads.
SLOW_BATCHED = BATCHED.replace("class Batched:", "import time\n\nclass Batched:").replace(
    "        return [", "        time.sleep(0.3)\n        return [")


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("typed")
    app = write_predictor(tmp, TYPED)
    with Server(["--predictor", "predict:Typed", "--app-dir", app], tmp) as server:
        yield server.wait_ready()


def test_typed_predictor_gets_converted_inputs(typed: Server) -> None:
    status, body = post_json(typed.port, "/predict", {"n": 2, "xs": [1, 2.5], "name": "ab",
                                                      "grid": [[1.0, 2.0], [3.0]]})
    assert status == 200
    assert body == {"output": {"n": 3, "total": 3.5, "name": "AB", "flag": False, "cells": 3}}


@pytest.mark.parametrize(("body", "needle"), [
    ({"n": "3", "xs": [], "name": "a"}, "input 'n': expected int, got str"),
    ({"n": 3, "xs": [1, "a"], "name": "a"}, "input 'xs'[1]: expected a number"),
    ({"n": 3, "xs": [1.0], "name": 5}, "input 'name': expected str"),
    ({"n": 3, "xs": [1.0]}, "missing input 'name'"),
    ({"n": 3, "xs": [1.0], "name": "a", "nme": 1}, "unknown input 'nme'"),
    ({"n": True, "xs": [1.0], "name": "a"}, "input 'n': expected int, got bool"),
    ({"n": 3, "xs": [1.0], "name": "a", "grid": [1.0]}, "input 'grid'[0]: expected a list"),
])
def test_wrong_typed_input_is_422_naming_the_field(typed: Server, body: dict[str, object], needle: str) -> None:
    status, reply = post_json(typed.port, "/predict", body)
    assert status == 422 and needle in reply["error"], reply


def test_predictor_exception_is_a_generic_500_and_logged(typed: Server) -> None:
    status, _, data = request(typed.port, "POST", "/predict", {"n": -1, "xs": [], "name": "a"})
    assert status == 500
    assert "secret" not in data.decode() and "Traceback" not in data.decode()
    assert "error" in json.loads(data)
    assert "secret internal detail" in typed.log and "Traceback" in typed.log
    assert post_json(typed.port, "/predict", {"n": 1, "xs": [], "name": "a"})[0] == 200


def test_typed_predictor_signature_is_in_openapi_and_v2_metadata(typed: Server) -> None:
    spec = json.loads(request(typed.port, "GET", "/openapi.json")[2])
    schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["n", "xs", "name"]
    assert schema["properties"]["xs"]["items"]["type"] == "number"
    assert schema["properties"]["grid"]["items"]["items"]["type"] == "number"
    meta = json.loads(request(typed.port, "GET", "/v2/models/typed")[2])
    assert {i["name"]: (i["datatype"], i["shape"]) for i in meta["inputs"]} == {
        "n": ("INT64", [1]), "xs": ("FP64", [-1]), "name": ("BYTES", [1]), "flag": ("BOOL", [1]),
        "grid": ("FP64", [-1, -1])}


def test_typed_predictor_over_v2_json_tensors(typed: Server) -> None:
    status, body = post_json(typed.port, "/v2/models/typed/infer", {"inputs": [
        {"name": "n", "shape": [1], "datatype": "INT64", "data": [4]},
        {"name": "xs", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]},
        {"name": "name", "shape": [1], "datatype": "BYTES", "data": ["zz"]}]})
    assert status == 200, body
    assert {o["name"] for o in body["outputs"]} == {"n", "total", "name", "flag", "cells"}
    named = {o["name"]: o["data"] for o in body["outputs"]}
    assert named["n"] == [5] and named["name"] == ["ZZ"]


def test_float_tensor_for_an_int_input_is_rejected(typed: Server) -> None:
    status, body = post_json(typed.port, "/v2/models/typed/infer", {"inputs": [
        {"name": "n", "shape": [1], "datatype": "FP32", "data": [4.5]},
        {"name": "xs", "shape": [1], "datatype": "FP32", "data": [1.0]},
        {"name": "name", "shape": [1], "datatype": "BYTES", "data": ["a"]}]})
    assert status == 400 and "input 'n': datatype FP32" in body["error"]


def test_batching_predictor_gets_concurrent_requests_in_one_call(tmp_path: Path) -> None:
    app = write_predictor(tmp_path, SLOW_BATCHED)
    # A batch size of 4 and a slow predict: requests queued behind a running batch leave together.
    args = ["--predictor", "predict:Batched", "--app-dir", app, "--max-batch-size", "4",
            "--max-batch-wait-ms", "1000"]
    with Server(args, tmp_path) as server:
        server.wait_ready()
        results: list[tuple[int, object]] = []

        def call(i: int) -> None:
            results.append(post_json(server.port, "/predict", {"x": [float(i), 1.0]}))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r[1]["output"]["sum"] for r in results) == [float(i) + 1.0 for i in range(8)]
        assert max(r[1]["output"]["batch"] for r in results) > 1
        metrics = request(server.port, "GET", "/metrics")[2].decode()
        assert 'dockyard_batch_size_sum{model="batched"} 8.0\n' in metrics  # warm-up is not counted


SHAPED = '''
class Shaped:
    batch = True
    input_shapes = {"pixels": (4,)}
    example = {"pixels": [0.0, 0.0, 0.0, 0.0]}

    def setup(self):
        pass

    def predict(self, pixels: list[float]) -> list:
        return [sum(p) for p in pixels]
'''


def test_declared_input_shapes_are_validated_and_advertised(tmp_path: Path) -> None:
    app = write_predictor(tmp_path, SHAPED)
    with Server(["--predictor", "predict:Shaped", "--app-dir", app], tmp_path) as server:
        server.wait_ready()
        assert post_json(server.port, "/predict", {"pixels": [1, 2, 3, 4]}) == (200, {"output": 10.0})
        status, body = post_json(server.port, "/predict", {"pixels": [1, 2, 3]})
        assert status == 422  # /predict answers schema violations with 422, V2 tensors with 400
        assert body["error"] == "input 'pixels': expected shape [4], got [3]"
        status, _, raw = request(server.port, "GET", "/v2/models/shaped")
        assert status == 200
        assert json.loads(raw)["inputs"][0]["shape"] == [4]
