"""The local model store: content-addressed blobs, per-version records and one index.

Layout under the root (default ``$DOCKYARD_HOME/store``)::

    store.lock                  flock: exclusive for writers, shared for readers
    index.json                  {"schema": 1, "models": {name: {"next": N, "versions": {N: sha}}}}
    models/<name>/<N>.json      one record per version (sha256 of the file kept in the index)
    blobs/sha256/<hex>          artifact contents, read-only, shared between versions
    runs/<run-id>/              failed runs: record.json + logs.txt (never versions)
    tmp/stage-*/                blobs being hashed before they are committed

Commit order is blobs -> record (temp + rename) -> index (temp + rename). The index is the
truth: a record that is not in it does not exist, so a crash at any point leaves the store as
it was (plus garbage that ``gc`` removes). A damaged index is reported, never rewritten;
``rebuild_index`` is the explicit repair.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal

from ..errors import StoreError
from .. import fsio
from .diff import VersionDiff, diff_versions
from .fingerprint import iter_files
from .metrics import read_metrics, read_params
from .records import Artifact, FailedRun, ModelVersion, RunRecord, describe_failure, utc_now
from .refs import Ref, parse_ref, validate_name, validate_run_id

INDEX_SCHEMA = 1
STALE_S = 3600  # a staging dir without a lock this old belongs to a crashed writer
FIX_FSCK = ("run `dockyard models fsck` to see the damage, then `dockyard models fsck --repair`"
            " to rebuild the index from the version records (the damaged file is kept)")


def default_root() -> Path:
    """``$DOCKYARD_HOME/store``, else ``$XDG_DATA_HOME/dockyard/store``, else ~/.local/share."""
    home = os.environ.get("DOCKYARD_HOME")
    if home:
        return Path(home).expanduser() / "store"
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "dockyard" / "store"


@dataclass(frozen=True)
class ModelSummary:
    name: str
    versions: tuple[int, ...]

    @property
    def latest(self) -> int:
        return self.versions[-1]


@dataclass(frozen=True)
class Problem:
    """One finding of ``verify``: errors make the store unusable, warnings are garbage."""

    severity: Literal["error", "warning"]
    path: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.problem}\n  fix: {self.fix}"


@dataclass(frozen=True)
class GcResult:
    blobs_removed: int
    bytes_freed: int
    temp_removed: int


@dataclass(frozen=True)
class _Entry:
    next: int
    versions: Mapping[int, str]  # version -> sha256 of its record file


@dataclass(frozen=True)
class _Index:
    models: Mapping[str, _Entry]

    def to_bytes(self) -> bytes:
        doc = {"schema": INDEX_SCHEMA, "models": {
            name: {"next": e.next, "versions": {str(v): s for v, s in sorted(e.versions.items())}}
            for name, e in sorted(self.models.items())}}
        return _dumps(doc)

    def with_entry(self, name: str, entry: _Entry) -> _Index:
        return _Index({**self.models, name: entry})


@dataclass(frozen=True)
class _Blob:
    sha256: str
    size: int
    staged: Path


def _dumps(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


class Store:
    """A model store rooted at ``root`` (see module docstring for the layout)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.index_path = self.root / "index.json"
        self.lock_path = self.root / "store.lock"
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.models_dir = self.root / "models"
        self.runs_dir = self.root / "runs"
        self.tmp_dir = self.root / "tmp"

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # --- writing ------------------------------------------------------------------------

    def record_success(self, run: RunRecord, outputs_dir: Path, *,
                       logs: str | None = None) -> ModelVersion:
        """Store every file under ``outputs_dir`` as the next version of ``run.name``.

        Metrics and params logged to ``outputs_dir/metrics.json`` are merged in; values on
        ``run`` (e.g. ``--param``) win. Hashing happens outside the lock; only the renames
        and the index update are serialised.
        """
        validate_name(run.name)
        validate_run_id(run.run_id)
        if run.exit_status != 0:
            raise StoreError(
                f"run {run.run_id} exited with status {run.exit_status}; only successful runs"
                " become versions",
                "record it with Store.record_failure instead",
            )
        outputs = Path(outputs_dir)
        if not outputs.is_dir():
            raise StoreError(f"outputs directory {outputs} does not exist",
                             "pass the directory the run wrote $DOCKYARD_OUTPUTS to")
        files, skipped = iter_files(outputs)
        if not files:
            raise StoreError(f"run {run.run_id} wrote no files to {outputs}; nothing to version",
                             "make the training script save its model under $DOCKYARD_OUTPUTS")
        metrics = {**read_metrics(outputs), **run.metrics}
        params = {**read_params(outputs), **run.params}
        self._ensure_layout()
        with self._staging() as stage:
            blobs: dict[str, _Blob] = {}
            artifacts = []
            for rel, path in files:
                blob = self._stage_file(stage, path)
                blobs[blob.sha256] = blob
                artifacts.append(Artifact(rel, blob.sha256, blob.size))
            log_artifact = None
            if logs is not None:
                blob = self._stage_bytes(stage, logs.encode("utf-8", "replace"))
                blobs[blob.sha256] = blob
                log_artifact = Artifact("logs.txt", blob.sha256, blob.size)

            def build(version: int) -> ModelVersion:
                return ModelVersion(
                    name=run.name, version=version, created=utc_now(),
                    artifacts=tuple(artifacts), run_id=run.run_id, command=run.command,
                    image=run.image, started=run.started, ended=run.ended,
                    duration_s=run.duration_s, exit_status=run.exit_status, metrics=metrics,
                    params=params, git=run.git, code_hash=run.code_hash,
                    data_fingerprint=run.data_fingerprint, resources=run.resources,
                    logs=log_artifact, skipped=tuple(skipped))

            return self._commit(run.name, blobs, build)

    def record_failure(self, run: RunRecord, logs: str) -> FailedRun:
        """Keep a failed run (record + logs) under ``runs/<run-id>``; it never becomes a version."""
        validate_name(run.name)
        validate_run_id(run.run_id)
        if run.exit_status == 0 and not run.reason:
            raise StoreError(f"run {run.run_id} exited 0 and has no failure reason",
                             "record successful runs with Store.record_success")
        reason = run.reason or describe_failure(exit_status=run.exit_status)
        self._ensure_layout()
        target = self.runs_dir / run.run_id
        failed = FailedRun(run=run, reason=reason, recorded=utc_now(),
                           logs_path=target / "logs.txt")
        stage = self.runs_dir / f".stage-{uuid.uuid4().hex}"
        stage.mkdir()
        try:
            _write_durable(stage / "logs.txt", logs.encode("utf-8", "replace"))
            _write_durable(stage / "record.json", _dumps(failed.to_dict()))
            fsio.fsync_dir(stage)
            try:
                os.rename(stage, target)  # atomic; fails if the run id is already taken
            except OSError:
                raise StoreError(f"a run with id {run.run_id} is already recorded at {target}",
                                 "use a fresh run id for each run") from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        fsio.fsync_dir(self.runs_dir)
        return failed

    def rm(self, ref: str) -> ModelVersion:
        """Remove one version; blobs no other version uses are garbage-collected."""
        parsed = parse_ref(ref)
        if parsed.version is None and not ref.strip().endswith(":latest"):
            raise StoreError(f"{ref!r} names a model, not a version",
                             f"say which version to remove, e.g. {parsed.name}:N "
                             f"({self._versions_hint(parsed.name or '')})")
        with self._lock(exclusive=True):
            index = self._read_index()
            name, version = self._resolve(index, parsed)
            removed = self._load(index, name, version)
            entry = index.models[name]
            remaining = {v: s for v, s in entry.versions.items() if v != version}
            # Keep the entry (and its counter) so a removed number is never handed out again.
            index = index.with_entry(name, _Entry(entry.next, remaining))
            self._write_index(index)
            self._record_path(name, version).unlink(missing_ok=True)
            # The version is gone either way; if another record is damaged, keep every blob
            # (deleting on a partial view could destroy data) and let `verify` report it.
            with contextlib.suppress(StoreError):
                self._gc_locked(index)
        return removed

    def gc(self) -> GcResult:
        """Delete blobs no version references, and leftovers of crashed writers."""
        if not self.root.exists():
            return GcResult(0, 0, 0)
        with self._lock(exclusive=True):
            return self._gc_locked(self._read_index())

    def rebuild_index(self) -> list[Problem]:
        """Repair: rebuild index.json from the version records (explicit, never automatic).

        The old index is kept as ``index.json.corrupt-<time>`` (or ``.bak-<time>`` when it
        was readable). Records that are damaged or miss blobs are left out and reported.
        """
        self._ensure_layout()
        with self._lock(exclusive=True):
            old: _Index | None
            try:
                old = self._read_index()
            except StoreError:
                old = None
            models: dict[str, _Entry] = {}
            skipped: list[Problem] = []
            for name, version, path in self._record_files():
                data = path.read_bytes()
                problems = self._check_record(name, version, data, path, {})
                if problems:
                    skipped += [Problem("warning", p.path, p.problem + " (left out of the index)",
                                        p.fix) for p in problems]
                    continue
                entry = models.get(name, _Entry(1, {}))
                models[name] = _Entry(max(entry.next, version + 1),
                                      {**entry.versions, version: fsio.sha256_bytes(data)})
            if old is not None:  # never hand out a number the old index already used
                for name, e in old.models.items():
                    cur = models.get(name, _Entry(1, {}))
                    models[name] = _Entry(max(cur.next, e.next), cur.versions)
            if self.index_path.exists():
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                kind = "bak" if old is not None else "corrupt"
                os.replace(self.index_path, self.index_path.with_name(f"index.json.{kind}-{stamp}"))
            self._write_index(_Index(models))
        return skipped

    # --- reading ------------------------------------------------------------------------

    def list_models(self) -> list[ModelSummary]:
        with self._lock(exclusive=False):
            index = self._read_index()
        return [ModelSummary(name, tuple(sorted(e.versions)))
                for name, e in sorted(index.models.items()) if e.versions]

    def list_versions(self, name: str) -> list[ModelVersion]:
        validate_name(name)
        with self._lock(exclusive=False):
            index = self._read_index()
            if not index.models.get(name, _Entry(1, {})).versions:
                raise self._unknown_model(index, name)
            return [self._load(index, name, v) for v in sorted(index.models[name].versions)]

    def get(self, ref: str) -> ModelVersion:
        """``name:N``, ``name:latest`` or ``name`` (latest)."""
        with self._lock(exclusive=False):
            index = self._read_index()
            return self._load(index, *self._resolve(index, parse_ref(ref)))

    def diff(self, a: str, b: str) -> VersionDiff:
        """Compare two versions. One side may be a bare number/``latest``: it takes the other
        side's model, or the store's only model (``diff("1", "2")``)."""
        ra, rb = parse_ref(a, allow_bare_version=True), parse_ref(b, allow_bare_version=True)
        with self._lock(exclusive=False):
            index = self._read_index()
            name = ra.name or rb.name or self._only_model(index, a, b)
            ra, rb = Ref(ra.name or name, ra.version), Ref(rb.name or name, rb.version)
            va = self._load(index, *self._resolve(index, ra))
            vb = self._load(index, *self._resolve(index, rb))
        return diff_versions(va, vb)

    def failed_runs(self, name: str | None = None) -> list[FailedRun]:
        if not self.runs_dir.is_dir():
            return []
        runs = [self.failed_run(p.name) for p in self.runs_dir.iterdir()
                if p.is_dir() and not p.name.startswith(".")]
        return sorted((r for r in runs if name is None or r.run.name == name),
                      key=lambda r: r.run.started)

    def failed_run(self, run_id: str) -> FailedRun:
        validate_run_id(run_id)
        path = self.runs_dir / run_id / "record.json"
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise StoreError(f"no failed run with id {run_id} in {self.runs_dir}",
                             "list failed runs with `dockyard models runs`") from None
        except json.JSONDecodeError as exc:
            raise StoreError(f"{path} is not valid JSON ({exc.msg})",
                             "delete the run directory; its logs are in logs.txt") from None
        return FailedRun.from_dict(data, str(path), path.parent / "logs.txt")

    def artifact_path(self, ref: str, relpath: str) -> Path:
        """The verified blob holding ``relpath`` of ``ref`` (read-only; copy before editing)."""
        version = self.get(ref)
        art = version.artifact(relpath)
        if art is None:
            names = ", ".join(a.path for a in version.artifacts[:10])
            more = " ..." if len(version.artifacts) > 10 else ""
            raise StoreError(f"{version.ref} has no artifact {relpath!r}",
                             f"artifacts of {version.ref}: {names}{more}")
        with open(os.devnull, "wb") as sink:
            self._copy_blob(art, sink, f"{version.ref} {art.path}")
        return self._blob_path(art.sha256)

    def materialize(self, ref: str, dest_dir: Path) -> Path:
        """Copy the artifacts of ``ref`` into ``dest_dir`` (which must be absent or empty),
        checking every sha256 on the way; the directory appears complete or not at all."""
        dest = Path(dest_dir)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise StoreError(f"{dest} already exists and is not an empty directory",
                             "choose a new or empty directory to copy the model into")
        dest.parent.mkdir(parents=True, exist_ok=True)
        stage = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.partial"
        try:
            with self._lock(exclusive=False):
                index = self._read_index()
                version = self._load(index, *self._resolve(index, parse_ref(ref)))
                for art in version.artifacts:
                    target = stage / art.path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as out:
                        self._copy_blob(art, out, f"{version.ref} {art.path}")
            if dest.exists():
                dest.rmdir()
            os.rename(stage, dest)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return dest

    def export(self, ref: str, dest: Path) -> Path:
        """Write ``ref`` (record + artifacts) as one reproducible ``.tar.gz``; returns its path."""
        from .archive import export_version

        return export_version(self, ref, Path(dest))

    def import_(self, archive: Path, *, name: str | None = None) -> ModelVersion:
        """Import an exported archive as the next version (of ``name`` or its own name)."""
        from .archive import import_archive

        return import_archive(self, Path(archive), name=name)

    # --- verification -------------------------------------------------------------------

    def verify(self) -> list[Problem]:
        """Check everything (index, records, every blob's sha256); never raises on damage."""
        if not self.root.exists():
            return []
        problems: list[Problem] = []
        with self._lock(exclusive=False):
            try:
                index = self._read_index()
            except StoreError as exc:
                return [Problem("error", str(self.index_path), exc.problem, exc.fix)]
            checked: dict[str, bool] = {}
            referenced: set[str] = set()
            for name, entry in sorted(index.models.items()):
                for version, sha in sorted(entry.versions.items()):
                    path = self._record_path(name, version)
                    try:
                        data = path.read_bytes()
                    except FileNotFoundError:
                        problems.append(Problem("error", str(path),
                                                f"index lists {name}:{version} but its record"
                                                " is missing", FIX_FSCK))
                        continue
                    if fsio.sha256_bytes(data) != sha:
                        problems.append(Problem("error", str(path),
                                                "record changed after it was written"
                                                " (sha256 differs from the index)", FIX_FSCK))
                    problems += self._check_record(name, version, data, path, checked)
                    with contextlib.suppress(StoreError, ValueError):
                        referenced |= _blob_refs(ModelVersion.from_dict(json.loads(data), ""))
            problems += self._garbage(index, referenced)
            problems += self._check_failed_runs()
        return problems

    # --- internals: commit --------------------------------------------------------------

    def _commit(self, name: str, blobs: Mapping[str, _Blob],
                build: Callable[[int], ModelVersion]) -> ModelVersion:
        with self._lock(exclusive=True):
            index = self._read_index()
            entry = index.models.get(name, _Entry(1, {}))
            version = entry.next
            for blob in blobs.values():
                os.replace(blob.staged, self._blob_path(blob.sha256))
            fsio.fsync_dir(self.blobs_dir)
            record = build(version)
            data = _dumps(record.to_dict())
            path = self._record_path(name, version)
            path.parent.mkdir(parents=True, exist_ok=True)
            fsio.atomic_write_bytes(path, data, mode=0o444)
            try:
                versions = {**entry.versions, version: fsio.sha256_bytes(data)}
                self._write_index(index.with_entry(name, _Entry(version + 1, versions)))
            except BaseException:
                path.unlink(missing_ok=True)  # not indexed = not there; tidy it anyway
                raise
        return record

    @contextlib.contextmanager
    def _staging(self) -> Iterator[Path]:
        """A private dir under tmp/ for blobs being hashed; its lock tells gc it is alive."""
        stage = self.tmp_dir / f"stage-{uuid.uuid4().hex}"
        stage.mkdir(parents=True)
        lock = stage / ".lock"
        lock.touch()
        try:
            with fsio.flock(lock, exclusive=True):
                yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _stage_file(self, stage: Path, src: Path) -> _Blob:
        try:
            with open(src, "rb") as fh:
                return self._stage_stream(stage, fh)
        except OSError as exc:
            raise StoreError(f"cannot read output file {src}: {exc.strerror}",
                             "check its permissions (container runs write as uid 10001)") from None

    def _stage_bytes(self, stage: Path, data: bytes) -> _Blob:
        import io

        return self._stage_stream(stage, io.BytesIO(data))

    def _stage_stream(self, stage: Path, src: IO[bytes], limit: int | None = None) -> _Blob:
        target = stage / uuid.uuid4().hex
        with open(target, "wb") as out:
            sha, size = fsio.copy_hashing(src, out, limit=limit)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(target, 0o444)  # blobs are immutable; editing one would corrupt every user
        return _Blob(sha, size, target)

    def _write_index(self, index: _Index) -> None:
        fsio.atomic_write_bytes(self.index_path, index.to_bytes())

    # --- internals: reading -------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, *, exclusive: bool) -> Iterator[None]:
        if not exclusive and not self.root.exists():
            yield  # nothing to read, nothing to lock; reading never creates the store
            return
        if exclusive:
            self._ensure_layout()
        with fsio.flock(self.lock_path, exclusive=exclusive):
            yield

    def _ensure_layout(self) -> None:
        for d in (self.blobs_dir, self.models_dir, self.runs_dir, self.tmp_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the model store at {self.root}: {exc.strerror}",
                                 "set DOCKYARD_HOME to a writable directory") from None

    def _read_index(self) -> _Index:
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError:
            stray = sum(1 for _ in self._record_files())
            if stray:
                raise StoreError(f"{self.index_path} is missing but {stray} version record(s)"
                                 f" exist under {self.models_dir}", FIX_FSCK) from None
            return _Index({})
        return _parse_index(raw, self.index_path)

    def _resolve(self, index: _Index, ref: Ref) -> tuple[str, int]:
        name = ref.name or ""
        entry = index.models.get(name)
        if entry is None or not entry.versions:
            raise self._unknown_model(index, name)
        if ref.version is None:
            return name, max(entry.versions)
        if ref.version not in entry.versions:
            raise StoreError(f"{name}:{ref.version} does not exist",
                             f"existing versions of {name}: {_fmt_versions(entry.versions)}"
                             f" (latest: {name}:{max(entry.versions)})")
        return name, ref.version

    def _unknown_model(self, index: _Index, name: str) -> StoreError:
        names = [n for n, e in sorted(index.models.items()) if e.versions]
        fix = (f"existing models: {', '.join(names)}" if names
               else "the store is empty; create a version with `dockyard train`")
        return StoreError(f"no model named {name!r} in the store at {self.root}", fix)

    def _only_model(self, index: _Index, a: str, b: str) -> str:
        names = [n for n, e in sorted(index.models.items()) if e.versions]
        if len(names) == 1:
            return names[0]
        raise StoreError(f"{a!r} and {b!r} do not say which model to compare",
                         f"write NAME:N (models: {', '.join(names) or 'none'})")

    def _versions_hint(self, name: str) -> str:
        with self._lock(exclusive=False):
            entry = self._read_index().models.get(name)
        return (f"existing: {_fmt_versions(entry.versions)}" if entry and entry.versions
                else "no versions stored")

    def _load(self, index: _Index, name: str, version: int) -> ModelVersion:
        """Read a record the index lists, checking its hash and that its blobs exist."""
        path = self._record_path(name, version)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"index lists {name}:{version} but its record {path} is missing",
                             FIX_FSCK) from None
        if fsio.sha256_bytes(data) != index.models[name].versions[version]:
            raise StoreError(f"record {path} changed after it was written"
                             " (sha256 differs from the index)", FIX_FSCK)
        record = _parse_record(data, path)
        for art in record.artifacts:
            blob = self._blob_path(art.sha256)
            try:
                size = blob.stat().st_size
            except FileNotFoundError:
                raise StoreError(f"blob {blob} of {name}:{version} ({art.path}) is missing",
                                 FIX_FSCK) from None
            if size != art.size:
                raise StoreError(f"blob {blob} of {name}:{version} ({art.path}) is corrupt:"
                                 f" {size} bytes, expected {art.size}", FIX_FSCK)
        return record

    def _copy_blob(self, art: Artifact, out: BinaryIO, what: str) -> None:
        blob = self._blob_path(art.sha256)
        try:
            with open(blob, "rb") as fh:
                sha, size = fsio.copy_hashing(fh, out)
        except FileNotFoundError:
            raise StoreError(f"blob {blob} for {what} is missing", FIX_FSCK) from None
        if sha != art.sha256 or size != art.size:
            raise StoreError(f"blob {blob} for {what} is corrupt: its sha256 no longer matches",
                             FIX_FSCK)

    def _record_path(self, name: str, version: int) -> Path:
        return self.models_dir / name / f"{version}.json"

    def _blob_path(self, sha256: str) -> Path:
        return self.blobs_dir / sha256

    def _record_files(self) -> Iterator[tuple[str, int, Path]]:
        if not self.models_dir.is_dir():
            return
        for model in sorted(self.models_dir.iterdir()):
            if not model.is_dir():
                continue
            for rec in sorted(model.glob("*.json")):
                if rec.stem.isdigit():
                    yield model.name, int(rec.stem), rec

    # --- internals: checks and garbage --------------------------------------------------

    def _check_record(self, name: str, version: int, data: bytes, path: Path,
                      checked: dict[str, bool]) -> list[Problem]:
        """Parse a record and fully hash its blobs (``checked`` caches blob results)."""
        try:
            record = _parse_record(data, path)
        except StoreError as exc:
            return [Problem("error", str(path), exc.problem, exc.fix)]
        if (record.name, record.version) != (name, version):
            return [Problem("error", str(path), f"record says {record.ref}, file is"
                            f" {name}:{version}", FIX_FSCK)]
        problems = []
        arts = list(record.artifacts) + ([record.logs] if record.logs else [])
        for art in arts:
            if art.sha256 not in checked:
                checked[art.sha256] = self._blob_ok(art)
            if not checked[art.sha256]:
                blob = self._blob_path(art.sha256)
                state = "missing" if not blob.exists() else "corrupt (sha256 mismatch)"
                problems.append(Problem("error", str(blob),
                                        f"blob of {record.ref} ({art.path}) is {state}",
                                        "restore it from an export (`dockyard models import`) or"
                                        f" remove the version (`dockyard models rm {record.ref}`)"))
        return problems

    def _blob_ok(self, art: Artifact) -> bool:
        try:
            sha, size = fsio.hash_file(self._blob_path(art.sha256))
        except OSError:
            return False
        return sha == art.sha256 and size == art.size

    def _garbage(self, index: _Index, referenced: set[str]) -> list[Problem]:
        out: list[Problem] = []
        for name, version, path in self._record_files():
            if version not in index.models.get(name, _Entry(1, {})).versions:
                out.append(Problem("warning", str(path), "record is not in the index (left by an"
                                   " interrupted write or rm); it is ignored",
                                   "delete it, or `dockyard models fsck --repair` to index it"))
        if self.blobs_dir.is_dir():
            stray = [b for b in self.blobs_dir.iterdir() if b.name not in referenced]
            if stray:
                out.append(Problem("warning", str(self.blobs_dir),
                                   f"{len(stray)} blob(s) no version uses",
                                   "run `dockyard models gc` to delete them"))
        return out

    def _check_failed_runs(self) -> list[Problem]:
        out = []
        if self.runs_dir.is_dir():
            for run in sorted(self.runs_dir.iterdir()):
                if run.is_dir() and not run.name.startswith("."):
                    try:
                        self.failed_run(run.name)
                    except StoreError as exc:
                        out.append(Problem("error", str(run), exc.problem, exc.fix))
        return out

    def _gc_locked(self, index: _Index) -> GcResult:
        referenced: set[str] = set()
        for name, entry in index.models.items():
            for version, sha in entry.versions.items():
                path = self._record_path(name, version)
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    raise StoreError(f"index lists {name}:{version} but its record {path} is"
                                     " missing; not collecting garbage", FIX_FSCK) from None
                if fsio.sha256_bytes(data) != sha:
                    raise StoreError(f"record {path} changed after it was written;"
                                     " not collecting garbage", FIX_FSCK)
                referenced |= _blob_refs(_parse_record(data, path))
        removed = freed = 0
        if self.blobs_dir.is_dir():
            for blob in self.blobs_dir.iterdir():
                if blob.name not in referenced:
                    freed += blob.stat().st_size
                    blob.unlink()
                    removed += 1
        return GcResult(removed, freed, self._remove_stale_temp())

    def _remove_stale_temp(self) -> int:
        """Staging dirs whose lock nobody holds belong to crashed writers."""
        count = 0
        if self.tmp_dir.is_dir():
            for stage in self.tmp_dir.iterdir():
                fd = fsio.try_flock_nonblocking(stage / ".lock")
                if fd is None and (stage / ".lock").exists():
                    continue  # a live writer holds it
                if fd is None and time.time() - stage.stat().st_mtime < STALE_S:
                    continue  # just created; its writer has not locked it yet
                shutil.rmtree(stage, ignore_errors=True)
                if fd is not None:
                    os.close(fd)
                count += 1
        for leftover in [*self.root.glob(".*.tmp"), *self.models_dir.glob("*/.*.tmp")]:
            leftover.unlink(missing_ok=True)  # temp files of writes that held this same lock
            count += 1
        return count


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _blob_refs(record: ModelVersion) -> set[str]:
    refs = {a.sha256 for a in record.artifacts}
    if record.logs:
        refs.add(record.logs.sha256)
    return refs


