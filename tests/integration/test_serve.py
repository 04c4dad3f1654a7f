"""`dockyard serve` end to end on the real engine: stored versions, the V2 protocol through a
standard client, start-up failures, and the local (no container) mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import project_name
from dockyard import serving
from dockyard.engine import Engine
from dockyard.errors import RunError, UsageError
from dockyard.store import Store
from dockyard.train import train


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def test_serve_a_stored_version_answers_predictions(engine: Engine, digits_project: Path, store: Store, unique_tag: str) -> None:
    train(digits_project, engine, store=store, labels={"io.dockyard.test": "1"})
    v2 = train(digits_project, engine, params={"C": "0.1"}, store=store, labels={"io.dockyard.test": "1"})
    assert str(v2.version.version) == "2"
    name = project_name(digits_project)
    res = serving.serve(digits_project, engine, model=f"{name}:2", port=18411,
                        name="dockyard-test-serve-store", store_root=store.root, labels={"io.dockyard.test": "1"})
    try:
        assert res.tag == f"{name}:2" and engine.image_id(f"{name}:2") == res.image
        sample = json.loads((digits_project / "sample.json").read_text())
        assert serving.predict(res.url, sample) == {"output": 0}
        layers = engine.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", res.image).stdout
        assert "COPY .dockyard/model /opt/dockyard/model/" in layers, "weights get a layer of their own"
        labels = engine.inspect(res.image)["Config"]["Labels"]
        assert labels["io.dockyard.model"] == name and labels["io.dockyard.model-version"] == "2"
        assert labels["io.dockyard.project"] == str(digits_project.resolve())  # the folder that owns the name
        assert float(labels["io.dockyard.metrics.accuracy"]) > 0.8
        import urllib.request

        with urllib.request.urlopen(f"{res.url}/v2/models/{name}") as resp:
            assert json.loads(resp.read())["versions"] == ["2"]
    finally:
        engine.remove_container(res.container)
        engine.remove_image(f"{name}:2", force=True)


def test_standard_v2_client_talks_to_the_served_container(engine: Engine, digits_project: Path, unique_tag: str) -> None:
    tritonclient = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import InferenceServerException

    subprocess.run([sys.executable, "train.py"], cwd=digits_project, check=True, capture_output=True)
    name = project_name(digits_project)
    res = serving.serve(digits_project, engine, model="outputs/model.joblib", port=18412, tag=unique_tag,
                        name="dockyard-test-serve-v2", labels={"io.dockyard.test": "1"})
    try:
        client = tritonclient.InferenceServerClient("127.0.0.1:18412")
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
        meta = client.get_model_metadata(name)
        assert meta["name"] == name and meta["inputs"][0]["name"] == "pixels"
        pixels = np.asarray([json.loads((digits_project / "sample.json").read_text())["pixels"]], dtype=np.float32)
        inp = tritonclient.InferInput("pixels", list(pixels.shape), "FP32")
        inp.set_data_from_numpy(pixels, binary_data=True)
        result = client.infer(name, [inp], request_id="req-7")
        assert result.get_response()["id"] == "req-7"
        assert int(result.as_numpy("output").reshape(-1)[0]) == 0
        bad = tritonclient.InferInput("pixels", [1, 3], "FP32")
        bad.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
        with pytest.raises(InferenceServerException) as caught:
            client.infer(name, [bad])
        assert "[400]" in str(caught.value) and "pixels" in str(caught.value) and "[64]" in str(caught.value)
        wrong_name = tritonclient.InferInput("pixel", [1, 64], "FP32")
        wrong_name.set_data_from_numpy(pixels)
        with pytest.raises(InferenceServerException) as caught:
            client.infer(name, [wrong_name])
        assert "[400]" in str(caught.value) and "pixel" in str(caught.value)
        assert client.is_server_ready(), "the server keeps serving after bad input"
        assert meta["inputs"][0]["shape"] == [64]
    finally:
        engine.remove_container(res.container)


def test_setup_failure_exits_and_reports_the_log(engine: Engine, digits_project: Path, unique_tag: str) -> None:
    (digits_project / "predict.py").write_text(
        "class Predictor:\n    def setup(self):\n        raise RuntimeError('weights are missing')\n"
        "    def predict(self, x: float) -> float:\n        return x\n"
    )
    with pytest.raises(RunError) as caught:
        serving.serve(digits_project, engine, port=18413, tag=unique_tag, name="dockyard-test-serve-fail",
                      labels={"io.dockyard.test": "1"}, ready_timeout=60)
    assert "weights are missing" in caught.value.log_tail
    assert engine.containers(["name=dockyard-test-serve-fail"]) == []


def test_serve_local_runs_the_same_runtime_without_a_container(digits_project: Path) -> None:
    subprocess.run([sys.executable, "train.py"], cwd=digits_project, check=True, capture_output=True)
    env = {**os.environ, "DOCKYARD_MODEL_DIR": str(digits_project / "outputs")}
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", "serve", str(digits_project), "--local", "--port", "18414"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        serving.wait_ready("http://127.0.0.1:18414", 60, alive=lambda: proc.poll() is None)
        out = subprocess.run([sys.executable, "-m", "dockyard", "predict", "http://127.0.0.1:18414",
                              "-f", str(digits_project / "sample.json")], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"output": 0}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_predict_reports_bad_input_with_the_servers_message(digits_project: Path) -> None:
    subprocess.run([sys.executable, "train.py"], cwd=digits_project, check=True, capture_output=True)
    os.environ["DOCKYARD_MODEL_DIR"] = str(digits_project / "outputs")
    try:
        # A 4xx is the user's input: a UsageError (exit 1), naming what the server said.
        with pytest.raises(UsageError) as caught:
            serving.predict_local(digits_project, {"pixel": [0.0] * 64})
        assert "pixel" in caught.value.problem and "422" in caught.value.problem
    finally:
        del os.environ["DOCKYARD_MODEL_DIR"]
