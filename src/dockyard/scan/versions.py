"""Version ordering per ecosystem: PEP 440 (PyPI), dpkg (Debian/Ubuntu) and SemVer.

``sort_key(ecosystem, version)`` returns a comparable key, or None when the version cannot be
parsed in that ecosystem (the caller then cannot evaluate a range and must say so).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from packaging.version import InvalidVersion, Version

# -- dpkg ------------------------------------------------------------------------------------


def _order(ch: str) -> int:
    """dpkg's character weight: '~' before everything (even end of string), letters before symbols."""
    if ch == "~":
        return -1
    if ch.isdigit():
        return 0
    if ch.isalpha():
        return ord(ch)
    return ord(ch) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's lib/dpkg/version.c verrevcmp: alternate non-digit and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


_DPKG_RE = re.compile(r"^(?:(\d+):)?([A-Za-z0-9.+~:-]+?)(?:-([A-Za-z0-9.+~]+))?$")


def parse_dpkg_version(version: str) -> tuple[int, str, str]:
    """Split ``[epoch:]upstream[-revision]``; raises ValueError for an invalid version."""
    text = version.strip()
    epoch = 0
    if ":" in text:
        head, _, text = text.partition(":")
        if not head.isdigit():
            raise ValueError(f"bad epoch in Debian version {version!r}")
        epoch = int(head)
    upstream, dash, revision = text.rpartition("-")
    if not dash:
        upstream, revision = text, ""
    if not upstream or not upstream[0].isdigit() or not re.fullmatch(r"[A-Za-z0-9.+~:-]+", upstream):
        raise ValueError(f"bad upstream part in Debian version {version!r}")
    if revision and not re.fullmatch(r"[A-Za-z0-9.+~]+", revision):
        raise ValueError(f"bad revision in Debian version {version!r}")
    return epoch, upstream, revision


def compare_dpkg(a: str, b: str) -> int:
    """Negative, zero or positive as ``a`` sorts before, equal to or after ``b`` (dpkg rules)."""
    ea, ua, ra = parse_dpkg_version(a)
    eb, ub, rb = parse_dpkg_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    result = _verrevcmp(ua, ub) or _verrevcmp(ra, rb)
    return (result > 0) - (result < 0)


@functools.total_ordering
class DpkgKey:
    __slots__ = ("version",)

    def __init__(self, version: str) -> None:
        parse_dpkg_version(version)
        self.version = version

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DpkgKey) and compare_dpkg(self.version, other.version) == 0

    def __lt__(self, other: DpkgKey) -> bool:
        return compare_dpkg(self.version, other.version) < 0

    def __hash__(self) -> int:  # equal keys need equal hashes; coarse but correct
        return 0


# -- SemVer ----------------------------------------------------------------------------------

_SEMVER_RE = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def semver_key(version: str) -> tuple[Any, ...]:
    m = _SEMVER_RE.match(version.strip())
    if not m:
        raise ValueError(f"not a semantic version: {version!r}")
    core = tuple(int(x or 0) for x in m.groups()[:3])
    pre = m.group(4)
    if pre is None:
        return (core, (1,))  # a release sorts after all of its pre-releases
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (core, (0, ids))


# -- dispatch --------------------------------------------------------------------------------


def comparator_for(ecosystem: str) -> str:
    base = ecosystem.split(":", 1)[0].lower()
    if base == "pypi":
        return "pep440"
    if base in {"debian", "ubuntu"}:
        return "dpkg"
    return "semver"


def sort_key(ecosystem: str, version: str, *, range_type: str = "ECOSYSTEM") -> Any:
    """Comparable key for ``version``, or None when it does not parse."""
    kind = "semver" if range_type == "SEMVER" else comparator_for(ecosystem)
    try:
        if kind == "pep440":
            return Version(version)
        if kind == "dpkg":
            return DpkgKey(version)
        return semver_key(version)
    except (InvalidVersion, ValueError):
        return None


def same_version(ecosystem: str, a: str, b: str) -> bool:
    """Equality used for explicit ``versions`` lists (1.0 == 1.0.0 on PyPI)."""
    if a == b:
        return True
    ka, kb = sort_key(ecosystem, a), sort_key(ecosystem, b)
    return ka is not None and kb is not None and ka == kb
