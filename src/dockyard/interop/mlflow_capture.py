"""What a training run logged to MLflow becomes part of the version record.

``train_env`` points MLFLOW_TRACKING_URI at a file store under /outputs when the image does not
set one (so the run's tracking data and logged models are captured; a project that sets its own
URI in code, e.g. ``sqlite:///mlflow.db`` next to its code, is captured through its working
directory instead). ``capture`` reads every tracking store among the run's captured files and
merges the runs' params and metric histories (every step) into the run's ``metrics.json``, which
the store turns into the version's params and final metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..runtime.contract import OUTPUTS_DIR
from ..store.metrics import log_history, log_params
from .mlflow_tracking import TrackedRun, TrackingError, find_stores, mlmodel_dirs

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
CAPTURED_URI = f"file://{OUTPUTS_DIR}/mlruns"
_CLOCK_SLACK_MS = 60_000  # container and host share a clock; allow for a run started just before


@dataclass(frozen=True)
class Captured:
    runs: tuple[str, ...]  # run ids merged into the record
    models: tuple[str, ...]  # MLmodel directories (relative to the outputs), newest first


def train_env(image_env: Iterable[str]) -> dict[str, str]:
    """Environment for a training container: a captured tracking location unless the image sets one."""
    if any(e.startswith(f"{TRACKING_URI_ENV}=") for e in image_env):
        return {}
    # mlflow >= 3.x refuses a file store unless allowed; it needs no database libraries, so it works
    # with mlflow-skinny as well as with mlflow.
    return {TRACKING_URI_ENV: CAPTURED_URI, "MLFLOW_ALLOW_FILE_STORE": "true"}


def capture(outputs: Path, started: datetime) -> Captured:
    """Merge params and metrics of the MLflow runs logged since ``started`` into outputs/metrics.json."""
    since = int(started.timestamp() * 1000) - _CLOCK_SLACK_MS
    runs: list[TrackedRun] = []
    for store in find_stores(outputs):
        try:
            runs += [r for r in store.runs() if r.start_time >= since]
        except (TrackingError, OSError):
            continue  # an unreadable store loses its tracking data, not the run
    runs.sort(key=lambda r: r.start_time)
    params: dict[str, str] = {}
    series: dict[str, list[tuple[float, int | None, float]]] = {}
    for run in runs:
        params.update(run.params)
        for name, points in run.metrics.items():
            ordered = sorted(points, key=lambda p: (p.step, p.timestamp))  # the last is mlflow's latest
            series.setdefault(name, []).extend((p.value, p.step, p.timestamp / 1000) for p in ordered)
    if params:
        log_params(params, outputs_dir=outputs)
    if series:
        log_history(series, outputs_dir=outputs)
    models = tuple(str(d.relative_to(outputs)) for d in mlmodel_dirs(outputs))
    return Captured(tuple(r.run_id for r in runs), models)
