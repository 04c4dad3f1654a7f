"""log_metric / log_param inside a training container, and reading metrics.json on the host."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.errors import StoreError
from dockyard.store import log_metric, log_metrics, log_param, read_metrics, read_params

METRICS_PY = Path(__file__).resolve().parents[2] / "src" / "dockyard" / "store" / "metrics.py"


def test_logged_metrics_keep_every_point_and_read_back_as_the_last_value(tmp_path: Path) -> None:
    log_metric("loss", 0.5, step=1, outputs_dir=tmp_path)
    log_metric("loss", 0.25, step=2, outputs_dir=tmp_path)
    log_metrics({"acc": 0.9, "f1": 1}, outputs_dir=tmp_path)
    assert read_metrics(tmp_path) == {"loss": 0.25, "acc": 0.9, "f1": 1.0}
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert [(p["step"], p["value"]) for p in doc["metrics"]["loss"]] == [(1, 0.5), (2, 0.25)]


def test_logged_params_are_text_and_the_last_write_wins(tmp_path: Path) -> None:
    log_param("lr", 0.1, outputs_dir=tmp_path)
    log_param("lr", 0.01, outputs_dir=tmp_path)
    log_param("layers", [128, 10], outputs_dir=tmp_path)
    assert read_params(tmp_path) == {"lr": "0.01", "layers": "[128, 10]"}
    assert read_metrics(tmp_path) == {}


def test_helpers_write_to_dockyard_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_OUTPUTS", str(tmp_path / "outputs"))
    log_metric("acc", 0.8)
    assert read_metrics(tmp_path / "outputs") == {"acc": 0.8}


def test_a_hand_written_plain_metrics_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text(
        json.dumps({"acc": 0.9, "loss": [0.9, 0.4, 0.3], "val": {"acc": 0.85}, "epochs": 3}))
    assert read_metrics(tmp_path) == {"acc": 0.9, "loss": 0.3, "val.acc": 0.85, "epochs": 3.0}
    assert read_params(tmp_path) == {}


def test_the_helper_extends_a_plain_file_without_losing_its_values(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text('{"acc": 0.9}')
    log_metric("loss", 0.1, outputs_dir=tmp_path)
    assert read_metrics(tmp_path) == {"acc": 0.9, "loss": 0.1}


def test_no_metrics_file_means_no_metrics(tmp_path: Path) -> None:
    assert read_metrics(tmp_path) == {}
    assert read_params(tmp_path) == {}


def test_a_text_value_in_metrics_json_is_an_error_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text('{"acc": 0.9, "model": "rf"}')
    with pytest.raises(StoreError) as err:
        read_metrics(tmp_path)
    assert "'model'" in err.value.problem and str(tmp_path) in err.value.problem
    assert "log_param" in err.value.fix


def test_invalid_json_in_metrics_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text('{"acc": 0.9,\n "f1": }')
    with pytest.raises(StoreError, match="line 2"):
        read_metrics(tmp_path)


@pytest.mark.parametrize("value", ["0.9", None, True, float("nan"), float("inf")])
def test_log_metric_rejects_values_that_are_not_finite_numbers(tmp_path: Path,
                                                               value: object) -> None:
    with pytest.raises((TypeError, ValueError)) as err:
        log_metric("acc", value, outputs_dir=tmp_path)  # type: ignore[arg-type]
    assert "'acc'" in str(err.value)
    assert not (tmp_path / "metrics.json").exists()


def test_numpy_scalars_are_accepted_as_metrics(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    log_metric("acc", np.float32(0.5), step=1, outputs_dir=tmp_path)
    assert read_metrics(tmp_path) == {"acc": 0.5}


def test_logging_leaves_no_lock_or_temp_files_among_the_artifacts(tmp_path: Path) -> None:
    for i in range(3):
        log_metric("x", i, outputs_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def _log_many(outputs: str, worker: int) -> None:
    for i in range(25):
        log_metric(f"w{worker}", float(i), step=i, outputs_dir=outputs)


def test_processes_logging_at_once_lose_no_points(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_log_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert {k: len(v) for k, v in doc["metrics"].items()} == {f"w{w}": 25 for w in range(4)}
    assert read_metrics(tmp_path) == {f"w{w}": 24.0 for w in range(4)}


def test_metrics_module_works_alone_with_only_the_standard_library(tmp_path: Path) -> None:
    """Inside a training image the file may be all there is of dockyard."""
    shutil.copy(METRICS_PY, tmp_path / "dockyard_metrics.py")
    script = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "import dockyard_metrics as m\n"
        "m.log_metric('acc', 0.75)\n"
        "m.log_param('seed', 1)\n"
        "assert m.read_metrics(sys.argv[1]) == {'acc': 0.75}\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in ('dockyard', 'pydantic', 'numpy')]\n"
        "assert not bad, bad\n"
    )
    out = tmp_path / "outputs"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script, str(out), str(tmp_path)], cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
        env={"DOCKYARD_OUTPUTS": str(out), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "metrics.json").read_text())["params"] == {"seed": "1"}
