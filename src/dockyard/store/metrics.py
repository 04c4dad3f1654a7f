"""Metric and param logging for user code inside a training container.

Standard library only, and no relative imports: this file must work when copied into an
image on its own (exposed as ``dockyard.log_metric``). Usage inside ``train.py``::

    from dockyard import log_metric, log_param
    log_param("n_estimators", 200)
    log_metric("accuracy", 0.97)
    log_metric("loss", 0.12, step=10)

Everything goes to ``$DOCKYARD_OUTPUTS/metrics.json``. A plain ``{"accuracy": 0.97}`` written
by hand works too; the helpers upgrade it to the richer format below on their next write::

    {"format": "dockyard.metrics/1",
     "metrics": {"loss": [{"value": 0.12, "step": 10, "time": 1700000000.0}]},
     "params": {"n_estimators": "200"}}

Writes are read-merge-write under an ``flock`` on the outputs directory, through a temp file
and ``os.replace``, so several processes (e.g. data-loader workers) can log at once and a crash
never leaves a truncated file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

FORMAT = "dockyard.metrics/1"
FILENAME = "metrics.json"
ENV_OUTPUTS = "DOCKYARD_OUTPUTS"
_warned_fallback = False


def log_metric(name: str, value: float, step: int | None = None, *,
               outputs_dir: str | os.PathLike[str] | None = None) -> None:
    """Append one value of metric ``name`` (optionally at ``step``) to metrics.json."""
    log_metrics({name: value}, step=step, outputs_dir=outputs_dir)


def log_metrics(values: Mapping[str, float], step: int | None = None, *,
                outputs_dir: str | os.PathLike[str] | None = None) -> None:
    """Append several metric values at once (one locked write)."""
    entries = {_check_name(k, "metric"): _check_value(k, v) for k, v in values.items()}
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise TypeError(f"step must be an int, got {type(step).__name__} ({step!r})")
    now = round(time.time(), 3)

    def merge(doc: dict[str, Any]) -> None:
        for key, value in entries.items():
            point: dict[str, Any] = {"value": value, "time": now}
            if step is not None:
                point["step"] = step
            doc["metrics"].setdefault(key, []).append(point)

    _update(_resolve_dir(outputs_dir), merge)


def log_param(name: str, value: object, *,
              outputs_dir: str | os.PathLike[str] | None = None) -> None:
    """Record a parameter (stored as text; the last write for a name wins)."""
    log_params({name: value}, outputs_dir=outputs_dir)


def log_params(values: Mapping[str, object], *,
               outputs_dir: str | os.PathLike[str] | None = None) -> None:
    entries = {_check_name(k, "param"): str(v) for k, v in values.items()}
    _update(_resolve_dir(outputs_dir), lambda doc: doc["params"].update(entries))


def log_history(series: Mapping[str, Any], *, outputs_dir: str | os.PathLike[str]) -> None:
    """Append whole metric histories at once (one locked write): ``{name: [(value, step, time)]}``.

    For importers (runs another tracker logged); ``step`` may be None, ``time`` is epoch seconds."""
    entries = {_check_name(k, "metric"): [(_check_value(k, v), s, t) for v, s, t in points]
               for k, points in series.items()}

    def merge(doc: dict[str, Any]) -> None:
        for key, points in entries.items():
            out = doc["metrics"].setdefault(key, [])
            for value, step, when in points:
                point: dict[str, Any] = {"value": value, "time": round(float(when), 3)}
                if step is not None:
                    point["step"] = int(step)
                out.append(point)

    _update(Path(outputs_dir), merge)


def read_metrics(outputs_dir: str | os.PathLike[str]) -> dict[str, float]:
    """Last value per metric name from ``outputs_dir/metrics.json`` ({} when there is none).

    Accepts the helpers' format and hand-written JSON: ``{"acc": 0.9}``, lists of numbers
    (``{"loss": [0.5, 0.3]}`` -> 0.3) and nested objects (``{"val": {"acc": 0.9}}`` -> ``val.acc``).
    """
    path = Path(outputs_dir) / FILENAME
    doc = _load(path)
    if doc is None:
        return {}
    return {k: points[-1]["value"] for k, points in doc["metrics"].items() if points}


def read_series(metrics_file: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Every logged value per metric as (step, value), in logging order ({} when no file).

    A point logged without a step gets its position in the list as its step."""
    return {name: [(int(p.get("step", i)), float(p["value"])) for i, p in enumerate(points)]
            for name, points in read_points(metrics_file).items() if points}


