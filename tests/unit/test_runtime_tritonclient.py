"""A standard KServe V2 client (tritonclient[http], default binary tensors) against the runtime."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import Server, make_digits_model  # noqa: E402

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, list[float]]]:
    tmp = tmp_path_factory.mktemp("triton")
    row = make_digits_model(tmp / "digits.joblib")
    with Server(["--model", str(tmp / "digits.joblib")], tmp) as server:
        server.wait_ready()
        yield httpclient.InferenceServerClient(f"127.0.0.1:{server.port}"), row


def test_tritonclient_sees_server_and_model_live_and_ready(client: tuple[object, list[float]]) -> None:
    c, _ = client
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("digits") and c.is_model_ready("digits", "1")
    assert not c.is_model_ready("digits", "2")


def test_tritonclient_reads_model_metadata(client: tuple[object, list[float]]) -> None:
    c, _ = client
    meta = c.get_model_metadata("digits")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 64]}]
    assert meta["outputs"][0]["name"] == "output"


def test_tritonclient_infer_with_binary_tensors(client: tuple[object, list[float]]) -> None:
    c, row = client
    x = np.asarray([row, row], dtype=np.float32)
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)  # binary_data=True is the client's default
    result = c.infer("digits", [inp], request_id="abc")
    assert result.get_response()["id"] == "abc"
    assert result.as_numpy("output").tolist() == [0, 0]


def test_tritonclient_infer_with_json_tensors_and_requested_output(client: tuple[object, list[float]]) -> None:
    c, row = client
    x = np.asarray([row], dtype=np.float64)
    inp = httpclient.InferInput("input", [1, 64], "FP64")
    inp.set_data_from_numpy(x, binary_data=False)
    out = httpclient.InferRequestedOutput("output", binary_data=False)
    assert c.infer("digits", [inp], outputs=[out]).as_numpy("output").tolist() == [0]


def test_tritonclient_gets_an_error_for_a_wrong_shape(client: tuple[object, list[float]]) -> None:
    c, _ = client
    inp = httpclient.InferInput("input", [1, 10], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 10), dtype=np.float32))
    with pytest.raises(InferenceServerException, match="shape"):
        c.infer("digits", [inp])
    assert c.is_server_ready()


def test_tritonclient_infer_with_a_large_batch_arriving_in_many_chunks(client: tuple[object, list[float]]) -> None:
    c, row = client
    x = np.tile(np.asarray(row, dtype=np.float32), (5000, 1))  # 1.28 MB of binary tensor data
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    assert (c.infer("digits", [inp]).as_numpy("output") == 0).all()
