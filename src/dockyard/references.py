"""One grammar for what a verb is pointed at: a model version, a registry alias, a path, an image.

Every verb that takes a model or an image (build, serve, predict's server, push, pull, promote,
scan, diff, deploy swarm/kubernetes, models) parses its argument here and nowhere else:

=================  ===========================================================================
form               meaning
=================  ===========================================================================
``PATH``           an existing file or folder, relative to the *current directory* (not the
                   project); also any text with a ``/`` or a model-file suffix, which then
                   must exist
``NAME@ALIAS``     a registry alias set by ``dockyard promote`` (resolved against a registry)
``runs:/…``        an MLflow model: ``runs:/RUN/PATH``, ``models:/NAME/N``, ``models:/NAME@ALIAS``,
``models:/…``      resolved against MLFLOW_TRACKING_URI (dockyard.interop.mlflow_refs)
``NAME:N``         stored model version N; its serving image is tagged ``NAME:N``
``NAME:latest``    the newest stored version (``NAME`` alone means the same)
anything else      an image reference or id docker knows (image verbs only)
=================  ===========================================================================

Invariant: the serving image of version ``NAME:N`` is tagged ``NAME:N`` by every verb that builds
it (serve, push, deploy), so image verbs find it under the same text the store uses.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from typing import TYPE_CHECKING

from .errors import UsageError
from .runtime import contract
from .store.refs import NAME_RE

if TYPE_CHECKING:  # annotations only: the verbs pass the store in
    from .store import ModelVersion, Store


class Kind(str, Enum):
    PATH = "path"
    VERSION = "version"
    ALIAS = "alias"
    MLFLOW = "mlflow"
    IMAGE = "image"


FORMS = "NAME:N, NAME:latest, NAME@ALIAS, runs:/… or models:/… (MLflow), or a model file/folder path"
MLFLOW_PREFIXES = ("runs:/", "models:/")
_ALIAS_RE = re.compile(r"[a-z][a-z0-9_-]*")
_VERSION_RE = re.compile(r"(latest|[1-9][0-9]*)")


@dataclass(frozen=True)
class Reference:
    text: str
    kind: Kind
    path: Path | None = None  # absolute, for PATH
    name: str | None = None  # for VERSION and ALIAS
    version: int | None = None  # for VERSION; None means the newest
    alias: str | None = None  # for ALIAS

    @property
    def version_text(self) -> str:
        return f"{self.name}:{self.version if self.version is not None else 'latest'}"


def parse(text: str, *, cwd: Path | None = None) -> Reference:
    """Classify ``text`` (see the module table). Paths resolve against ``cwd`` (default: the
    current directory)."""
    if not isinstance(text, str) or not text.strip():
        raise UsageError("empty reference", f"pass {FORMS}")
    text = text.strip()
    if text.startswith(MLFLOW_PREFIXES):
        return Reference(text, Kind.MLFLOW)
    base = cwd or Path.cwd()
    candidate = Path(text) if os.path.isabs(text) else base / text
    if candidate.exists():
        return Reference(text, Kind.PATH, path=candidate.resolve())
    if "/" in text or os.sep in text or contract.model_format(text) is not None and ":" not in text:
        raise UsageError(f"{text!r} looks like a path, but {candidate} does not exist",
                         "paths are relative to the current directory; check the spelling, or pass "
                         f"{FORMS}")
    name, at, alias = text.partition("@")
    if at:
        if not NAME_RE.fullmatch(name) or not _ALIAS_RE.fullmatch(alias):
            raise UsageError(f"invalid alias reference {text!r}",
                             "write NAME@ALIAS with a lowercase alias, e.g. digits@production")
        return Reference(text, Kind.ALIAS, name=name, alias=alias)
    name, colon, version = text.partition(":")
    if NAME_RE.fullmatch(name) and (not colon or _VERSION_RE.fullmatch(version)):
        number = int(version) if colon and version != "latest" else None
        return Reference(text, Kind.VERSION, name=name, version=number)
    return Reference(text, Kind.IMAGE)


#: which forms each verb takes; a verb given another form gets an error naming what it takes
VERB_FORMS: dict[str, frozenset[Kind]] = {
    "build": frozenset({Kind.PATH, Kind.VERSION, Kind.ALIAS, Kind.MLFLOW}),  # --model
    "serve": frozenset({Kind.PATH, Kind.VERSION, Kind.ALIAS, Kind.MLFLOW}),  # --model
    "deploy": frozenset({Kind.PATH, Kind.VERSION, Kind.ALIAS, Kind.MLFLOW}),  # --model (swarm and kubernetes)
    "push": frozenset({Kind.VERSION, Kind.ALIAS}),
    "scan": frozenset({Kind.PATH, Kind.VERSION, Kind.ALIAS, Kind.IMAGE}),
    "diff": frozenset({Kind.VERSION, Kind.ALIAS, Kind.IMAGE}),
    "models": frozenset({Kind.VERSION}),  # show, diff, export: the local store
    "pull": frozenset({Kind.VERSION, Kind.ALIAS}),
    "promote": frozenset({Kind.VERSION}),
}
_FORM_TEXT = {Kind.PATH: "a file or folder path", Kind.VERSION: "NAME:N or NAME:latest",
              Kind.ALIAS: "NAME@ALIAS", Kind.MLFLOW: "an MLflow runs:/ or models:/ reference",
              Kind.IMAGE: "an image reference or id"}


def parse_for(verb: str, text: str, *, cwd: Path | None = None) -> Reference:
    """:func:`parse`, refusing a form ``verb`` does not take (see VERB_FORMS)."""
    ref = parse(text, cwd=cwd)
    takes = VERB_FORMS[verb]
    if ref.kind not in takes:
        forms = ", ".join(_FORM_TEXT[k] for k in Kind if k in takes)
        raise UsageError(f"`dockyard {verb}` cannot take {text!r} ({_FORM_TEXT[ref.kind]})",
                         f"pass {forms}")
    return ref


def serving_tag(name: str, version: int) -> str:
    """The tag of version ``name:N``'s serving image (see the module invariant)."""
    return f"{name}:{version}"