def _fmt_versions(versions: Mapping[int, str] | set[int]) -> str:
    return ", ".join(str(v) for v in sorted(versions))


def _parse_record(data: bytes, path: Path) -> ModelVersion:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"record {path} is not valid JSON ({exc})", FIX_FSCK) from None
    return ModelVersion.from_dict(doc, str(path))


def _parse_index(raw: bytes, path: Path) -> _Index:
    def bad(why: str) -> StoreError:
        return StoreError(f"model store index {path} is corrupt: {why}", FIX_FSCK)

    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise bad("expected a JSON object")
    if doc.get("schema") != INDEX_SCHEMA:
        raise bad(f"schema is {doc.get('schema')!r}, this dockyard reads schema {INDEX_SCHEMA}")
    models = doc.get("models")
    if not isinstance(models, dict):
        raise bad("'models' must be an object")
    out: dict[str, _Entry] = {}
    for name, entry in models.items():
        try:
            validate_name(name)
        except StoreError:
            raise bad(f"invalid model name {name!r}") from None
        if not isinstance(entry, dict):
            raise bad(f"entry for {name!r} must be an object")
        nxt, versions = entry.get("next"), entry.get("versions")
        if isinstance(nxt, bool) or not isinstance(nxt, int) or not isinstance(versions, dict):
            raise bad(f"entry for {name!r} needs an integer 'next' and a 'versions' object")
        parsed: dict[int, str] = {}
        for key, sha in versions.items():
            if not key.isdigit() or not isinstance(sha, str) or len(sha) != 64:
                raise bad(f"{name!r} version {key!r} must map a number to a record sha256")
            parsed[int(key)] = sha
        if parsed and max(parsed) >= nxt:
            raise bad(f"{name!r} lists version {max(parsed)} but 'next' is {nxt}")
        out[name] = _Entry(nxt, parsed)
    return _Index(out)
