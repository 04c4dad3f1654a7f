"""`dockyard train` of a notebook (train.notebook) against a real engine: parameters injected
into the papermill-style parameters cell, metrics through the usual helpers, the executed
notebook kept with the version, and a failing cell shown with no version recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import copy_project, project_name
from dockyard import project
from dockyard.engine import Engine, RunSpec, run_args
from dockyard.errors import RunError
from dockyard.store import Store
from dockyard.train import train

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEST_LABELS = {"io.dockyard.test": "1"}

TRAIN_CELL = """\
import os
from pathlib import Path

import joblib
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from dockyard import log_metric

if C <= 0:
    raise ValueError(f"C must be positive, got {C}")
x, y = load_digits(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
model = LogisticRegression(C=C, max_iter=max_iter).fit(x_train, y_train)
accuracy = float(model.score(x_test, y_test))
joblib.dump(model, Path(os.environ["DOCKYARD_OUTPUTS"]) / "model.joblib")
log_metric("accuracy", accuracy)
print(f"C={C} accuracy={accuracy:.4f}")
"""


def _cell(source: str, tags: list[str] | None = None, kind: str = "code") -> dict[str, object]:
    cell: dict[str, object] = {"cell_type": kind, "metadata": {"tags": tags or []}, "source": source}
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def notebook_project(dest: Path) -> Path:
    target = copy_project(EXAMPLES / "digits", dest / "digits")  # under a unique name
    (target / "train.py").unlink()
    doc = {"nbformat": 4, "nbformat_minor": 4, "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                          "display_name": "Python 3"}},
           "cells": [_cell("# Digits, trained from a notebook", kind="markdown"),
                     _cell("C = 1.0\nmax_iter = 2000", ["parameters"]),
                     _cell(TRAIN_CELL)]}
    (target / "train.ipynb").write_text(json.dumps(doc))
    cfg = yaml.safe_load((target / "dockyard.yaml").read_text())
    cfg["train"] = {"notebook": "train.ipynb"}
    (target / "dockyard.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return target


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "home"))
    return Store(tmp_path / "store")


def test_dockyard_train_of_a_parameterised_notebook_records_a_version_with_its_metrics(
    engine: Engine, tmp_path: Path, store: Store
) -> None:
    project_dir = notebook_project(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "dockyard", "train", str(project_dir), "--param", "C=0.5",
                           "--store", str(store.root), "-q"],
                          capture_output=True, text=True, timeout=900, check=False, env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = project_name(project_dir)
    assert f"trained {name}:1 (accuracy=" in proc.stdout
    assert "C=0.5 accuracy=" in proc.stderr  # the cell's output is the run's log
    version = store.get(f"{name}:1")
    assert version.params == {"C": "0.5"}
    assert 0.8 < version.metrics["accuracy"] <= 1.0
    artifacts = {a.path: a for a in version.artifacts}
    assert {"model.joblib", "metrics.json", "train.ipynb"} <= set(artifacts)
    executed = json.loads((store.blobs_dir / artifacts["train.ipynb"].sha256).read_text())
    injected = executed["cells"][2]
    assert injected["metadata"]["tags"] == ["injected-parameters"] and "C = 0.5" in "".join(injected["source"])
    outputs = "".join("".join(o.get("text", "")) for o in executed["cells"][3]["outputs"])
    assert "C=0.5 accuracy=" in outputs


def test_a_failing_cell_is_shown_and_no_version_is_recorded(engine: Engine, tmp_path: Path, store: Store) -> None:
    project_dir = notebook_project(tmp_path)
    with pytest.raises(RunError) as info:
        train(project_dir, engine, store=store, params={"C": "-1"}, labels=TEST_LABELS)
    tail = info.value.log_tail or ""
    assert "notebook train.ipynb failed in cell 4 of 4, line 12:" in tail
    assert "  | if C <= 0:" in tail and "> |     raise ValueError" in tail and "ValueError: C must be positive, got -1" in tail
    assert "exited with status 1" in info.value.problem
    assert store.list_models() == []
    [failed] = store.failed_runs(project_name(project_dir))
    assert failed.reason == "exit 1" and "failed in cell 4" in failed.logs_path.read_text()


def test_the_train_image_of_a_notebook_project_carries_the_runner_but_never_jupyterlab(
    engine: Engine, tmp_path: Path, unique_tag: str
) -> None:
    project_dir = notebook_project(tmp_path)
    built = project.build(project_dir, engine, target="train", tag=unique_tag)
    code = "import importlib.util as u; print([m for m in ('nbclient', 'ipykernel', 'jupyterlab') if u.find_spec(m)])"
    spec = RunSpec(image=built.image_id, command=("python", "-c", code), labels=TEST_LABELS)
    assert engine.docker(*run_args(spec), timeout=120).stdout.strip() == "['nbclient', 'ipykernel']"
