"""Reading MLflow tracking stores without mlflow: the ``mlruns/`` file store and ``mlflow.db``.

Both layouts of mlflow 2.x and >= 3 (logged models under ``<experiment>/models/m-<id>``) are
read with the standard library (sqlite3 and a YAML reader for the small ``meta.yaml`` files).
Paths recorded inside a training container (``/outputs/mlruns/...``, ``/app/mlruns/...``) are
relocated onto the host copy: the longest tail of the recorded path that exists under the
store's base directory wins.

Final metric values follow mlflow's "latest metric" rule: the point with the highest step, then
the latest timestamp.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..runtime.mlflow_model import MLMODEL, parse_block_yaml

SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class MetricPoint:
    value: float
    step: int
    timestamp: int  # ms since the epoch


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    name: str
    experiment_id: str
    start_time: int  # ms since the epoch
    artifact_uri: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, tuple[MetricPoint, ...]] = field(default_factory=dict)

    def final_metrics(self) -> dict[str, float]:
        return {k: max(points, key=lambda p: (p.step, p.timestamp)).value
                for k, points in self.metrics.items() if points}


@dataclass(frozen=True)
class LoggedModel:
    model_id: str
    name: str
    run_id: str
    artifact_location: str


class TrackingError(UsageError):
    """A tracking store or a reference into it that cannot be read (names the URI and lookup)."""


# -- opening a store --------------------------------------------------------------------------
def open_store(uri: str, *, cwd: Path) -> FileStore | SqliteStore:
    """A tracking URI (``file:``, ``sqlite:``, or a plain path) -> a readable store."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "sqlite":
        # sqlite:///rel.db is relative to the working directory; sqlite:////abs.db is absolute
        raw = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else parsed.path
        path = Path(raw) if raw.startswith("/") else cwd / raw
        if not path.is_file():
            raise TrackingError(f"MLFLOW_TRACKING_URI={uri}: the database {path} does not exist",
                                "point MLFLOW_TRACKING_URI at the mlflow.db the runs were logged to")
        return SqliteStore(path, uri)
    if parsed.scheme in ("", "file"):
        raw = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else uri
        path = Path(raw) if raw.startswith("/") else cwd / raw
        if not path.is_dir():
            raise TrackingError(f"MLFLOW_TRACKING_URI={uri}: the directory {path} does not exist",
                                "point MLFLOW_TRACKING_URI at the mlruns/ directory the runs were logged to")
        return FileStore(path, uri)
    raise TrackingError(f"MLFLOW_TRACKING_URI={uri}: dockyard reads only file (mlruns/) and sqlite tracking "
                        "stores, not a tracking server",
                        "download the model first (mlflow artifacts download -u <uri> -d DIR) and pass "
                        "--model DIR")


def default_uri(environ: dict[str, str], project_dir: Path) -> str:
    """MLFLOW_TRACKING_URI, else the project's mlflow.db, else its mlruns/ (as mlflow would pick)."""
    if environ.get("MLFLOW_TRACKING_URI"):
        return environ["MLFLOW_TRACKING_URI"]
    if (project_dir / "mlflow.db").is_file():
        return f"sqlite:///{project_dir / 'mlflow.db'}"
    return str(project_dir / "mlruns")


def find_stores(root: Path, max_depth: int = 3) -> list[FileStore | SqliteStore]:
    """Tracking stores inside a training run's captured files: mlruns/ dirs and sqlite .db files."""
    stores: list[FileStore | SqliteStore] = []
    for path in _walk(root, max_depth):
        if path.is_dir() and path.name == "mlruns":
            stores.append(FileStore(path, path.as_uri()))
        elif path.is_file() and path.suffix == ".db" and _is_sqlite(path):
            try:
                store = SqliteStore(path, f"sqlite:///{path}")
                store.runs()
            except (sqlite3.Error, TrackingError):
                continue  # some other sqlite database
            stores.append(store)
    return stores


def _walk(root: Path, depth: int) -> Iterator[Path]:
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        yield entry
        if entry.is_dir() and not entry.is_symlink() and depth > 1 and entry.name != "mlruns":
            yield from _walk(entry, depth - 1)


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


