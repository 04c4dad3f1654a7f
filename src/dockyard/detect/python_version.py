"""Which Python the image gets: explicit pins first, then ranges.

Order (first that says something wins):

1. ``.python-version`` (pyenv/uv; ``3.11.4`` or ``3.11``): the developer's own interpreter.
2. ``runtime.txt`` (``python-3.10.12``, Heroku style): an explicit deploy pin.
3. conda ``python=3.10`` or MLflow python_env ``python:`` in the chosen environment file.
4. ``requires-python`` (pyproject.toml, uv.lock, setup.py ``python_requires``, Poetry's
   ``python``): a range. It gets dockyard's default Python (compat data, 3.11) when the range
   admits it, else the admitted supported version nearest to the default (a tie goes to the
   newer). The default is the best-trodden path: its base is the one most hosts already have,
   and most wheels exist for it; a range says what works, not what is wanted, so taking the
   newest it allows (the old rule) built ``>=3.6`` projects on 3.13 for no reason.

Exact pins (``runtime.txt python-3.10``, ``.python-version 3.12``, Poetry ``python = "3.10.11"``,
conda ``python=3.10``) keep their minor version. Only major.minor is kept; the base image decides
the patch release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from dockyard.errors import DetectError

from ._files import Reason, read_text

from dockyard.compat.resolver import compat_data, nearest_python

DEFAULT_PYTHON_CANDIDATES: tuple[str, ...] = tuple(compat_data()["python"]["supported"])
DEFAULT_PYTHON: str = compat_data()["python"]["default"]
_MINOR = re.compile(r"^(?:python-?|cpython-?)?(3)\.(\d+)(?:\.\d+)?(?:[-.+a-z0-9]*)?$", re.IGNORECASE)
_PINNED = re.compile(r"^===?\s*(3)\.(\d+)(?:\.\d+|\.\*)?$")
# Enough patch releases to test "does any 3.X.* satisfy this range?" without knowing them all.
_PATCHES_TO_TRY = range(30)


@dataclass(frozen=True)
class PythonChoice:
    version: str | None
    reason: Reason | None
    warnings: tuple[str, ...]
    pinned_by: str | None = None  # the file that pins this exact minor (not a range, not dockyard's fallback)


def parse_minor(text: str) -> str | None:
    """``3.11.4`` / ``python-3.10.12`` / ``cpython-3.12`` -> ``3.11``; None when it is not a version."""
    match = _MINOR.match(text.strip())
    return f"{match.group(1)}.{match.group(2)}" if match else None


def pinned_minor(spec: str) -> str | None:
    """``==3.10.*`` / ``==3.10.12`` / ``3.10`` -> ``3.10``: a spec that names one minor release."""
    match = _PINNED.match(spec.strip())
    if match:
        return f"{match.group(1)}.{match.group(2)}"
    return parse_minor(spec)


def from_version_file(path: Path, project_dir: Path) -> tuple[str | None, str | None]:
    """(minor, None) from ``.python-version``/``runtime.txt``, or (None, warning) when unusable."""
    text = read_text(path, project_dir)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines:
        return None, f"{path.name} is empty; ignored"
    minor = parse_minor(lines[0])  # pyenv allows several lines; the first is the active one
    if minor is None:
        return None, f"{path.name} says {lines[0]!r}, which is not a CPython 3.x version; ignored"
    return minor, None


def pick_from_range(spec: str, *, source: str, candidates: tuple[str, ...],
                    default: str = DEFAULT_PYTHON) -> tuple[str, str]:
    """The candidate minor ``spec`` admits that is dockyard's default, else the admitted one
    nearest to it (a tie goes to the newer); returns (minor, explanation).

    Raises DetectError when the range is malformed or allows none of the candidates.
    """
    try:
        specifiers = SpecifierSet(spec)
    except InvalidSpecifier:
        raise DetectError(
            f"{source}: requires-python {spec!r} is not a valid version range",
            "write it like '>=3.10' or '>=3.10,<3.13'",
        ) from None
    allowed = [c for c in candidates if _allows_minor(specifiers, c)]
    if not allowed:
        raise DetectError(
            f"{source}: requires-python {spec!r} allows none of the supported Pythons ({', '.join(candidates)})",
            f"widen requires-python to include one of {', '.join(candidates)}, or pin one in .python-version",
        )
    of = f"of the supported {', '.join(candidates)}, requires-python {spec!r} in {source} allows {', '.join(allowed)}"
    if default in allowed:
        return default, f"dockyard's default Python: {of}"
    if len(allowed) == 1:
        return allowed[0], f"the only one: {of}"
    best = nearest_python(default, allowed)
    return best, f"nearest to dockyard's default {default}: {of}"


def _allows_minor(specifiers: SpecifierSet, minor: str) -> bool:
    return any(specifiers.contains(f"{minor}.{patch}", prereleases=False) for patch in _PATCHES_TO_TRY)


def choose_python(
    project_dir: Path,
    *,
    env_python: tuple[str, str] | None = None,
    env_python_why: str | None = None,
    requires_python: tuple[str, str] | None = None,
    candidates: tuple[str, ...] = DEFAULT_PYTHON_CANDIDATES,
) -> PythonChoice:
    """Apply the order in the module docstring.

    ``env_python`` (conda ``python=`` or MLflow python_env ``python:``) and ``requires_python`` are
    (source file, PEP 440 spec) pairs found by other detectors.
    """
    warnings: list[str] = []
    for filename in (".python-version", "runtime.txt"):
        path = project_dir / filename
        if not path.is_file():
            continue
        minor, warning = from_version_file(path, project_dir)
        if warning:
            warnings.append(warning)
        if minor:
            warnings += _conflict(minor, filename, requires_python)
            warnings += _shadowed(minor, filename, project_dir)
            return PythonChoice(minor, Reason(f"python {minor}", f"from {filename}"), tuple(warnings), filename)
    if env_python is not None:
        source, spec = env_python
        minor = pinned_minor(spec)
        if minor is not None:
            why = env_python_why or f"from python {spec} in {source}"
            return PythonChoice(minor, Reason(f"python {minor}", why), tuple(warnings),
                                None if env_python_why else source)
        minor, why = pick_from_range(spec, source=source, candidates=candidates)
        return PythonChoice(minor, Reason(f"python {minor}", why), tuple(warnings))
    if requires_python is not None:
        source, spec = requires_python
        minor, why = pick_from_range(spec, source=source, candidates=candidates)
        return PythonChoice(minor, Reason(f"python {minor}", why), tuple(warnings))
    return PythonChoice(None, None, tuple(warnings))


def _shadowed(minor: str, filename: str, project_dir: Path) -> list[str]:
    """runtime.txt that disagrees with the .python-version that wins over it."""
    other = project_dir / "runtime.txt"
    if filename != ".python-version" or not other.is_file():
        return []
    theirs, _ = from_version_file(other, project_dir)
    if theirs is None or theirs == minor:
        return []
    return [f"runtime.txt says python {theirs} but .python-version says {minor}; using .python-version"]


def _conflict(minor: str, filename: str, requires_python: tuple[str, str] | None) -> list[str]:
    if requires_python is None:
        return []
    source, spec = requires_python
    try:
        ok = _allows_minor(SpecifierSet(spec), minor)
    except InvalidSpecifier:
        return []
    if ok:
        return []
    return [f"{filename} pins python {minor}, but requires-python {spec!r} in {source} does not allow it"]
