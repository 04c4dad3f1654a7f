"""Cog predictors run unchanged with the real cog package, answering Cog's HTTP API over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import Server, post_json, request

pytest.importorskip("cog")
np = pytest.importorskip("numpy")

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "projects" / "cog_predictor"
PNG = bytes(range(256)) * 3


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def expected(name: str = "world", times: int = 2, mode: str = "upper") -> str:
    text = " ".join([f"hello {name}"] * times)
    text = text.upper() if mode == "upper" else text.lower()
    return f"{text} | {len(PNG)} bytes | {hashlib.sha256(PNG).hexdigest()[:12]} | {sum(PNG)}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("cog")
    with Server(["--predictor", "predict:Predictor", "--app-dir", str(PROJECT), "--name", "greeter"], tmp) as s:
        s.wait_ready(60)
        yield s


def test_predictions_applies_input_defaults_and_reads_the_file(server: Any) -> None:
    status, body = post_json(server.port, "/predictions", {"input": {"image": data_url(PNG)}})
    assert status == 200, body
    assert body["status"] == "succeeded" and body["output"] == expected() and body["error"] is None
    assert body["id"] and body["metrics"]["predict_time"] >= 0 and body["logs"] == ""
    status, body = post_json(server.port, "/predictions",
                             {"id": "p1", "input": {"image": data_url(PNG), "name": "ada", "times": 3, "mode": "lower"}})
    assert (status, body["id"], body["output"]) == (200, "p1", expected("ada", 3, "lower"))


@pytest.mark.parametrize(("given", "field", "words"), [
    ({"times": 9}, "times", "fails constraint <= 5"),
    ({"times": 0}, "times", "fails constraint >= 1"),
    ({"mode": "sideways"}, "mode", "does not match choices"),
    ({"name": "Ada!"}, "name", "does not match regex"),
])
def test_predictions_refuses_invalid_input_as_cog_does(server: Any, given: dict[str, Any], field: str, words: str) -> None:
    status, body = post_json(server.port, "/predictions", {"input": {"image": data_url(PNG), **given}})
    assert status == 422
    (detail,) = body["detail"]
    assert detail["loc"] == ["body", "input", field] and words in detail["msg"]


def test_a_missing_required_file_input_is_a_422(server: Any) -> None:
    status, body = post_json(server.port, "/predictions", {"input": {}})
    assert status == 422 and "image: Field required" in body["detail"][0]["msg"]


def test_health_check_and_openapi_are_shaped_as_cog_clients_expect(server: Any) -> None:
    status, _, raw = request(server.port, "GET", "/health-check")
    assert status == 200 and json.loads(raw)["status"] == "READY"
    schema = json.loads(request(server.port, "GET", "/openapi.json")[2])
    inputs = schema["components"]["schemas"]["Input"]
    assert inputs["required"] == ["image"]
    props = inputs["properties"]
    assert [props[k]["x-order"] for k in ("image", "name", "times", "mode")] == [0, 1, 2, 3]
    assert props["image"]["format"] == "uri" and props["image"]["description"].startswith("any file")
    assert props["name"]["default"] == "world" and props["name"]["pattern"] == "^[a-z]+$"
    assert (props["times"]["minimum"], props["times"]["maximum"], props["times"]["default"]) == (1, 5, 2)
    assert props["mode"]["allOf"] == [{"$ref": "#/components/schemas/mode"}]
    assert schema["components"]["schemas"]["mode"]["enum"] == ["upper", "lower"]
    assert schema["components"]["schemas"]["Output"] == {"title": "Output", "type": "string"}
    assert "/predictions" in schema["paths"]


def test_async_predictions_are_refused_with_the_reason(server: Any) -> None:
    status, body = post_json(server.port, "/predictions", {"input": {"image": data_url(PNG)}},
                             headers={"Prefer": "respond-async"})
    assert status == 400 and "respond-async" in body["detail"] and "not supported" in body["detail"]


def test_our_own_predict_route_serves_the_cog_predictor_too(server: Any) -> None:
    assert post_json(server.port, "/predict", {"image": data_url(PNG), "times": 1}) == (200, {"output": expected(times=1)})


def test_iterator_and_file_outputs(tmp_path: Path) -> None:
    with Server(["--predictor", "streamer:Streamer", "--app-dir", str(PROJECT)], tmp_path) as s:
        s.wait_ready(60)
        status, body = post_json(s.port, "/predictions", {"input": {"prompt": "x y z w", "n": 3}})
        assert (status, body["status"], body["output"]) == (200, "succeeded", ["x ", "y ", "z "])
        schema = json.loads(request(s.port, "GET", "/openapi.json")[2])
        assert schema["components"]["schemas"]["Output"]["x-cog-array-display"] == "concatenate"
    with Server(["--predictor", "streamer:Writer", "--app-dir", str(PROJECT)], tmp_path) as s:
        s.wait_ready(60)
        status, body = post_json(s.port, "/predictions", {"input": {"text": "cog"}})
        assert status == 200 and body["output"] == data_url(b"COG", "text/plain")


def test_async_predictors_are_refused_at_start_naming_the_feature(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(
        "from cog import BasePredictor\n\nclass P(BasePredictor):\n"
        "    async def predict(self, x: int) -> int:\n        return x\n")
    with Server(["--predictor", "slow:P", "--app-dir", str(tmp_path)], tmp_path) as s:
        assert s.proc.wait(60) == 1
    assert "async def predict() (Cog concurrency)" in s.log
