"""Export a version as one ``.tar.gz`` and import it into another store.

Archive layout (all regular files, sorted, mtimes = the version's creation time, gzip
mtime 0, so the same version always exports to the same bytes)::

    dockyard-model.json     {"format": "dockyard.model-export/1", "record": {...}}
    artifacts/<relpath>     one per artifact
    logs.txt                the training logs, when the version has them

Import never extracts to disk by path: each expected member is streamed into a staging blob
and its sha256 checked against the record, so a hostile or damaged archive cannot write
outside the store or sneak in unrecorded files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import os
import tarfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from .. import fsio
from .records import Artifact, ModelVersion, Provenance, utc_now
from .refs import parse_ref, validate_name

if TYPE_CHECKING:
    from .store import Store, _Blob

MANIFEST = "dockyard-model.json"
FORMAT = "dockyard.model-export/1"
FIX_REEXPORT = "export it again from the source store (`dockyard models export NAME:N`)"


class _HashingReader:
    """File wrapper that hashes what tarfile reads from it, to verify blobs during export."""

    def __init__(self, fh: Any) -> None:
        import hashlib

        self.fh = fh
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.fh.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


def _dumps(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _target(version: ModelVersion, dest: Path) -> Path:
    if dest.is_dir():
        return dest / f"{version.name}-{version.version}.tar.gz"
    if not dest.name.endswith((".tar.gz", ".tgz")):
        raise StoreError(f"export target {dest} must end in .tar.gz (or be a directory)",
                         f"use e.g. {dest.with_name(f'{version.name}-{version.version}.tar.gz')}")
    if not dest.parent.is_dir():
        raise StoreError(f"directory {dest.parent} does not exist", "create it first")
    return dest


def export_version(store: Store, ref: str, dest: Path) -> Path:
    with store._lock(exclusive=False):  # keep a concurrent rm from collecting our blobs
        version = store.get(ref)
        target = _target(version, dest)
        tmp = fsio.temp_name(target)
        try:
            with open(tmp, "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                   compresslevel=6) as gz, \
                        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    mtime = int(version.created.timestamp())
                    manifest = _dumps({"format": FORMAT, "record": version.to_dict()})
                    tar.addfile(_info(MANIFEST, len(manifest), mtime), io.BytesIO(manifest))
                    members = [("artifacts/" + a.path, a) for a in version.artifacts]
                    if version.logs:
                        members.append(("logs.txt", version.logs))
                    for member, art in sorted(members, key=lambda m: m[0]):
                        _add_blob(store, tar, member, art, mtime, version.ref)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
    return target


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_blob(store: Store, tar: tarfile.TarFile, member: str, art: Artifact, mtime: int,
              ref: str) -> None:
    blob = store._blob_path(art.sha256)
    try:
        with open(blob, "rb") as fh:
            reader = _HashingReader(fh)
            tar.addfile(_info(member, art.size, mtime), reader)
    except FileNotFoundError:
        raise StoreError(f"blob {blob} for {ref} ({art.path}) is missing",
                         "run `dockyard models fsck` to see the damage") from None
    except OSError as exc:  # tarfile: "unexpected end of data" when the blob is short
        raise StoreError(f"blob {blob} for {ref} ({art.path}) is corrupt: {exc}",
                         "run `dockyard models fsck` to see the damage") from None
    if reader.digest.hexdigest() != art.sha256:
        raise StoreError(f"blob {blob} for {ref} ({art.path}) is corrupt: sha256 mismatch",
                         "run `dockyard models fsck` to see the damage")


def import_archive(store: Store, archive: Path, *, name: str | None = None) -> ModelVersion:
    if not archive.is_file():
        raise StoreError(f"archive {archive} does not exist",
                         "pass a file written by `dockyard models export`")
    if name is not None:
        validate_name(name)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            return _import(store, archive, tar, name)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise StoreError(f"{archive} is not a readable dockyard export ({exc})",
                         FIX_REEXPORT) from None


def _import(store: Store, archive: Path, tar: tarfile.TarFile, name: str | None) -> ModelVersion:
    members: dict[str, tarfile.TarInfo] = {}
    for m in tar.getmembers():
        if not m.isfile():
            raise StoreError(f"{archive}: member {m.name!r} is not a regular file;"
                             " exports hold only files", FIX_REEXPORT)
        if m.name in members:
            raise StoreError(f"{archive}: member {m.name!r} appears twice", FIX_REEXPORT)
        members[m.name] = m
    record, record_sha = _manifest(archive, tar, members)
    expected = {"artifacts/" + a.path: a for a in record.artifacts}
    if record.logs:
        expected["logs.txt"] = record.logs
    extra = sorted(set(members) - set(expected) - {MANIFEST})
    missing = sorted(set(expected) - set(members))
    if extra or missing:
        what = (f"unrecorded members {extra[:5]}" if extra else "") + \
               (f"{' and ' if extra else ''}missing members {missing[:5]}" if missing else "")
        raise StoreError(f"{archive}: {what}", FIX_REEXPORT)
    target_name = name or record.name
    store._ensure_layout()
    with store._staging() as stage:
        blobs: dict[str, _Blob] = {}
        for member, art in sorted(expected.items()):
            src = tar.extractfile(members[member])
            assert src is not None  # regular files always have a file object
            blob = store._stage_stream(stage, src)
            if blob.sha256 != art.sha256 or blob.size != art.size:
                raise StoreError(f"{archive}: {member} does not match its recorded sha256"
                                 " (the archive is damaged or was altered)", FIX_REEXPORT)
            blobs[blob.sha256] = blob
        provenance = Provenance(ref=record.ref, created=record.created, record_sha256=record_sha)

        def build(version: int) -> ModelVersion:
            return dataclasses.replace(record, name=target_name, version=version,
                                       created=utc_now(), imported_from=provenance)

        return store._commit(target_name, blobs, build)


def _manifest(archive: Path, tar: tarfile.TarFile,
              members: dict[str, tarfile.TarInfo]) -> tuple[ModelVersion, str]:
    if MANIFEST not in members:
        raise StoreError(f"{archive} has no {MANIFEST}; it is not a dockyard model export",
                         FIX_REEXPORT)
    src = tar.extractfile(members[MANIFEST])
    assert src is not None
    try:
        doc = json.loads(src.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{archive}: {MANIFEST} is not valid JSON ({exc})", FIX_REEXPORT) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else None
        raise StoreError(f"{archive}: unsupported export format {got!r} (expected {FORMAT!r})",
                         "import it with the dockyard version that exported it, or re-export")
    record = ModelVersion.from_dict(doc.get("record"), f"{archive}:{MANIFEST}")
    parse_ref(record.ref)  # the original name must itself be valid
    return record, fsio.sha256_bytes(_dumps(doc["record"]))
