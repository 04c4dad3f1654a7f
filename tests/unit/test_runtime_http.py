"""The runtime's HTTP API against a real server process serving the digits model (zero-code)."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import Server, make_digits_model, post_json, request  # noqa: E402

from dockyard.runtime.http import decode_chunked  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[float]]]:
    tmp = tmp_path_factory.mktemp("digits")
    row = make_digits_model(tmp / "digits.joblib")
    server = Server(["--model", str(tmp / "digits.joblib"), "--max-body-bytes", "100000"], tmp)
    with server:
        yield server.wait_ready(), row


def _raw(port: int, payload: bytes, expect_responses: int) -> bytes:
    """Send raw bytes on one connection and read until that many responses have arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"HTTP/1.1 ") < expect_responses or not _complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _complete(data: bytes) -> bool:
    head, _, body = data.rpartition(b"\r\n\r\n")
    length = int(head.lower().rsplit(b"content-length:", 1)[1].split(b"\r\n")[0])
    return len(body) >= length


def test_predict_one_row_returns_the_class(served: tuple[Server, list[float]]) -> None:
    server, row = served
    assert post_json(server.port, "/predict", {"input": row}) == (200, {"output": 0})


def test_predict_several_rows_returns_one_class_per_row(served: tuple[Server, list[float]]) -> None:
    server, row = served
    status, body = post_json(server.port, "/predict", {"input": [row, row, row]})
    assert (status, body) == (200, {"output": [0, 0, 0]})


def test_health_and_readiness_answer_200_when_ready(served: tuple[Server, list[float]]) -> None:
    server, _ = served
    for path in ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/v2/models/digits/ready"):
        assert request(server.port, "GET", path)[0] == 200, path


def test_pipelined_keep_alive_requests_are_answered_in_order(served: tuple[Server, list[float]]) -> None:
    server, row = served
    one = json.dumps({"input": row}).encode()
    two = json.dumps({"input": [row, row]}).encode()
    payload = b"".join(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(b), b) for b in (one, two, one))
    data = _raw(server.port, payload, 3)
    bodies = [part.split(b"\r\n\r\n", 1)[1][:40] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert [b.split(b"}")[0] + b"}" for b in bodies] == [b'{"output":0}', b'{"output":[0,0]}', b'{"output":0}']


def test_expect_100_continue_gets_an_interim_response(served: tuple[Server, list[float]]) -> None:
    server, row = served
    body = json.dumps({"input": row}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert b'{"output":0}' in sock.recv(1000)


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"{not json", 400, "not valid JSON"),
    ({"input": ["a"] * 64}, 422, "'input'"),
    ({}, 422, "missing input 'input'"),
    ({"input": [0.0] * 64, "extra": 1}, 422, "unknown input 'extra'"),
    ({"input": [0.0] * 63}, 422, "shape"),
    ([1, 2], 422, "JSON object"),
])
def test_bad_predict_input_is_4xx_json_naming_the_problem(
        served: tuple[Server, list[float]], body: object, status: int, needle: str) -> None:
    server, row = served
    got, _, data = request(server.port, "POST", "/predict", body)
    assert got == status
    assert needle in json.loads(data)["error"]
    assert post_json(server.port, "/predict", {"input": row}) == (200, {"output": 0})  # still serving


def test_body_over_the_limit_is_413(served: tuple[Server, list[float]]) -> None:
    server, row = served
    status, _, data = request(server.port, "POST", "/predict", b"x" * 200_000)
    assert status == 413 and "--max-body-bytes" in json.loads(data)["error"]
    assert post_json(server.port, "/predict", {"input": row})[0] == 200


def test_unknown_model_name_is_404_with_json_error(served: tuple[Server, list[float]]) -> None:
    server, _ = served
    status, _, data = request(server.port, "POST", "/v2/models/nope/infer", {"inputs": []})
    assert status == 404 and "unknown model 'nope'" in json.loads(data)["error"]
    status, _, data = request(server.port, "GET", "/v2/models/digits/versions/7")
    assert status == 404 and "version" in json.loads(data)["error"]


