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


def test_unknown_inputs_are_ignored_as_cog_ignores_them(server: Any) -> None:
    status, body = post_json(server.port, "/predictions", {"input": {"image": data_url(PNG), "colour": "red"}})
    assert (status, body["status"], body["output"]) == (200, "succeeded", expected())


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


# -- init, serve checks and the CLI's file inputs (no server) --------------------------------------
def test_init_translates_cog_yaml_and_says_what_it_could_not_map(tmp_path: Path) -> None:
    import shutil

    from dockyard.project import init

    project = shutil.copytree(PROJECT, tmp_path / "greeter")
    result = init(project)
    cfg = result.config
    assert cfg.python == "3.11" and cfg.system_packages == ("libmagic1",)
    assert cfg.serve.predictor == "predict.py:Predictor"
    assert cfg.dependencies.file == "requirements-cog.txt"
    assert (project / "requirements-cog.txt").read_text().splitlines()[1:] == ["numpy==2.3.3", "cog==0.23.1"]
    assert cfg.train.command is None  # `python train.py` would only define Cog's train()
    notes = "\n".join(result.notes)
    assert "not mapped: build.run (1 command(s))" in notes and "not mapped: train (train.py:train)" in notes


def test_init_maps_gpu_cuda_requirements_file_and_environment(tmp_path: Path) -> None:
    from dockyard.project import init

    (tmp_path / "cog.yaml").write_text(
        'build:\n  gpu: true\n  cuda: "12.4"\n  python_version: "3.12"\n  python_requirements: requirements.txt\n'
        'predict: "predict.py:Predictor"\nenvironment:\n  - HF_HOME=/tmp/hf\nconcurrency:\n  max: 4\n')
    (tmp_path / "requirements.txt").write_text("torch==2.5.1\ncog==0.23.1\n")
    (tmp_path / "predict.py").write_text((PROJECT / "predict.py").read_text())
    result = init(tmp_path)
    cfg = result.config
    assert (cfg.gpu.enabled, cfg.gpu.cuda, cfg.python) == (True, "12.4", "3.12")
    assert cfg.dependencies.file == "requirements.txt" and cfg.env == {"HF_HOME": "/tmp/hf"}
    assert any("concurrency.max 4" in n for n in result.notes)


def test_serve_refuses_cog_features_it_does_not_support_naming_them(tmp_path: Path) -> None:
    from dockyard.errors import UsageError
    from dockyard.interop.cog import check_servable

    (tmp_path / "cog.yaml").write_text('predict: "predict.py:P"\n')
    (tmp_path / "predict.py").write_text("from cog import BasePredictor\n\nclass P(BasePredictor):\n"
                                         "    def setup(self, weights=None):\n        pass\n"
                                         "    def predict(self, x: int) -> int:\n        return x\n")
    with pytest.raises(UsageError, match=r"setup\(self, weights\)"):
        check_servable(tmp_path)
    (tmp_path / "cog.yaml").write_text('predict: "predict.py:P"\nconcurrency:\n  max: 8\n')
    with pytest.raises(UsageError, match="concurrency.max: 8"):
        check_servable(tmp_path)


def test_predict_i_name_at_file_sends_the_file_as_a_data_url(tmp_path: Path) -> None:
    from dockyard.errors import UsageError
    from dockyard.serving import parse_inputs

    (tmp_path / "photo.png").write_bytes(PNG)
    assert parse_inputs(None, [f"image=@{tmp_path / 'photo.png'}", "times=3"], None) == {
        "image": data_url(PNG), "times": 3}
    with pytest.raises(UsageError, match="no such file"):
        parse_inputs(None, ["image=@/nonexistent.png"], None)
