"""Model names and version references: ``name``, ``name:N``, ``name:latest`` (and bare ``N``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import StoreError

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME = 128


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise StoreError saying why."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or len(name) > MAX_NAME:
        suggestion = re.sub(r"[^a-z0-9._-]+", "-", str(name).lower()).strip("-._") or "model"
        raise StoreError(
            f"invalid model name {name!r}: names are lowercase letters, digits, '.', '_' and '-',"
            f" start with a letter or digit, at most {MAX_NAME} characters",
            f"use a name like {suggestion[:MAX_NAME]!r}",
        )
    return name


def validate_run_id(run_id: str) -> str:
    """Run ids become directory names, so they must be plain path components."""
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id) or len(run_id) > 200:
        raise StoreError(
            f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-' only",
            "let dockyard generate the run id (train does) or pass a plain identifier",
        )
    return run_id


@dataclass(frozen=True)
class Ref:
    """A parsed reference. ``name`` None means "the model named elsewhere";
    ``version`` None means latest."""

    name: str | None
    version: int | None

    def __str__(self) -> str:
        name = self.name or "?"
        return f"{name}:{self.version}" if self.version is not None else f"{name}:latest"


def parse_ref(text: str, *, allow_bare_version: bool = False) -> Ref:
    """Parse ``name``, ``name:N``, ``name:latest`` and, where allowed, a bare ``N``/``latest``."""
    if not isinstance(text, str) or not text.strip():
        raise StoreError("empty model reference", "use NAME, NAME:N or NAME:latest, e.g. digits:2")
    text = text.strip()
    if allow_bare_version and (text.isdigit() or text == "latest"):
        return Ref(None, _parse_version(text, text, "NAME"))
    name, sep, version = text.partition(":")
    validate_name(name)
    if not sep:
        return Ref(name, None)
    return Ref(name, _parse_version(version, text, name))


def _parse_version(version: str, text: str, name: str) -> int | None:
    if version == "latest":
        return None
    if version.isdigit() and int(version) > 0:
        return int(version)
    hint = version[1:] if version[:1] in ("v", "V") and version[1:].isdigit() else "2"
    raise StoreError(
        f"invalid version {version!r} in {text!r}: versions are positive integers or 'latest'",
        f"write it as {name}:{hint}",
    )