class _Store:
    uri: str
    base: Path  # where relative and relocated paths are looked up

    def runs(self) -> list[TrackedRun]:
        raise NotImplementedError

    def run(self, run_id: str) -> TrackedRun | None:
        return next((r for r in self.runs() if r.run_id == run_id), None)

    def logged_models(self) -> list[LoggedModel]:
        raise NotImplementedError

    def model_version(self, name: str, version: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def versions(self, name: str) -> list[int]:
        raise NotImplementedError

    def alias(self, name: str, alias: str) -> str | None:
        raise NotImplementedError

    def local_path(self, uri: str) -> Path | None:
        """A recorded artifact location -> an existing path on this host, or None."""
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme not in ("", "file"):
            return None
        raw = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else uri
        path = Path(raw) if raw.startswith("/") else self.base / raw
        if path.exists():
            return path
        parts = Path(raw).parts
        for i in range(1, len(parts) - 1):  # the longest tail of two or more parts that exists here
            candidate = self.base.joinpath(*parts[i:])
            if candidate.exists():
                return candidate
        return None


class FileStore(_Store):
    def __init__(self, root: Path, uri: str) -> None:
        self.root, self.uri, self.base = root, uri, root.parent

    def _experiments(self) -> Iterator[Path]:
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and entry.name not in ("models", ".trash") and (entry / "meta.yaml").is_file():
                yield entry

    def runs(self) -> list[TrackedRun]:
        out = []
        for exp in self._experiments():
            for run_dir in sorted(exp.iterdir()):
                meta = _yaml(run_dir / "meta.yaml")
                if not run_dir.is_dir() or run_dir.name == "models" or not meta.get("run_id"):
                    continue
                out.append(TrackedRun(
                    run_id=str(meta["run_id"]), name=str(meta.get("run_name") or ""),
                    experiment_id=exp.name, start_time=int(meta.get("start_time") or 0),
                    artifact_uri=str(meta.get("artifact_uri") or ""),
                    params=_files_text(run_dir / "params"), metrics=_metric_files(run_dir / "metrics")))
        return sorted(out, key=lambda r: r.start_time)

    def logged_models(self) -> list[LoggedModel]:
        out = []
        for exp in self._experiments():
            models = exp / "models"
            for model_dir in sorted(models.iterdir()) if models.is_dir() else []:
                meta = _yaml(model_dir / "meta.yaml")
                if meta.get("model_id"):
                    out.append(LoggedModel(str(meta["model_id"]), str(meta.get("name") or ""),
                                           str(meta.get("source_run_id") or ""),
                                           str(meta.get("artifact_location") or "")))
        return out

    def model_version(self, name: str, version: str) -> dict[str, Any] | None:
        meta = _yaml(self.root / "models" / name / f"version-{version}" / "meta.yaml")
        return meta or None

    def versions(self, name: str) -> list[int]:
        folder = self.root / "models" / name
        found = [p.name.removeprefix("version-") for p in folder.glob("version-*")] if folder.is_dir() else []
        return sorted(int(v) for v in found if v.isdigit())

    def alias(self, name: str, alias: str) -> str | None:
        path = self.root / "models" / name / "aliases" / alias
        return path.read_text().strip() if path.is_file() else None


class SqliteStore(_Store):
    def __init__(self, path: Path, uri: str) -> None:
        self.path, self.uri, self.base = path, uri, path.parent

    def _query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        try:
            conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise TrackingError(f"{self.uri}: cannot open the database ({exc})", "check the file") from None
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise TrackingError(f"{self.uri}: not an MLflow tracking database ({exc})",
                                "point MLFLOW_TRACKING_URI at the mlflow.db the runs were logged to") from None
        finally:
            conn.close()

    def runs(self) -> list[TrackedRun]:
        rows = self._query("SELECT run_uuid, name, experiment_id, start_time, artifact_uri FROM runs "
                           "WHERE lifecycle_stage = 'active' ORDER BY start_time")
        params: dict[str, dict[str, str]] = {}
        for key, value, run in self._query("SELECT key, value, run_uuid FROM params"):
            params.setdefault(run, {})[key] = str(value)
        metrics: dict[str, dict[str, list[MetricPoint]]] = {}
        for key, value, ts, step, run in self._query(
                "SELECT key, value, timestamp, step, run_uuid FROM metrics WHERE is_nan = 0 "
                "ORDER BY step, timestamp"):
            metrics.setdefault(run, {}).setdefault(key, []).append(MetricPoint(float(value), int(step), int(ts)))
        return [TrackedRun(run_id=r, name=str(n or ""), experiment_id=str(e), start_time=int(s or 0),
                           artifact_uri=str(a or ""), params=params.get(r, {}),
                           metrics={k: tuple(v) for k, v in metrics.get(r, {}).items()})
                for r, n, e, s, a in rows]

    def logged_models(self) -> list[LoggedModel]:
        return [LoggedModel(str(m), str(n or ""), str(r or ""), str(a or "")) for m, n, r, a in self._query(
            "SELECT model_id, name, source_run_id, artifact_location FROM logged_models "
            "WHERE lifecycle_stage = 'active'")]

    def model_version(self, name: str, version: str) -> dict[str, Any] | None:
        rows = self._query("SELECT source, storage_location, run_id FROM model_versions "
                           "WHERE name = ? AND version = ?", name, int(version))
        if not rows:
            return None
        source, storage, run = rows[0]
        return {"source": source, "storage_location": storage, "run_id": run}

    def versions(self, name: str) -> list[int]:
        return sorted(int(v) for (v,) in self._query("SELECT version FROM model_versions WHERE name = ?", name))

    def alias(self, name: str, alias: str) -> str | None:
        rows = self._query("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", name, alias)
        return str(rows[0][0]) if rows else None


# -- small readers ------------------------------------------------------------------------------
def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = parse_block_yaml(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _files_text(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_text(encoding="utf-8", errors="replace").strip()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _metric_files(folder: Path) -> dict[str, tuple[MetricPoint, ...]]:
    out: dict[str, tuple[MetricPoint, ...]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        points, seen = [], set()
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            try:
                point = MetricPoint(float(parts[1]), int(parts[2]) if len(parts) > 2 else 0, int(parts[0]))
            except (IndexError, ValueError):
                continue
            if point.value != point.value or (point.step, point.timestamp, point.value) in seen:  # NaN, repeats
                continue
            seen.add((point.step, point.timestamp, point.value))
            points.append(point)
        out[str(path.relative_to(folder))] = tuple(points)
    return out


def mlmodel_dirs(root: Path) -> list[Path]:
    """Every MLflow model directory under ``root``, newest (by MLmodel's utc_time_created) first."""
    found = [p.parent for p in root.rglob(MLMODEL) if p.is_file()]

    def created(d: Path) -> str:
        return str(_yaml(d / MLMODEL).get("utc_time_created") or "")

    return sorted(found, key=lambda d: (created(d), str(d)), reverse=True)
