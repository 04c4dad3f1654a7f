"""Content fingerprints of directories (training data, outputs)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from ..errors import StoreError
from ..fsio import hash_file


def iter_files(root: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """Regular files under ``root`` as sorted (posix relpath, path), plus skipped entries.

    Symlinks are never followed: a link written by a container can point anywhere on the
    host, and following it would copy (or fingerprint) files outside the directory.
    """
    files: list[tuple[str, Path]] = []
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_unreadable, followlinks=False):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink():
                skipped.append((base / d).relative_to(root).as_posix())
                dirnames.remove(d)
        for f in filenames:
            path = base / f
            rel = path.relative_to(root).as_posix()
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                skipped.append(rel)
                continue
            (files.append((rel, path)) if stat.S_ISREG(mode) else skipped.append(rel))
    files.sort()
    skipped.sort()
    return files, skipped


def _unreadable(exc: OSError) -> None:
    # os.walk skips unreadable directories silently; a model missing half its files must not.
    raise StoreError(f"cannot read directory {exc.filename}: {exc.strerror}",
                     "check its permissions (files written in a container belong to uid 10001)")


def fingerprint_dir(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` over the sorted (relpath, size, sha256) of every regular file.

    Independent of mtimes, permissions and walk order, so the same data on another machine
    (or a fresh copy) has the same fingerprint, and any changed byte changes it.
    """
    root = Path(path)
    if not root.is_dir():
        raise StoreError(f"data directory {root} does not exist or is not a directory",
                         "pass an existing directory with --data")
    digest = hashlib.sha256()
    files, _ = iter_files(root)
    for rel, file in files:
        try:
            sha, size = hash_file(file)
        except OSError as exc:
            raise StoreError(f"cannot read {file}: {exc.strerror}",
                             "check the file's permissions") from None
        digest.update(f"{rel}\0{size}\0{sha}\n".encode())
    return f"sha256:{digest.hexdigest()}"
