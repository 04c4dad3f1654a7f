"""The values the store keeps: run records, model versions, failed runs (frozen, JSON-able).

``RunRecord`` is what the train verb knows about a finished container run. The store turns a
successful one into a ``ModelVersion`` (adding the version number and the artifacts it hashed)
and a failed one into a ``FailedRun``. Serialisation is hand-written so a damaged record is
reported with the file and the field that is wrong.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StoreError

RECORD_SCHEMA = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _as_utc(dt: datetime, what: str) -> datetime:
    if not isinstance(dt, datetime):
        raise StoreError(f"{what} must be a datetime, got {type(dt).__name__}",
                         "pass datetime.now(timezone.utc)")
    if dt.tzinfo is None:
        raise StoreError(f"{what} is a naive datetime (no time zone)",
                         "pass an aware datetime, e.g. datetime.now(timezone.utc)")
    return dt.astimezone(UTC)


def _freeze(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Artifact:
    """One file of a version: path relative to the outputs dir (POSIX), content hash, size."""

    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class GitInfo:
    commit: str | None = None
    dirty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty": self.dirty}


@dataclass(frozen=True)
class ImageInfo:
    """The image the run used: local ID always, registry digest when it was pushed/pulled."""

    id: str
    ref: str = ""
    digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ref": self.ref, "digest": self.digest}


@dataclass(frozen=True)
class Resources:
    """Limits as the user gave them (``--cpus 2 --memory 512m --gpus all``)."""

    cpus: float | None = None
    memory: str | None = None
    gpus: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cpus": self.cpus, "memory": self.memory, "gpus": self.gpus}


@dataclass(frozen=True)
class Provenance:
    """Where an imported version came from (its ref and record hash in the exporting store)."""

    ref: str
    created: datetime
    record_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "created": iso(self.created), "record_sha256": self.record_sha256}


def _metrics(values: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StoreError(f"metric {key!r} is {value!r}, not a number",
                             "metrics are numbers; record text values as params")
        out[str(key)] = float(value)
    return out


@dataclass(frozen=True)
class RunRecord:
    """Everything known about one training run, success or failure, before it is stored."""

    name: str
    run_id: str
    command: tuple[str, ...]
    image: ImageInfo
    started: datetime
    ended: datetime
    exit_status: int | None = 0
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    git: GitInfo = field(default_factory=GitInfo)
    code_hash: str = ""
    data_fingerprint: str | None = None
    resources: Resources = field(default_factory=Resources)
    reason: str = ""  # failures only: "exit 3", "oom-killed (memory limit 512m)", ...
    project: str = ""  # the project folder (absolute) that ran it: it owns the model name

    def __post_init__(self) -> None:
        command: str | Sequence[str] = self.command
        argv = shlex.split(command) if isinstance(command, str) else command
        _freeze(self, "command", tuple(argv))
        _freeze(self, "params", {str(k): str(v) for k, v in self.params.items()})
        _freeze(self, "metrics", _metrics(self.metrics))
        _freeze(self, "started", _as_utc(self.started, "started"))
        _freeze(self, "ended", _as_utc(self.ended, "ended"))

    @property
    def duration_s(self) -> float:
        return round((self.ended - self.started).total_seconds(), 3)


@dataclass(frozen=True)
class ModelVersion:
    """A stored model version ``name:N`` and its lineage."""

    name: str
    version: int
    created: datetime
    artifacts: tuple[Artifact, ...]
    run_id: str
    command: tuple[str, ...]
    image: ImageInfo
    started: datetime
    ended: datetime
    duration_s: float
    exit_status: int | None = 0
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    git: GitInfo = field(default_factory=GitInfo)
    code_hash: str = ""
    data_fingerprint: str | None = None
    resources: Resources = field(default_factory=Resources)
    logs: Artifact | None = None
    skipped: tuple[str, ...] = ()  # symlinks/special files under outputs that were not stored
    imported_from: Provenance | None = None
    project: str = ""  # the project folder that trained it ("" for imports and older records)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def size(self) -> int:
        return sum(a.size for a in self.artifacts)

    def artifact(self, relpath: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.path == relpath), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": RECORD_SCHEMA,
            "name": self.name,
            "version": self.version,
            "created": iso(self.created),
            "artifacts": [a.to_dict() for a in self.artifacts],
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "git": self.git.to_dict(),
            "code_hash": self.code_hash,
            "data_fingerprint": self.data_fingerprint,
            "image": self.image.to_dict(),
            "started": iso(self.started),
            "ended": iso(self.ended),
            "duration_s": self.duration_s,
            "resources": self.resources.to_dict(),
            "exit_status": self.exit_status,
            "command": list(self.command),
            "run_id": self.run_id,
            "logs": self.logs.to_dict() if self.logs else None,
            "skipped": list(self.skipped),
            "imported_from": self.imported_from.to_dict() if self.imported_from else None,
            "project": self.project,
        }

    @classmethod
    def from_dict(cls, data: object, source: str) -> ModelVersion:
        r = _Reader(data, source)
        if r.get("schema", int) != RECORD_SCHEMA:
            r.fail("schema", f"unsupported record schema (this dockyard reads {RECORD_SCHEMA})")
        logs = r.opt("logs", dict)
        prov = r.opt("imported_from", dict)
        return cls(
            name=r.get("name", str),
            version=r.get("version", int),
            created=r.time("created"),
            artifacts=tuple(_artifact(a, r, "artifacts") for a in r.get("artifacts", list)),
            metrics=r.number_map("metrics"),
            params=r.str_map("params"),
            git=GitInfo(**r.sub("git", {"commit": (str, type(None)), "dirty": bool})),
            code_hash=r.get("code_hash", str),
            data_fingerprint=r.opt("data_fingerprint", str),
            image=ImageInfo(**r.sub("image", {"id": str, "ref": str, "digest": (str, type(None))})),
            started=r.time("started"),
            ended=r.time("ended"),
            duration_s=float(r.get("duration_s", (int, float))),
            resources=Resources(**r.sub("resources", {"cpus": (int, float, type(None)),
                                                      "memory": (str, type(None)),
                                                      "gpus": (str, type(None))})),
            exit_status=r.opt("exit_status", int),
            command=tuple(str(c) for c in r.get("command", list)),
            run_id=r.get("run_id", str),
            logs=_artifact(logs, r, "logs") if logs is not None else None,
            skipped=tuple(str(s) for s in r.get("skipped", list)),
            imported_from=_provenance(prov, r) if prov is not None else None,
            project=r.opt("project", str) or "",
        )


@dataclass(frozen=True)
class FailedRun:
    """A run that did not produce a version; its logs live next to its record."""

    run: RunRecord
    reason: str
    recorded: datetime
    logs_path: Path

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "schema": RECORD_SCHEMA,
            "status": "failed",
            "reason": self.reason,
            "recorded": iso(self.recorded),
            "name": run.name,
            "run_id": run.run_id,
            "exit_status": run.exit_status,
            "command": list(run.command),
            "image": run.image.to_dict(),
            "started": iso(run.started),
            "ended": iso(run.ended),
            "duration_s": run.duration_s,
            "params": dict(run.params),
            "metrics": dict(run.metrics),
            "git": run.git.to_dict(),
            "code_hash": run.code_hash,
            "data_fingerprint": run.data_fingerprint,
            "resources": run.resources.to_dict(),
            "project": run.project,
        }

    @classmethod
    def from_dict(cls, data: object, source: str, logs_path: Path) -> FailedRun:
        r = _Reader(data, source)
        reason = r.get("reason", str)
        run = RunRecord(
            name=r.get("name", str),
            run_id=r.get("run_id", str),
            command=tuple(str(c) for c in r.get("command", list)),
            image=ImageInfo(**r.sub("image", {"id": str, "ref": str, "digest": (str, type(None))})),
            started=r.time("started"),
            ended=r.time("ended"),
            exit_status=r.opt("exit_status", int),
            params=r.str_map("params"),
            metrics=r.number_map("metrics"),
            git=GitInfo(**r.sub("git", {"commit": (str, type(None)), "dirty": bool})),
            code_hash=r.get("code_hash", str),
            data_fingerprint=r.opt("data_fingerprint", str),
            resources=Resources(**r.sub("resources", {"cpus": (int, float, type(None)),
                                                      "memory": (str, type(None)),
                                                      "gpus": (str, type(None))})),
            reason=reason,
            project=r.opt("project", str) or "",
        )
        return cls(run=run, reason=reason, recorded=r.time("recorded"), logs_path=logs_path)


def describe_failure(
    *,
    exit_status: int | None,
    oom_killed: bool = False,
    memory: str | None = None,
    timeout_s: float | None = None,
    interrupted: bool = False,
) -> str:
    """The one canonical wording for why a run failed (shown by the CLI and stored)."""
    if interrupted:
        return "interrupted"
    if timeout_s is not None:
        return f"timeout after {timeout_s:g}s"
    if oom_killed:
        return f"oom-killed (memory limit {memory})" if memory else "oom-killed"
    return f"exit {exit_status}" if exit_status is not None else "unknown failure"


# --- parsing helpers -------------------------------------------------------------------------


class _Reader:
    """Typed access to a parsed JSON object that reports the file and field on error."""

    def __init__(self, data: object, source: str) -> None:
        if not isinstance(data, dict):
            raise StoreError(f"{source}: expected a JSON object, got {type(data).__name__}",
                             _FIX_RECORD)
        self.data: dict[str, Any] = data
        self.source = source

    def fail(self, key: str, why: str) -> None:
        raise StoreError(f"{self.source}: field {key!r}: {why}", _FIX_RECORD)

    def get(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.data:
            self.fail(key, "missing")
        return self._check(key, self.data[key], kind)

    def opt(self, key: str, kind: type | tuple[type, ...]) -> Any:
        value = self.data.get(key)
        return None if value is None else self._check(key, value, kind)

    def _check(self, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(key, f"expected {_names(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            self.fail(key, f"expected {_names(kinds)}, got {type(value).__name__}")
        return value

    def time(self, key: str) -> datetime:
        text = self.get(key, str)
        try:
            return _as_utc(datetime.fromisoformat(text), key)
        except (ValueError, StoreError):
            self.fail(key, f"not an ISO 8601 UTC time: {text!r}")
            raise AssertionError("unreachable") from None

    def str_map(self, key: str) -> dict[str, str]:
        value = self.get(key, dict)
        if not all(isinstance(v, str) for v in value.values()):
            self.fail(key, "values must be strings")
        return dict(value)

    def number_map(self, key: str) -> dict[str, float]:
        value = self.get(key, dict)
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                self.fail(key, f"value of {k!r} must be a number")
        return {k: float(v) for k, v in value.items()}

    def sub(self, key: str, spec: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
        inner = _Reader(self.get(key, dict), f"{self.source} [{key}]")
        return {k: inner.get(k, t) for k, t in spec.items()}


_FIX_RECORD = "restore the file from a backup or `dockyard models export`, or remove the version"


def is_safe_relpath(path: str) -> bool:
    """True for ``a/b.txt``; False for absolute paths, ``..``, empty or ``.`` parts."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def _artifact(data: object, parent: _Reader, key: str) -> Artifact:
    r = _Reader(data, f"{parent.source} [{key}]")
    path, sha, size = r.get("path", str), r.get("sha256", str), r.get("size", int)
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        r.fail("sha256", f"not a sha256 hex digest: {sha!r}")
    if size < 0:
        r.fail("size", "negative")
    if not is_safe_relpath(path):
        r.fail("path", f"not a plain relative path: {path!r}")
    return Artifact(path=path, sha256=sha, size=size)


def _provenance(data: object, parent: _Reader) -> Provenance:
    r = _Reader(data, f"{parent.source} [imported_from]")
    return Provenance(ref=r.get("ref", str), created=r.time("created"),
                      record_sha256=r.get("record_sha256", str))
