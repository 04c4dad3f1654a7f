"""Every image built from the bundled examples scans clean at --fail-on high (real engine).

This is the demo's own gate (`dockyard scan digits:latest --offline --fail-on high`): train images
with their deliberate HEALTHCHECK NONE, serving images with their model baked in, and an
MLflow-style project that has never heard of dockyard. Images carry io.dockyard.test=1 and are
removed by id.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import copy_example

from dockyard import project
from dockyard.scan import scan_image

CASES = [
    ("digits", "train", None),
    ("digits", "serve", "outputs/model.joblib"),  # the predictor image with its trained weights
    ("mlflow-style", "train", None),
    ("mlflow-style", "serve", "model.joblib"),  # zero-code serving of the pickle (passes the gate)
    ("keras-digits", "train", None),
]


@pytest.mark.parametrize(("example", "target", "model"), CASES)
def test_example_image_scans_clean_at_fail_on_high(engine, tmp_path: Path, example: str, target: str,  # type: ignore[no-untyped-def]
                                                   model: str | None) -> None:
    path = copy_example(example, tmp_path)
    if not (path / "dockyard.yaml").is_file():
        project.init(path)
    if model:
        pytest.importorskip("sklearn")
        subprocess.run([sys.executable, "train.py"], cwd=path, check=True, capture_output=True, timeout=300)
        assert (path / model).is_file()
    built = project.build(path, engine, target=target, model_file=model, labels={"io.dockyard.test": "1"},
                          tag=f"dockyard-test-scan-{example}-{uuid.uuid4().hex[:8]}:{target}")
    try:
        report = scan_image(built.image_id, offline=True)
        serious = [(f.severity, f.rule_id, f.location, f.detail) for f in report.findings
                   if f.severity in {"high", "critical"}]
        assert serious == []
        assert report.gate("high") is None, report.to_table()
        assert report.checks  # it did look
    finally:
        engine.remove_image(built.image_id, force=True)
