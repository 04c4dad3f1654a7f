"""The seed article's Keras model (examples/keras-digits) trains in a container into a version:
on scikit-learn's bundled digits by default, and on a real-format mnist.npz when --data has one."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_project, project_name
from dockyard.engine import Engine
from dockyard.store import Store
from dockyard.train import train

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras-digits"
pytestmark = pytest.mark.slow


@pytest.fixture
def keras_project(tmp_path: Path) -> Path:
    return copy_project(EXAMPLE, tmp_path / "keras-digits")  # under a unique name


def test_keras_digits_trains_a_loadable_model_with_accuracy(
    engine: Engine, keras_project: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    lines: list[str] = []
    res = train(keras_project, engine, store=store, on_line=lines.append, labels={"io.dockyard.test": "1"})
    v = res.version
    assert v.ref == f"{project_name(keras_project)}:1"
    assert {a.path for a in v.artifacts} == {"model.keras", "metrics.json"}
    # A correct loss (no from_logits=True after softmax) learns the digits well in 20 epochs.
    assert v.metrics["accuracy"] > 0.9
    assert any("backend jax" in line for line in lines)
    with zipfile.ZipFile(store.artifact_path(v.ref, "model.keras")) as saved:
        config = saved.read("config.json").decode()
    assert '"softmax"' in config and '"Dense"' in config


def test_keras_digits_uses_mnist_npz_from_data_when_present(
    engine: Engine, keras_project: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.integers(0, 255, (64, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 10, 64),
             x_test=rng.integers(0, 255, (16, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 10, 16))
    (data / "mnist.npz").write_bytes(buf.getvalue())
    store = Store(tmp_path / "store")
    lines: list[str] = []
    res = train(keras_project, engine, store=store, data=data, params={"epochs": "1"}, on_line=lines.append,
                labels={"io.dockyard.test": "1"})
    assert any("data: /data/mnist.npz: 64 train / 16 test" in line for line in lines)
    assert res.version.params == {"epochs": "1"}
    assert res.version.data_fingerprint and res.version.data_fingerprint.startswith("sha256:")
