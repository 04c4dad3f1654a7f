"""Filesystem helpers shared by the store, the lock writer, init and interop: atomic writes, hashing copies, locks.

Every durable write follows the same recipe: write a temp file in the *same* directory,
fsync it, ``os.replace`` it over the target, then fsync the directory. A crash at any point
leaves either the old file or the new one, never a half-written mix.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import StoreError

CHUNK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a rename is only durable once its directory is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(target: Path) -> Path:
    """A unique temp path next to ``target`` so the final rename stays on one filesystem."""
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write_bytes(target: Path, data: bytes, *, mode: int | None = 0o644) -> None:
    """Replace ``target`` with ``data`` atomically and durably (``mode=None``: as the umask makes it)."""
    tmp = temp_name(target)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def copy_hashing(src: IO[bytes], dst: IO[bytes], *, limit: int | None = None) -> tuple[str, int]:
    """Copy ``src`` into ``dst`` while hashing; returns (sha256 hex, bytes copied)."""
    digest = hashlib.sha256()
    size = 0
    while True:
        want = CHUNK if limit is None else min(CHUNK, limit - size)
        if want <= 0:
            break
        chunk = src.read(want)
        if not chunk:
            break
        digest.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 hex and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def flock(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory ``flock`` on ``path`` (created if missing) for the block.

    A shared lock on a read-only store falls back to opening the lock file read-only;
    readers of a store nobody can write to need no lock at all.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        if exclusive:
            raise StoreError(
                f"cannot write the model store lock {path}: permission denied",
                "make the store directory writable, or point DOCKYARD_HOME at a writable place",
            ) from None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            yield
            return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the last fd releases the flock


def try_flock_nonblocking(path: Path) -> int | None:
    """Take an exclusive lock without waiting; returns the fd, or None when someone holds it."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


#: folders this process holds a folder_lock on, with how many nested holds
_HELD: dict[str, int] = {}


@contextlib.contextmanager
def folder_lock(folder: Path, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on the directory itself (no lock file is created in it) for the
    block; nested calls in the same process pass through. ``on_wait`` is called once when another
    process holds it, before waiting for it."""
    key = str(folder.resolve())
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD[key] = 1
        yield
    finally:
        _HELD.pop(key, None)
        os.close(fd)  # closing the fd releases the flock
