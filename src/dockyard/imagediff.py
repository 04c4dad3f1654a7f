"""``dockyard diff A B``: what changed between two images.

Python packages are read from the images' layers (``docker save`` + tar: nothing from either
image runs), applying whiteouts so a package removed in a later layer is really gone. Layers
come from ``docker history`` (build steps with their sizes), config and labels from ``docker
inspect``; ``io.dockyard.metrics.*`` labels are reported as metric changes.
"""

from __future__ import annotations

import difflib
import json
import posixpath
import re
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import IO, Any

from .engine import Engine
from .errors import EngineError, UsageError
from .runtime import contract

METRIC_PREFIX = contract.LABEL_METRICS_PREFIX
#: Labels that differ between any two builds; reported only with ``everything=True``.
VOLATILE_LABELS = ("org.opencontainers.image.created",)
CONFIG_KEYS = ("Env", "User", "Cmd", "Entrypoint", "WorkingDir", "ExposedPorts", "Healthcheck", "Volumes", "StopSignal")
_DIST_INFO = re.compile(r"(^|/)(site|dist)-packages/[^/]+\.dist-info/METADATA$")
_PREFERRED_ENV = "opt/venv/"


@dataclass(frozen=True)
class Change:
    key: str
    before: Any
    after: Any


@dataclass(frozen=True)
class LayerChange:
    step: str  # the build instruction (docker history CreatedBy), shortened
    before: int | None  # bytes; None = the step is new
    after: int | None  # bytes; None = the step is gone


@dataclass(frozen=True)
class ImageDiff:
    a: str
    b: str
    a_id: str
    b_id: str
    packages: tuple[Change, ...]  # before/after None = added/removed
    layers: tuple[LayerChange, ...]
    size_before: int
    size_after: int
    config: tuple[Change, ...]
    labels: tuple[Change, ...]
    metrics: tuple[Change, ...]

    @property
    def identical(self) -> bool:
        return self.a_id == self.b_id

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- packages from layers ---------------------------------------------------------------------
def read_packages(layers: Iterable[IO[bytes]]) -> dict[str, str]:
    """name -> version of every dist-info in the merged filesystem of ``layers`` (bottom first)."""
    found: dict[str, tuple[str, str]] = {}  # METADATA path -> (name, version)
    for fileobj in layers:
        with tarfile.open(fileobj=fileobj, mode="r|*") as layer:
            for member in layer:
                path = member.name.lstrip("./")
                base = posixpath.basename(path)
                if base.startswith(".wh."):
                    _whiteout(found, posixpath.dirname(path), base)
                elif member.isfile() and _DIST_INFO.search(path):
                    data = layer.extractfile(member)
                    if data is not None:
                        meta = HeaderParser().parsestr(data.read(64 * 1024).decode("utf-8", "replace"))
                        if meta.get("Name") and meta.get("Version"):
                            found[path] = (meta["Name"], meta["Version"])
    return _by_name(found)


def _whiteout(found: dict[str, tuple[str, str]], directory: str, base: str) -> None:
    if base == ".wh..wh..opq":  # opaque directory: nothing below it from lower layers survives
        prefix = directory + "/"
    else:
        prefix = posixpath.join(directory, base[len(".wh."):])
    for path in [p for p in found if p == prefix or p.startswith(prefix.rstrip("/") + "/")]:
        del found[path]