def read_points(metrics_file: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Every logged point per metric (value, optional step, time) from a metrics.json file."""
    doc = _load(Path(metrics_file))
    return {k: list(v) for k, v in doc["metrics"].items()} if doc else {}


def read_params(outputs_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Params logged with ``log_param`` ({} for hand-written plain metrics files)."""
    doc = _load(Path(outputs_dir) / FILENAME)
    return dict(doc["params"]) if doc else {}


# --- internals -------------------------------------------------------------------------------


def _error(problem: str, fix: str) -> Exception:
    """A StoreError on the host; a ValueError inside an image where dockyard is not installed."""
    try:
        from dockyard.errors import StoreError
    except ImportError:
        return ValueError(f"{problem}\n  fix: {fix}")
    return StoreError(problem, fix)


def _check_name(name: object, kind: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{kind} name must be a non-empty string, got {name!r}")
    return name


def _check_value(name: str, value: object) -> float:
    # numpy scalars and 0-d tensors convert with float(); text and booleans do not belong here
    try:
        if isinstance(value, bool | str | bytes):
            raise TypeError
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"metric {name!r} must be a number, got {type(value).__name__} ({value!r});"
            " use log_param for text"
        ) from None
    if not math.isfinite(number):
        raise ValueError(f"metric {name!r} is {number}; log only finite numbers")
    return number


def _resolve_dir(explicit: str | os.PathLike[str] | None) -> Path:
    global _warned_fallback
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(ENV_OUTPUTS)
    if env:
        return Path(env)
    # Outside `dockyard train` (plain `python train.py`), keep working: log next to the code.
    if not _warned_fallback:
        print(f"dockyard: ${ENV_OUTPUTS} is not set; writing metrics to ./outputs/{FILENAME}",
              file=sys.stderr)
        _warned_fallback = True
    return Path.cwd() / "outputs"


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    # Lock the directory itself so no lock file ends up among the run's artifacts.
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _update(directory: Path, merge: Any) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILENAME
    with _dir_lock(directory):
        doc = _load(path) or _empty()
        merge(doc)
        tmp = directory / f".{FILENAME}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


def _empty() -> dict[str, Any]:
    return {"format": FORMAT, "metrics": {}, "params": {}}


def _load(path: Path) -> dict[str, Any] | None:
    """Parse metrics.json into the rich format; None when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _error(f"cannot read {path}: {exc.strerror}",
                     "check the file's permissions") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(
            f"{path} is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})",
            'write metrics as {"name": number}, or use dockyard.log_metric',
        ) from None
    if not isinstance(raw, dict):
        raise _error(f"{path} must hold a JSON object, got {type(raw).__name__}",
                     'write metrics as {"name": number}, or use dockyard.log_metric')
    if raw.get("format") == FORMAT:
        return _rich(raw, path)
    return {"format": FORMAT, "metrics": _plain(raw, path, ""), "params": {}}


def _rich(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    metrics, params = raw.get("metrics", {}), raw.get("params", {})
    if not isinstance(metrics, dict) or not isinstance(params, dict):
        raise _error(f"{path}: 'metrics' and 'params' must be JSON objects",
                     "delete the file and log again with dockyard.log_metric")
    for name, points in metrics.items():
        ok = isinstance(points, list) and all(
            isinstance(p, dict) and _is_number(p.get("value")) for p in points)
        if not ok:
            raise _error(f"{path}: metric {name!r} must be a list of {{\"value\": number}} points",
                         "delete the file and log again with dockyard.log_metric")
        for p in points:
            p["value"] = float(p["value"])
    return {"format": FORMAT, "metrics": metrics,
            "params": {str(k): str(v) for k, v in params.items()}}


def _plain(raw: dict[str, Any], path: Path, prefix: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if _is_number(value):
            out[name] = [{"value": float(value)}]
        elif isinstance(value, list) and value and all(_is_number(v) for v in value):
            out[name] = [{"value": float(v)} for v in value]
        elif isinstance(value, dict):
            out.update(_plain(value, path, f"{name}."))
        else:
            raise _error(
                f"{path}: metric {name!r} is {value!r}, not a number or list of numbers",
                "metrics must be numbers; record text with dockyard.log_param",
            )
    return out


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)