def registry_from(registry: str | None) -> str | None:
    return registry or os.environ.get("DOCKYARD_REGISTRY") or None


def alias_version(ref: Reference, registry: str | None) -> Reference:
    """``NAME@ALIAS`` -> the ``NAME:N`` reference the alias points at in the registry."""
    from .registry import alias_version as lookup

    assert ref.kind is Kind.ALIAS and ref.name and ref.alias
    reg = registry_from(registry)
    if reg is None:
        raise UsageError(f"{ref.text!r} is a registry alias, and no registry is given",
                         "pass --registry HOST[:PORT] or set DOCKYARD_REGISTRY")
    version = lookup(ref.name, ref.alias, reg)
    return Reference(ref.text, Kind.VERSION, name=ref.name, version=version)


def stored_version(ref: Reference, store: Store, *, registry: str | None = None) -> ModelVersion:
    """The stored version a VERSION or ALIAS reference names (``latest``: the newest)."""
    if ref.kind is Kind.ALIAS:
        ref = alias_version(ref, registry)
    if ref.kind is not Kind.VERSION:
        raise UsageError(f"{ref.text!r} is not a model version", "pass NAME:N, NAME:latest or NAME@ALIAS")
    return store.get(ref.version_text)


def image_of(ref: Reference, store: Store, *, registry: str | None = None) -> str:
    """The local image a reference names, for the image verbs (scan, push, diff).

    A version's image is its serving image ``NAME:N``; ``NAME:latest`` is the newest stored
    version's, whatever an old ``NAME:latest`` tag may point at. Text the store does not know is
    taken as an image reference or id as written."""
    if ref.kind in (Kind.PATH, Kind.MLFLOW):
        raise UsageError(f"{ref.text!r} is {_FORM_TEXT[ref.kind]}, and this verb takes an image or a model version",
                         "pass NAME:N, NAME:latest, NAME@ALIAS or an image reference")
    if ref.kind is Kind.IMAGE:
        return ref.text
    if ref.kind is Kind.ALIAS:
        ref = alias_version(ref, registry)
    assert ref.name is not None
    if ref.name in {m.name for m in store.list_models()}:  # even when a stale NAME:latest image exists
        return serving_tag(ref.name, store.get(ref.version_text).version)
    return ref.text  # an image docker knows by this name (or an id), not a stored model


__all__ = ["FORMS", "VERB_FORMS", "Kind", "Reference", "alias_version", "image_of", "parse", "parse_for",
           "registry_from", "serving_tag", "stored_version"]