def _by_name(found: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """One version per normalised name; the project venv wins over the system Python."""
    out: dict[str, str] = {}
    for path, (name, version) in sorted(found.items(), key=lambda kv: kv[0].startswith(_PREFERRED_ENV)):
        out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def packages_of(engine: Engine, refs: Iterable[str]) -> dict[str, dict[str, str]]:
    """Packages of several images from ONE ``docker save`` (shared layers are read once)."""
    refs = list(dict.fromkeys(refs))
    with tempfile.TemporaryDirectory(prefix="dockyard-diff-") as tmp:
        tar_path = Path(tmp) / "images.tar"
        engine.docker("save", "-o", str(tar_path), *refs, timeout=900)
        with tarfile.open(tar_path) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
            by_ref = _manifest_by_ref(engine, manifest, refs)
            cache: dict[tuple[str, ...], dict[str, str]] = {}
            out = {}
            for ref, layer_names in by_ref.items():
                key = tuple(layer_names)
                if key not in cache:
                    cache[key] = read_packages(_open_layers(outer, layer_names))
                out[ref] = cache[key]
            return out


def _open_layers(outer: tarfile.TarFile, names: Iterable[str]) -> Iterable[IO[bytes]]:
    for name in names:
        f = outer.extractfile(name)
        if f is not None:
            yield f


def _manifest_by_ref(engine: Engine, manifest: list[dict[str, Any]], refs: list[str]) -> dict[str, list[str]]:
    """docker save lists images by config file ``<id-hex>.json``; match refs through their ids."""
    by_config = {entry["Config"].split("/")[-1].removesuffix(".json"): entry["Layers"] for entry in manifest}
    out = {}
    for ref in refs:
        hexid = engine.image_id(ref).removeprefix("sha256:")
        layers = by_config.get(hexid) or next((v for k, v in by_config.items() if hexid.startswith(k)), None)
        if layers is None:
            raise EngineError(f"docker save did not include {ref}", "check the engine version (docker save format)")
        out[ref] = layers
    return out


# -- layers, config, labels ----------------------------------------------------------------
def history(engine: Engine, ref: str) -> list[tuple[str, int]]:
    """(step, size in bytes), oldest first; empty-layer metadata steps left out."""
    proc = engine.docker("history", "--no-trunc", "--human=false", "--format", "{{json .}}", ref)
    steps = []
    for line in reversed([ln for ln in proc.stdout.splitlines() if ln.strip()]):
        row = json.loads(line)
        size = int(str(row.get("Size", "0")) or 0)
        step = _short_step(str(row.get("CreatedBy", "")))
        if size or not _is_metadata(step):
            steps.append((step, size))
    return steps


def _short_step(created_by: str) -> str:
    text = re.sub(r"^/bin/sh -c (#\(nop\) )?", "", created_by).strip()
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= 140 else text[:137] + "..."


def _is_metadata(step: str) -> bool:
    return bool(re.match(r"^(ENV|LABEL|CMD|ENTRYPOINT|EXPOSE|HEALTHCHECK|USER|WORKDIR|ARG|STOPSIGNAL|VOLUME|SHELL)\b", step))


def layer_changes(before: list[tuple[str, int]], after: list[tuple[str, int]]) -> tuple[LayerChange, ...]:
    """Pair build steps by their instruction text; report steps whose size changed, appeared or went."""
    out: list[LayerChange] = []
    matcher = difflib.SequenceMatcher(a=[s for s, _ in before], b=[s for s, _ in after], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out += [LayerChange(before[i][0], before[i][1], after[j][1])
                    for i, j in zip(range(i1, i2), range(j1, j2)) if before[i][1] != after[j][1]]
            continue
        out += [LayerChange(before[i][0], before[i][1], None) for i in range(i1, i2)]
        out += [LayerChange(after[j][0], None, after[j][1]) for j in range(j1, j2)]
    return tuple(out)


def dict_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    keys = sorted(set(before) | set(after))
    return tuple(Change(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k))


def _config(info: Mapping[str, Any]) -> dict[str, Any]:
    cfg: Mapping[str, Any] = info.get("Config") or {}
    out: dict[str, Any] = {k: cfg[k] for k in CONFIG_KEYS if cfg.get(k) not in (None, "", [], {})}
    env: list[str] = out.get("Env") or []
    if env:  # compare variables, not list positions
        out["Env"] = {e.partition("=")[0]: e.partition("=")[2] for e in env}
    return out


def _split_env(changes: tuple[Change, ...]) -> tuple[Change, ...]:
    """Env as one Change per variable, so a diff names PATH or DOCKYARD_WORKERS, not the whole list."""
    out = []
    for c in changes:
        if c.key == "Env" and isinstance(c.before or {}, dict) and isinstance(c.after or {}, dict):
            out += [Change(f"Env.{e.key}", e.before, e.after) for e in dict_changes(c.before or {}, c.after or {})]
        else:
            out.append(c)
    return tuple(out)


# -- the verb ----------------------------------------------------------------------------------
def diff(engine: Engine, a: str, b: str, *, everything: bool = False) -> ImageDiff:
    """Compare two local images (tags, ids or digests)."""
    for ref in (a, b):
        if not engine.image_exists(ref):
            raise UsageError(f"no local image {ref!r}",
                             "build it, or pull it first (dockyard pull NAME:VERSION --registry R)")
    info_a, info_b = engine.inspect(a), engine.inspect(b)
    pk = packages_of(engine, [a, b]) if info_a["Id"] != info_b["Id"] else {a: {}, b: {}}
    pkgs = dict_changes(pk[a], pk.get(b, pk[a]))
    labels_a, labels_b = _labels(info_a), _labels(info_b)
    metrics = dict_changes(_metrics(labels_a), _metrics(labels_b))
    plain = dict_changes(_plain(labels_a, everything), _plain(labels_b, everything))
    return ImageDiff(
        a=a, b=b, a_id=str(info_a["Id"]), b_id=str(info_b["Id"]),
        packages=pkgs,
        layers=layer_changes(history(engine, a), history(engine, b)),
        size_before=int(info_a.get("Size") or 0),  # type: ignore[call-overload]
        size_after=int(info_b.get("Size") or 0),  # type: ignore[call-overload]
        config=_split_env(dict_changes(_config(info_a), _config(info_b))),
        labels=plain,
        metrics=metrics,
    )


def _labels(info: Mapping[str, Any]) -> dict[str, str]:
    config: Mapping[str, Any] = info.get("Config") or {}
    return dict(config.get("Labels") or {})


def _metrics(labels: Mapping[str, str]) -> dict[str, str]:
    return {k[len(METRIC_PREFIX):]: v for k, v in labels.items() if k.startswith(METRIC_PREFIX)}


def _plain(labels: Mapping[str, str], everything: bool) -> dict[str, str]:
    return {k: v for k, v in labels.items()
            if not k.startswith(METRIC_PREFIX) and (everything or k not in VOLATILE_LABELS)}


# -- text ------------------------------------------------------------------------------------
def render_text(d: ImageDiff) -> str:
    lines = [f"{d.a} ({d.a_id[7:19]}) -> {d.b} ({d.b_id[7:19]})"]
    if d.identical:
        return lines[0] + "\nthe same image: nothing differs"
    lines.append(f"size: {_mb(d.size_before)} -> {_mb(d.size_after)} ({_signed_mb(d.size_after - d.size_before)})")
    lines += _section("packages", [_pkg_line(c) for c in d.packages])
    lines += _section("metrics", [_metric_line(c) for c in d.metrics])
    lines += _section("layers", [_layer_line(c) for c in d.layers])
    lines += _section("config", [f"  {c.key}: {_show(c.before)} -> {_show(c.after)}" for c in d.config])
    lines += _section("labels", [f"  {c.key}: {_show(c.before)} -> {_show(c.after)}" for c in d.labels])
    return "\n".join(lines)


def _section(title: str, body: list[str]) -> list[str]:
    return [f"{title}:", *body] if body else [f"{title}: no changes"]


def _pkg_line(c: Change) -> str:
    if c.before is None:
        return f"  + {c.key} {c.after}"
    if c.after is None:
        return f"  - {c.key} {c.before}"
    return f"  ~ {c.key} {c.before} -> {c.after}"


def _metric_line(c: Change) -> str:
    try:
        delta = float(c.after) - float(c.before)
        return f"  {c.key}: {c.before} -> {c.after} ({delta:+.4g})"
    except (TypeError, ValueError):
        return f"  {c.key}: {_show(c.before)} -> {_show(c.after)}"


def _layer_line(c: LayerChange) -> str:
    if c.before is None:
        return f"  + {_mb(c.after or 0)}  {c.step}"
    if c.after is None:
        return f"  - {_mb(c.before)}  {c.step}"
    return f"  ~ {_mb(c.before)} -> {_mb(c.after)} ({_signed_mb(c.after - c.before)})  {c.step}"


def _show(value: Any) -> str:
    return "(none)" if value is None else value if isinstance(value, str) else json.dumps(value)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _signed_mb(n: int) -> str:
    return ("+" if n >= 0 else "-") + _mb(abs(n))


__all__ = ["Change", "ImageDiff", "LayerChange", "diff", "layer_changes", "read_packages", "render_text"]
