"""Images that `deploy` builds carry the same model labels as the ones `serve` builds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard import serving
from dockyard.deploy import swarm
from dockyard.engine import Engine
from dockyard.runtime import contract
from dockyard.store import ImageInfo, Resources, RunRecord, Store

PREDICTOR = "class Predictor:\n    def setup(self) -> None:\n        pass\n\n    def predict(self, x: float) -> float:\n        return x\n"


def test_a_deploy_build_of_a_stored_version_is_labelled_like_serves(engine: Engine, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    name = f"dockyard-test-{uuid.uuid4().hex[:8]}"
    project = tmp_path / name
    project.mkdir()
    (project / "dockyard.yaml").write_text(f'name: {name}\npython: "3.11"\nserve:\n  predictor: predict.py:Predictor\n')
    (project / "predict.py").write_text(PREDICTOR)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "weights.txt").write_text("w\n")
    (outputs / "metrics.json").write_text('{"accuracy": 0.97}')
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    Store().record_success(RunRecord(name=name, run_id="run-1", command=("python", "train.py"),
                                     image=ImageInfo("sha256:" + "a" * 64), started=t0, ended=t0 + timedelta(seconds=1),
                                     resources=Resources(1.0, "1g")), outputs)
    try:
        target = swarm.project_image(project, engine, model=f"{name}:1")
        labels = engine.inspect(target.ref)["Config"]["Labels"]
        expected = serving.model_labels(Store().get(f"{name}:1"))
        assert expected[contract.LABEL_MODEL] == name and expected[contract.LABEL_MODEL_VERSION] == "1"
        assert {k: labels.get(k) for k in expected} == expected
        assert labels[f"{contract.LABEL_METRICS_PREFIX}accuracy"] == "0.97"
    finally:
        for ref in (f"{name}:1", f"{name}:latest"):
            engine.remove_image(ref, force=True)
