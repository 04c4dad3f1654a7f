"""Hash-locked dependencies: ``dockyard lock`` and ``dockyard build --frozen``.

The lock is a requirements file every line of which carries ``--hash`` (the build installs it
with ``uv pip install --no-deps --require-hashes``). It comes from ``uv pip compile
--generate-hashes`` over what the unlocked build would install (so renames such as
``xgboost -> xgboost-cpu`` and extra indexes like the torch CPU index are honoured), or from
``uv export`` when the project has its own ``uv.lock``.

Its header pins what the lock was made from, so ``--frozen`` can refuse a stale lock:

    # dockyard lock v1: written by `dockyard lock`; change the inputs and re-run it
    # python: 3.11
    # input: requirements.txt sha256:<hex>
    # base: dockyard/python:3.11-slim sha256:<repo digest or local image id>
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import CONFIG_NAME, ProjectConfig, load_config
from .engine import Engine
from .errors import ConfigError, EnvironmentProblem
from .fsio import atomic_write_bytes

log = logging.getLogger("dockyard.lock")

LOCK_NAME = "requirements.lock"
HEADER = "# dockyard lock v1: written by `dockyard lock`; change the inputs and re-run it"
_PLATFORMS = {"amd64": "x86_64-unknown-linux-gnu", "arm64": "aarch64-unknown-linux-gnu"}


@dataclass(frozen=True)
class LockHeader:
    python: str
    inputs: tuple[tuple[str, str], ...]  # (project-relative file, sha256:hex)
    bases: tuple[tuple[str, str], ...]  # (image ref, digest or id)


@dataclass(frozen=True)
class LockResult:
    path: Path
    header: LockHeader
    packages: tuple[str, ...]  # name==version, in lock order
    source: str  # "uv pip compile" | "uv export"


# -- header (pure) -------------------------------------------------------------------------
def render_header(header: LockHeader) -> str:
    lines = [HEADER, f"# python: {header.python}"]
    lines += [f"# input: {name} {digest}" for name, digest in header.inputs]
    lines += [f"# base: {ref} {digest}" for ref, digest in header.bases]
    return "\n".join(lines) + "\n"


def parse_header(text: str, lock_name: str = LOCK_NAME) -> LockHeader:
    if not text.startswith(HEADER.split(":")[0]):
        raise ConfigError(f"{lock_name} was not written by `dockyard lock` (no dockyard header)",
                          "run `dockyard lock` to regenerate it")
    python = ""
    inputs: list[tuple[str, str]] = []
    bases: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        if key == "python":
            python = value.strip()
        elif key in ("input", "base"):
            name, _, digest = value.rpartition(" ")
            (inputs if key == "input" else bases).append((name, digest))
    return LockHeader(python, tuple(inputs), tuple(bases))


def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def locked_packages(text: str) -> tuple[str, ...]:
    return tuple(m.group(1) for m in re.finditer(r"^([A-Za-z0-9][\w.-]*==[^\s\\;]+)", text, re.MULTILINE))


def unhashed_requirements(text: str) -> list[str]:
    """Requirement lines with no ``--hash`` (pip's --require-hashes would refuse the whole lock)."""
    joined = re.sub(r"\\\n", " ", text)
    bad = []
    for line in joined.splitlines():
        stripped = line.split(" #", 1)[0].strip()
        if not stripped or stripped.startswith(("#", "--")):
            continue
        if "--hash=" not in stripped:
            bad.append(stripped)
    return bad


# -- dockyard.yaml edit (pure) -------------------------------------------------------------
def set_lock_in_config(text: str, lock_name: str = LOCK_NAME) -> str:
    """Set ``dependencies.lock`` with a minimal text edit, so comments and order survive."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if re.match(r"^dependencies:\s*(#.*)?$", ln)), None)
    if start is None:
        if any(re.match(r"^dependencies:", ln) for ln in lines):
            raise ConfigError(f"{CONFIG_NAME}: dependencies is written inline, which `dockyard lock` cannot edit safely",
                              f"write it as a block (dependencies:\\n  file: ...) or add `lock: {lock_name}` yourself")
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + f"{sep}dependencies:\n  lock: {lock_name}\n"
    indent, last = "", start  # last: the block's last indented line; indent: its first key's
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            continue  # blank lines and comments belong to whatever comes next
        if line[0] not in " \t":
            break
        last = i
        m = re.match(r"^(\s+)(\w+):", line)
        if m and (not indent or m.group(1) == indent):
            indent = m.group(1)
            if m.group(2) == "lock":
                comment = re.search(r"\s+#.*$", line.rstrip("\n"))
                lines[i] = f"{indent}lock: {lock_name}{comment.group(0) if comment else ''}\n"
                return "".join(lines)
    end = last + 1
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(end, f"{indent or '  '}lock: {lock_name}\n")
    return "".join(lines)


# -- inputs ----------------------------------------------------------------------------------
def input_files(project_dir: Path, config: ProjectConfig) -> list[str]:
    """The project files the lock is derived from (project-relative), following ``-r``/``-c``."""
    deps = config.dependencies
    files: list[str] = []
    if deps.kind == "uv-lock" or (deps.kind == "pyproject" and (project_dir / "uv.lock").is_file()):
        files = ["uv.lock", "pyproject.toml"]
    elif deps.file:
        files = [deps.file]
        if deps.kind == "requirements":
            files += _included(project_dir, deps.file, seen={deps.file})
    return [f for f in dict.fromkeys(files) if (project_dir / f).is_file()]


def _included(project_dir: Path, name: str, seen: set[str]) -> list[str]:
    out = []
    path = project_dir / name
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)", line)
        if not m:
            continue
        child = os.path.normpath(os.path.join(os.path.dirname(name), m.group(1)))
        if child not in seen and (project_dir / child).is_file():
            seen.add(child)
            out += [child, *_included(project_dir, child, seen)]
    return out


@dataclass(frozen=True)
class _Unlocked:
    requirements: tuple[str, ...]
    index_options: tuple[str, ...]
    bases: tuple[str, ...]


def _unlocked(project_dir: Path, config: ProjectConfig, engine: Engine) -> _Unlocked:
    """What the build would install without a lock (the plan, with dependencies.lock ignored)."""
    from .base import local_bases
    from .compat.resolver import resolve
    from .detect import detect
    from .planning import _index_options, _requirements

    detection = detect(project_dir, keras_backend=config.env.get("KERAS_BACKEND"))
    bases = frozenset(local_bases(engine).values())
    bases |= frozenset(r.replace("-slim", "-build") for r in bases if engine.image_exists(r.replace("-slim", "-build")))
    res = resolve(python=config.python, framework=config.framework,
                  framework_version=config.framework_version or detection.framework_versions.get(config.framework or ""),
                  gpu=config.gpu.enabled, cuda=config.gpu.cuda, devel=config.gpu.devel,
                  base_image=config.base_image, local_bases=bases)
    unlocked = config.model_copy(update={"dependencies": config.dependencies.model_copy(update={"lock": None})})
    reqs, _, _ = _requirements(project_dir, unlocked, detection.requirements, res)
    index = tuple(f"--extra-index-url {u}" for u in res.extra_index_urls) + _index_options(detection)
    return _Unlocked(reqs, index, tuple(dict.fromkeys((res.base_final, res.base_builder))))


def base_digest(engine: Engine, ref: str) -> str | None:
    """A registry digest when the image came from one, else the local image id; None if absent."""
    proc = engine.docker("image", "inspect", "--format", "{{json .RepoDigests}} {{.Id}}", ref, check=False)
    if proc.returncode != 0:
        return None
    digests, _, image_id = proc.stdout.strip().rpartition(" ")
    repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    for d in re.findall(r'"([^"]+@sha256:[0-9a-f]{64})"', digests):
        if d.split("@")[0] == repo:
            return str(d.split("@")[1])
    return image_id


# -- lock ----------------------------------------------------------------------------------
def lock(project_dir: Path, engine: Engine, *, lock_name: str = LOCK_NAME, uv: str | None = None) -> LockResult:
    """Write a hash-pinned lock and point ``dependencies.lock`` at it."""
    project_dir = project_dir.resolve()
    config = load_config(project_dir)
    from .base import find_uv

    uv_bin = uv or find_uv()
    if not uv_bin:
        raise EnvironmentProblem("`uv` is not installed on this host; dockyard lock runs it",
                                 "install it: pip install uv (or see https://docs.astral.sh/uv/)")
    unlocked = _unlocked(project_dir, config, engine)
    bases = []
    for ref in unlocked.bases:
        digest = base_digest(engine, ref)
        if digest is None:
            raise ConfigError(f"base image {ref} is not available, so its digest cannot be pinned",
                              "pull or build it first (`dockyard base bootstrap`, or docker pull), then re-run dockyard lock")
        bases.append((ref, digest))
    inputs = input_files(project_dir, config)
    if "uv.lock" in inputs:
        body, source = _uv_export(uv_bin, project_dir), "uv export"
    else:
        body, source = _uv_compile(uv_bin, project_dir, config, unlocked, _platform(engine)), "uv pip compile"
    missing = unhashed_requirements(body)
    if missing:
        raise ConfigError(f"these requirements cannot be hash-pinned: {', '.join(missing[:5])}",
                          "replace local paths / VCS URLs with released packages, then re-run dockyard lock")
    header = LockHeader(config.python, tuple((f, file_digest(project_dir / f)) for f in inputs), tuple(bases))
    target = project_dir / lock_name
    atomic_write_bytes(target, (render_header(header) + body).encode(), mode=None)
    _point_config_at(project_dir, lock_name)
    return LockResult(target, header, locked_packages(body), source)


def _platform(engine: Engine) -> str:
    arch = engine.docker("version", "--format", "{{.Server.Arch}}", check=False).stdout.strip()
    return _PLATFORMS.get(arch, _PLATFORMS["amd64"])


def _uv_compile(uv: str, project_dir: Path, config: ProjectConfig, unlocked: _Unlocked, platform: str) -> str:
    if not unlocked.requirements:
        return ""
    with tempfile.TemporaryDirectory(prefix="dockyard-lock-") as tmp:
        src = Path(tmp) / "requirements.in"
        src.write_text("\n".join(unlocked.requirements) + "\n")
        argv = [uv, "pip", "compile", str(src), "--generate-hashes", "--no-header", "--no-annotate", "--quiet",
                "--python-version", config.python, "--python-platform", platform]
        for option in unlocked.index_options:
            argv += shlex.split(option)
        if unlocked.index_options:
            argv.append("--emit-index-url")  # the build's `uv pip install -r lock` needs the index lines
        return _run(argv, project_dir, "uv pip compile")


def _uv_export(uv: str, project_dir: Path) -> str:
    argv = [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--format", "requirements-txt",
            "--no-header", "--quiet"]
    return _run(argv, project_dir, "uv export")


def _run(argv: Sequence[str], cwd: Path, what: str) -> str:
    log.debug("$ %s", shlex.join(argv))
    try:
        proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentProblem(f"{what} did not finish in 15 minutes", "check the network / package index") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ConfigError(f"{what} could not resolve the dependencies", "fix the requirement named below and re-run",
                          details=tail)
    return proc.stdout


def _point_config_at(project_dir: Path, lock_name: str) -> None:
    cfg_path = project_dir / CONFIG_NAME
    old = cfg_path.read_text()
    new = set_lock_in_config(old, lock_name)
    if new == old:
        return
    atomic_write_bytes(cfg_path, new.encode(), mode=None)
    try:
        load_config(project_dir)
    except ConfigError:
        atomic_write_bytes(cfg_path, old.encode(), mode=None)  # never leave the user with a config we broke
        raise


def lock_hash(project_dir: Path) -> str | None:
    """Short sha256 of the project's lock file, for the ``io.dockyard.lock-hash`` image label."""
    name = load_config(project_dir.resolve()).dependencies.lock
    path = project_dir / name if name else None
    return file_digest(path)[7:23] if path is not None and path.is_file() else None


# -- frozen builds --------------------------------------------------------------------------
def check_frozen(project_dir: Path, engine: Engine | None = None) -> LockHeader:
    """Refuse a stale lock: an input file changed, Python changed, or a base digest moved."""
    project_dir = project_dir.resolve()
    config = load_config(project_dir)
    name = config.dependencies.lock
    if not name:
        raise ConfigError("--frozen needs a lock, but dockyard.yaml has no dependencies.lock",
                          "run `dockyard lock` first")
    path = project_dir / name
    if not path.is_file():
        raise ConfigError(f"dependencies.lock names {name}, which does not exist", "run `dockyard lock`")
    header = parse_header(path.read_text(), name)
    if header.python != config.python:
        raise ConfigError(f"dockyard.yaml asks for Python {config.python} but {name} was locked for {header.python}",
                          "run `dockyard lock`")
    for file, digest in header.inputs:
        if not (project_dir / file).is_file():
            raise ConfigError(f"{file} was removed since {name} was written", "run `dockyard lock`")
        if file_digest(project_dir / file) != digest:
            raise ConfigError(f"{file} changed since {name} was written", "run `dockyard lock`")
    current = set(input_files(project_dir, config))
    added = sorted(current - {f for f, _ in header.inputs})
    if added:
        raise ConfigError(f"{added[0]} is a dependency input that {name} does not cover", "run `dockyard lock`")
    if header.bases:
        _check_bases(header, engine or Engine.connect(), name)
    return header


def _check_bases(header: LockHeader, engine: Engine, name: str) -> None:
    for ref, digest in header.bases:
        now = base_digest(engine, ref)
        if now is None:
            raise ConfigError(f"base image {ref} pinned in {name} ({digest[:19]}) is not available",
                              f"pull or rebuild {ref}, then run `dockyard lock` to pin what you have")
        if now != digest:
            raise ConfigError(f"base image {ref} is now {now[:19]}, but {name} pinned {digest[:19]}",
                              f"restore that base (docker pull {ref.split(':')[0]}@{digest}) or run `dockyard lock`")


__all__ = ["LOCK_NAME", "LockHeader", "LockResult", "check_frozen", "lock", "lock_hash", "parse_header", "set_lock_in_config"]