def test_unknown_route_and_wrong_method_are_json_errors(served: tuple[Server, list[float]]) -> None:
    server, _ = served
    assert request(server.port, "GET", "/nope")[0] == 404
    status, headers, data = request(server.port, "GET", "/predict")
    assert status == 405 and headers["allow"] == "POST" and "POST" in json.loads(data)["error"]


def test_v2_metadata_describes_the_tensor_signature(served: tuple[Server, list[float]]) -> None:
    server, _ = served
    status, _, data = request(server.port, "GET", "/v2/models/digits/versions/1")
    meta = json.loads(data)
    assert status == 200 and meta["name"] == "digits" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 64]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "INT64", "shape": [-1]}]
    assert json.loads(request(server.port, "GET", "/v2")[2])["extensions"] == ["binary_tensor_data"]


def test_v2_json_infer_echoes_the_id(served: tuple[Server, list[float]]) -> None:
    server, row = served
    status, body = post_json(server.port, "/v2/models/digits/infer", {
        "id": "req-7", "inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32", "data": row + row}]})
    assert status == 200 and body["id"] == "req-7"
    assert body["outputs"] == [{"name": "output", "datatype": "INT64", "shape": [2], "data": [0, 0]}]


def test_v2_binary_tensors_in_and_out(served: tuple[Server, list[float]]) -> None:
    server, row = served
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 256}}],
                         "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}).encode()
    body = header + struct.pack("<64f", *row)
    status, headers, data = request(server.port, "POST", "/v2/models/digits/infer", body,
                                    headers={"Inference-Header-Content-Length": str(len(header)),
                                             "Content-Type": "application/octet-stream"})
    assert status == 200
    n = int(headers["inference-header-content-length"])
    out = json.loads(data[:n])["outputs"][0]
    assert out["parameters"]["binary_data_size"] == 8
    assert struct.unpack("<q", data[n:]) == (0,)


@pytest.mark.parametrize(("tensor", "needle"), [
    ({"name": "input", "shape": [1, 63], "datatype": "FP32", "data": [0.0] * 63}, "shape"),
    ({"name": "input", "shape": [1, 64], "datatype": "BYTES", "data": ["a"] * 64}, "datatype BYTES"),
    ({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 10}, "holds 64 values"),
    ({"name": "other", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}, "'other'"),
])
def test_bad_v2_tensor_is_400_json_naming_the_problem(
        served: tuple[Server, list[float]], tensor: dict[str, object], needle: str) -> None:
    server, _ = served
    status, body = post_json(server.port, "/v2/models/digits/infer", {"inputs": [tensor]})
    assert status == 400 and needle in body["error"]


def test_metrics_count_requests_batches_and_queue(served: tuple[Server, list[float]]) -> None:
    server, row = served
    post_json(server.port, "/predict", {"input": row})
    text = request(server.port, "GET", "/metrics")[2].decode()
    assert 'dockyard_requests_total{route="/predict",status="200"}' in text
    assert 'dockyard_request_duration_seconds_bucket{route="/predict",le="+Inf"}' in text
    assert 'dockyard_batch_size_count{model="digits"}' in text
    assert "dockyard_in_flight_requests 0" in text and 'dockyard_queue_depth{model="digits"} 0' in text


def test_openapi_describes_predict_from_the_signature(served: tuple[Server, list[float]]) -> None:
    server, _ = served
    spec = json.loads(request(server.port, "GET", "/openapi.json")[2])
    schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["input"]
    assert schema["properties"]["input"]["items"] == {"type": "number"}
    assert "/v2/models/digits/infer" in spec["paths"]


