"""`dockyard models plot`: metrics across versions and per-step curves, as text and as a PNG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.charts import Chart, model_series, terminal_chart
from dockyard.cli import main
from dockyard.errors import UsageError
from dockyard.store import ImageInfo, Resources, RunRecord, Store, log_metric

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def add_version(store: Store, tmp_path: Path, n: int, losses: list[float], accuracy: float) -> None:
    outputs = tmp_path / f"out{n}"
    outputs.mkdir()
    (outputs / "model.joblib").write_bytes(b"model-%d" % n)
    for step, loss in enumerate(losses):  # the real helper a train.py uses
        log_metric("loss", loss, step=step * 10, outputs_dir=outputs)
    log_metric("accuracy", accuracy, outputs_dir=outputs)
    run = RunRecord(name="digits", run_id=f"run-{n}", command=("python", "train.py"), image=ImageInfo("sha256:" + "a" * 64),
                    started=T0, ended=T0 + timedelta(seconds=3), resources=Resources(2.0, "2g"))
    store.record_success(run, outputs)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    add_version(s, tmp_path, 1, [0.9, 0.5, 0.3], 0.91)
    add_version(s, tmp_path, 2, [0.8, 0.4, 0.2, 0.1], 0.96)
    return s


def test_series_hold_every_version_and_the_latest_runs_steps(store: Store) -> None:
    charts = model_series(store, "digits")
    across = {c.title: c.series for c in charts.versions}
    assert across["accuracy across versions of digits"] == {"accuracy": [(1.0, 0.91), (2.0, 0.96)]}
    assert across["loss across versions of digits"] == {"loss": [(1.0, 0.3), (2.0, 0.1)]}  # the last value
    (steps,) = charts.steps  # accuracy has one point per run: no curve
    assert charts.ref == "digits:2" and steps.series == {"loss": [(0.0, 0.8), (10.0, 0.4), (20.0, 0.2), (30.0, 0.1)]}
    assert model_series(store, "digits:1").steps[0].series["loss"][-1] == (20.0, 0.3)
    with pytest.raises(UsageError, match="no metric 'f1'") as info:
        model_series(store, "digits", metric="f1")
    assert info.value.fix == "metrics of digits: accuracy, loss"


def test_terminal_chart_puts_points_where_their_values_are() -> None:
    text = terminal_chart(Chart("loss per step", "step", {"loss": [(0, 1.0), (1, 0.5), (2, 0.0)]}), width=21, height=5)
    lines = text.splitlines()
    assert lines[0] == "loss per step"
    grid = [line.split("┤", 1)[1] for line in lines[1:6]]
    assert grid[0][0] == "●" and grid[2][10] == "●" and grid[4][20] == "●"  # top-left, middle, bottom-right
    assert lines[1].startswith("1 ┤") and lines[5].startswith("0 ┤") and "(step)" in lines[-1]
    assert "·" in "".join(grid), "neighbouring points are joined"


def test_cli_draws_terminal_charts_and_writes_a_png(store: Store, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")  # a test dependency; the PNG path is optional for users
    png = tmp_path / "digits.png"
    with pytest.raises(SystemExit) as info:
        main(["models", "plot", "digits", "--store", str(store.root), "--png", str(png)])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "accuracy across versions of digits" in out and "loss per step, digits:2" in out and "●" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        main(["models", "plot", "digits", "--store", str(store.root), "--no-png", "-m", "accuracy"])
    out = capsys.readouterr().out
    assert "accuracy across versions" in out and "loss" not in out
