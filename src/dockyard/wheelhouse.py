"""Wheels the host's own pip configuration offers from local folders (``find-links``).

A machine that cannot reach download.pytorch.org, where CPU builds of torch live, often keeps
them in a local wheelhouse that its pip is configured to use (``PIP_FIND_LINKS``, or
``find-links`` in a pip configuration file). pip on the host installs from it; a container build
sees none of it. dockyard reads the same settings pip reads, and a build whose CPU torch would
come from download.pytorch.org takes a matching ``+cpu`` wheel from there instead: the one file
is staged into PROJECT/.dockyard/wheels and bind-mounted into the install step (never a layer),
and ``plan`` says which file and where the setting came from. Only local folders count (a
``find-links`` URL is the engine's to reach, as any index is). ``DOCKYARD_HOST_WHEELS=0`` turns
it off.
"""

from __future__ import annotations

import configparser
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from .detect.requirements import specifier_for

#: where staged wheels sit in the build context, and where the install step sees them
STAGE = "wheels"  # under PROJECT/.dockyard
MOUNT = "/tmp/dockyard-wheels"
OFF = "DOCKYARD_HOST_WHEELS"


@dataclass(frozen=True)
class Source:
    """A local find-links folder and the setting that named it (for plan's reason)."""

    folder: Path
    setting: str  # "PIP_FIND_LINKS" or "/etc/pip.conf [global] find-links"


@dataclass(frozen=True)
class LocalWheel:
    path: Path
    version: Version
    source: Source


def pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """The configuration files pip reads, lowest precedence first, as pip orders them: site-wide
    (each XDG_CONFIG_DIRS folder's pip/pip.conf, then /etc/pip.conf), the user's (~/.pip/pip.conf,
    then XDG_CONFIG_HOME's), PIP_CONFIG_FILE last. A PIP_CONFIG_FILE that exists replaces the
    user's files; PIP_CONFIG_FILE=/dev/null means no files at all. (pip also reads a pip.conf in
    its own environment's prefix: which environment is the user's pip is not knowable here.)"""
    config_file = env.get("PIP_CONFIG_FILE")
    if config_file == os.devnull:
        return []
    xdg = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    home = Path(env.get("HOME", "~")).expanduser()
    files = [Path(d) / "pip" / "pip.conf" for d in xdg if d] + [Path("/etc/pip.conf")]
    if not (config_file and Path(config_file).exists()):
        files += [home / ".pip" / "pip.conf",
                  Path(env.get("XDG_CONFIG_HOME", str(home / ".config"))) / "pip" / "pip.conf"]
    if config_file:
        files.append(Path(config_file))
    return files


def host_sources(env: Mapping[str, str] | None = None) -> tuple[Source, ...]:
    """The local folders ``pip install`` on this host searches (find-links), resolved as pip
    resolves the option: a later file overrides an earlier one, ``[install]`` overrides
    ``[global]``, and PIP_FIND_LINKS overrides every file; the winning setting's folders only.
    Empty when DOCKYARD_HOST_WHEELS=0. (tests/unit/test_wheelhouse.py checks it against pip's own
    "Looking in links" line.)"""
    env = os.environ if env is None else env
    if env.get(OFF, "").strip().lower() in ("0", "false", "no", "off"):
        return ()
    settings: dict[str, tuple[str, str]] = {}  # "global" | "install" | ":env:" -> (value, where it was set)
    for path in pip_config_files(env):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue  # pip itself stops on such a file; dockyard only reads it for a hint
        for section in ("global", "install"):
            if not parser.has_section(section):
                continue
            for key, value in parser.items(section):
                if key.replace("_", "-") == "find-links":  # pip's names: find_links and find-links alike
                    settings[section] = (value, f"{path} [{section}] {key}")
    if "PIP_FIND_LINKS" in env:
        settings[":env:"] = (env["PIP_FIND_LINKS"], "PIP_FIND_LINKS")
    winner = next((settings[k] for k in (":env:", "install", "global") if k in settings), None)
    if winner is None:
        return ()
    found = [s for value in winner[0].split() for s in _local(value, winner[1])]
    seen: set[Path] = set()
    return tuple(s for s in found if not (s.folder in seen or seen.add(s.folder)))  # type: ignore[func-returns-value]


def _local(value: str, setting: str) -> list[Source]:
    if value.startswith("file:"):
        value = unquote(urlparse(value).path)
    elif "://" in value:
        return []
    folder = Path(value).expanduser()
    return [Source(folder.resolve(), setting)] if folder.is_dir() else []


def cpu_torch(sources: Sequence[Source], requirements: Iterable[str], python: str,
              machine: str = "x86_64") -> LocalWheel | None:
    """The newest local ``torch-X+cpu`` wheel for CPython ``python`` on Linux ``machine`` that
    every torch requirement admits, or None."""
    spec = specifier_for(requirements, "torch") or SpecifierSet()
    cp = "cp" + python.replace(".", "")
    best: LocalWheel | None = None
    for source in sources:
        try:
            names = sorted(os.listdir(source.folder))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".whl"):
                continue
            try:
                dist, version, _build, tags = parse_wheel_filename(name)
            except InvalidWheelFilename:
                continue
            if dist != "torch" or version.local != "cpu" or not spec.contains(version, prereleases=False):
                continue
            if not any(t.interpreter == cp and t.platform.startswith(("manylinux", "linux")) and
                       t.platform.endswith("_" + machine) for t in tags):
                continue
            if best is None or version > best.version:
                best = LocalWheel(source.folder / name, version, source)
    return best


def stage(build_dir: Path, wheels: Sequence[Path]) -> None:
    """PROJECT/.dockyard/wheels holds exactly ``wheels`` (hard links where the file system allows)."""
    target = build_dir / STAGE
    keep = {w.name for w in wheels}
    if target.is_dir():
        for old in target.iterdir():
            if old.name not in keep:
                old.unlink()
    if not wheels:
        if target.is_dir():
            target.rmdir()
        return
    target.mkdir(exist_ok=True)
    for wheel in wheels:
        dest = target / wheel.name
        if dest.exists() and dest.stat().st_size == wheel.stat().st_size:
            continue
        dest.unlink(missing_ok=True)
        try:
            os.link(wheel, dest)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(wheel, dest)