def _chunked(body: bytes, size: int) -> bytes:
    parts = [b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\nX-Trailer: yes\r\n\r\n"


def test_chunked_request_bodies_are_decoded_from_a_standard_client(served: tuple[Server, list[float]]) -> None:
    server, row = served
    body = json.dumps({"input": row}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    # http.client sends an iterable body chunk by chunk with Transfer-Encoding: chunked.
    conn.request("POST", "/predict", body=iter([body[:10], body[10:100], body[100:]]),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (200, {"output": 0})
    conn.close()


def test_chunked_body_arriving_in_pieces_then_a_pipelined_request(served: tuple[Server, list[float]]) -> None:
    server, row = served
    body = json.dumps({"input": row}).encode()
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    follow = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    wire = head + _chunked(body, 7) + follow
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for i in range(0, len(wire), 50):  # the server sees every partial state of the framing
            sock.sendall(wire[i:i + 50])
            time.sleep(0.002)
        data = b""
        while data.count(b'{"output":0}') < 2:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 2


@pytest.mark.parametrize(("headers", "body", "status", "needle"), [
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n", 400, "both Transfer-Encoding"),
    (b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n", 501, "not supported"),
    (b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n", 400, "not a hexadecimal"),
    (b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n0\r\n\r\n", 400, "not a hexadecimal"),
    (b"Transfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n", 400, "not followed by CRLF"),
    (b"Transfer-Encoding: chunked\r\n", b"30000\r\n", 413, "--max-body-bytes"),
])
def test_bad_chunked_framing_is_answered_and_the_connection_closed(
        served: tuple[Server, list[float]], headers: bytes, body: bytes, status: int, needle: str) -> None:
    server, row = served
    data = _raw(server.port, b"POST /predict HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body, 1)
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:80]
    assert b"connection: close" in data.lower()
    assert needle in json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]
    assert post_json(server.port, "/predict", {"input": row}) == (200, {"output": 0})  # still serving


@pytest.mark.parametrize(("wire", "expected"), [
    (b"5\r\nhello\r\n0\r\n\r\nNEXT", (b"hello", 15)),
    (b"5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nA: b\r\nC: d\r\n\r\n", (b"hello world", 45)),
    (b"0\r\n\r\n", (b"", 5)),
    (b"5\r\nhel", None),
    (b"5\r\nhello\r\n0\r\n", None),
    (b"5\r\nhello\r\n0\r\nTrailer: x\r\n", None),
    (b"", None),
])
def test_decode_chunked_table(wire: bytes, expected: tuple[bytes, int] | None) -> None:
    assert decode_chunked(wire, 0, 100) == expected


def test_decode_chunked_refuses_what_it_cannot_trust() -> None:
    with pytest.raises(OverflowError):
        decode_chunked(b"65\r\n", 0, 100)  # 0x65 = 101 bytes declared, limit 100
    for bad in (b"-5\r\n", b"+5\r\n", b"5_0\r\n", b"\r\n", b"1" * 17 + b"\r\n", b"1" * 2000):
        with pytest.raises(ValueError):
            decode_chunked(bad, 0, 100)


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[float]]]:
    tmp = tmp_path_factory.mktemp("impatient")
    row = make_digits_model(tmp / "digits.joblib")
    server = Server(["--model", str(tmp / "digits.joblib"), "--read-timeout-s", "0.5",
                     "--keepalive-timeout-s", "1"], tmp)
    with server:
        yield server.wait_ready(), row


@pytest.mark.parametrize("partial", [
    b"POST /predict HTTP/1.1\r\nHost: x\r\n",  # the head never ends (slowloris)
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"in",  # the body stalls
    b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",  # a chunk stalls
])
def test_a_request_that_stalls_gets_408_and_the_connection_closes(
        impatient: tuple[Server, list[float]], partial: bytes) -> None:
    server, row = impatient
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(partial)
        started = time.monotonic()
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 408 ") and b"--read-timeout-s" in data, data
    assert 0.4 < time.monotonic() - started < 4
    assert post_json(server.port, "/predict", {"input": row}) == (200, {"output": 0})


def test_idle_keep_alive_connections_are_closed_but_busy_ones_are_not(impatient: tuple[Server, list[float]]) -> None:
    server, row = impatient
    body = json.dumps({"input": row}).encode()
    req = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for _ in range(4):  # requests 0.4 s apart keep it open past the 1 s idle limit
            sock.sendall(req)
            assert b'{"output":0}' in sock.recv(65536)
            time.sleep(0.4)
        started = time.monotonic()
        assert sock.recv(65536) == b""  # then, idle, the server closes it
    assert 0.5 < time.monotonic() - started < 4
