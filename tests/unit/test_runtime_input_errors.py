"""Every input error is a 4xx naming the field, and JSON behaves the same with or without orjson.

The same corpus goes to two servers of the same predictor: one with orjson importable, one with it
blocked. Their answers must be byte-identical (statuses, error messages, NaN in outputs)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import SRC, Server, request, write_predictor  # noqa: E402

pytest.importorskip("orjson")

KINDS = '''
from typing import Any

import numpy as np


class Opaque:
    pass


class Kinds:
    def predict(self, text: str = "", anything: Any = None, rows: list[list[float]] | None = None,
                arr: np.ndarray | None = None, flag: bool = False, out: str = "") -> Any:
        if out == "nan":
            return {"v": float("nan"), "w": [float("inf"), -float("inf"), 1.5], "a": np.array([np.nan, 2.0])}
        if out == "object":
            return Opaque()
        return {"text": text, "anything": anything, "rows": rows, "flag": flag,
                "arr": None if arr is None else arr.shape}
'''

V2 = "/v2/models/kinds/infer"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    tmp = tmp_path_factory.mktemp("kinds")
    app = write_predictor(tmp, KINDS)
    blocked = tmp / "no-orjson"
    blocked.mkdir()
    (blocked / "orjson.py").write_text('raise ImportError("orjson blocked for this test")\n')
    args = ["--predictor", "predict:Kinds", "--app-dir", app]
    with Server(args, tmp) as fast, Server(args, tmp, pythonpath=f"{blocked}:{SRC}") as plain:
        both = {"orjson": fast.wait_ready(), "json": plain.wait_ready()}
        for backend, server in both.items():  # each really runs the backend it is named after
            assert [e["json"] for e in server.events() if e["event"] == "ready"] == [backend]
        yield both


def _ask(servers: dict[str, Server], method: str, path: str, body: bytes,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """The answer, after checking both servers gave exactly the same one."""
    answers = {name: request(s.port, method, path, body, headers) for name, s in servers.items()}
    (status, _, data), (status2, _, data2) = answers.values()
    assert (status, data) == (status2, data2), answers
    return status, data


def _deep(depth: int) -> bytes:
    return b'{"anything": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(("body", "needle"), [
    (_deep(70), "nested more than 64 levels"),
    (_deep(100_000), "nested more than 64 levels"),  # the stdlib parser alone would hit RecursionError
    (b'{"rows": [[1.0, NaN]]}', "NaN at rows[0][1]"),
    (b'{"rows": [[Infinity]]}', "Infinity at rows[0][0]"),
    (b'{"anything": {"deep": [-Infinity]}}', "-Infinity at anything.deep[0]"),
    (b'{"rows": [[1e400]]}', "at rows[0][0]"),
    (b'{"text": "caf\xe9"}', "not UTF-8"),
    (b'{"text": ', "not valid JSON"),
    (b'{"rows": [[1.0]], "rows2": 1}', "unknown input 'rows2'"),
])
def test_bad_predict_bodies_are_4xx_naming_the_problem(servers: dict[str, Server], body: bytes, needle: str) -> None:
    status, data = _ask(servers, "POST", "/predict", body)
    assert 400 <= status < 500 and needle in json.loads(data)["error"], data


def test_deep_but_allowed_nesting_and_big_integers_are_accepted(servers: dict[str, Server]) -> None:
    status, data = _ask(servers, "POST", "/predict", _deep(60))
    assert status == 200
    status, data = _ask(servers, "POST", "/predict", b'{"anything": 123456789012345678901234567890}')
    assert status == 200 and json.loads(data)["output"]["anything"] == 123456789012345678901234567890


def _tensor(name: str, datatype: str, shape: list[int], data: Any = None, size: int | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
    if size is None:
        t["data"] = data
    else:
        t["parameters"] = {"binary_data_size": size}
    return t


def _binary(tensors: list[dict[str, Any]], blob: bytes, header_len: str | None = None) -> tuple[bytes, dict[str, str]]:
    head = json.dumps({"inputs": tensors}).encode()
    return head + blob, {"Inference-Header-Content-Length": header_len or str(len(head)),
                         "Content-Type": "application/octet-stream"}


def _bytes_elements(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(i)) + i for i in items)


def test_bytes_sent_to_an_any_input_arrive_as_text(servers: dict[str, Server]) -> None:
    body = json.dumps({"inputs": [_tensor("anything", "BYTES", [1], ["hello"])]}).encode()
    status, data = _ask(servers, "POST", V2, body)
    assert status == 200, data
    assert {o["name"]: o["data"] for o in json.loads(data)["outputs"]}["anything"] == ["hello"]
    blob = _bytes_elements(b"ab", b"cd")
    status, data = _ask(servers, "POST", V2, *_binary([_tensor("anything", "BYTES", [2], size=len(blob))], blob))
    assert status == 200, data


@pytest.mark.parametrize(("case", "needle"), [
    ("dims65", "65 dimensions"),
    ("nan_v2", "NaN at inputs[0].data[1]"),
    ("bytes_not_utf8", "input 'text': BYTES data is not UTF-8"),
    ("header_plus", "Inference-Header-Content-Length '+"),
    ("header_underscore", "Inference-Header-Content-Length '1_"),
    ("header_huge", "Inference-Header-Content-Length '11111"),  # int() refuses over 4300 digits
    ("trailing", "3 bytes of binary data follow the last tensor"),
    ("truncated_length", "binary BYTES data ends before element 1"),
    ("truncated_data", "BYTES element 0 says 9 bytes"),
    ("bool_2", "binary BOOL data must be bytes 0 or 1"),
    ("negative_size", "binary_data_size -1 is not a byte count"),
])
def test_bad_v2_requests_are_400_naming_the_problem(servers: dict[str, Server], case: str, needle: str) -> None:
    headers = None
    if case == "dims65":
        body = json.dumps({"inputs": [_tensor("arr", "FP64", [1] * 65, [1.0])]}).encode()
    elif case == "nan_v2":
        body = b'{"inputs": [{"name": "arr", "datatype": "FP64", "shape": [2], "data": [1.0, NaN]}]}'
    elif case == "bytes_not_utf8":
        blob = _bytes_elements(b"\xff\xfe")
        body, headers = _binary([_tensor("text", "BYTES", [1], size=len(blob))], blob)
    elif case in ("header_plus", "header_underscore", "header_huge"):
        blob = struct.pack("<d", 1.0)
        body, headers = _binary([_tensor("arr", "FP64", [1], size=8)], blob)
        n = headers["Inference-Header-Content-Length"]
        headers["Inference-Header-Content-Length"] = {"header_plus": "+" + n, "header_huge": "1" * 5000}.get(
            case, n[0] + "_" + n[1:])
    elif case == "trailing":
        blob = struct.pack("<d", 1.0) + b"xyz"
        body, headers = _binary([_tensor("arr", "FP64", [1], size=8)], blob)
    elif case == "truncated_length":
        blob = _bytes_elements(b"ab") + b"\x01\x00"
        body, headers = _binary([_tensor("text", "BYTES", [2], size=len(blob))], blob)
    elif case == "truncated_data":
        blob = struct.pack("<I", 9) + b"abc"
        body, headers = _binary([_tensor("text", "BYTES", [1], size=len(blob))], blob)
    elif case == "bool_2":
        body, headers = _binary([_tensor("flag", "BOOL", [1], size=1)], b"\x02")
    else:
        body, headers = _binary([_tensor("arr", "FP64", [1], size=-1)], b"")
    status, data = _ask(servers, "POST", V2, body, headers)
    assert status == 400 and needle in json.loads(data)["error"], data


def test_nan_and_infinity_in_an_output_are_null_with_either_json_library(servers: dict[str, Server]) -> None:
    status, data = _ask(servers, "POST", "/predict", b'{"out": "nan"}')
    assert status == 200
    assert json.loads(data) == {"output": {"v": None, "w": [None, None, 1.5], "a": [None, 2.0]}}
    status, data = _ask(servers, "POST", V2, json.dumps({"inputs": [_tensor("out", "BYTES", [1], ["nan"])]}).encode())
    assert status == 200, data  # V2 JSON outputs follow the same rule
    outputs = {o["name"]: o["data"] for o in json.loads(data)["outputs"]}
    assert outputs["v"] == [None] and outputs["a"] == [None, 2.0]


def test_an_object_in_an_output_is_a_500_that_leaks_no_heap_address(servers: dict[str, Server]) -> None:
    for path, body in (("/predict", b'{"out": "object"}'),
                       (V2, json.dumps({"inputs": [_tensor("out", "BYTES", [1], ["object"])]}).encode())):
        status, data = _ask(servers, "POST", path, body)
        assert status == 500 and b"0x" not in data and b"Opaque" not in data, data
    for server in servers.values():
        logged = [e for e in server.events() if e["event"] == "output_failed"]
        assert logged and all("Opaque" in e["error"] and "0x" not in e["error"] for e in logged)
