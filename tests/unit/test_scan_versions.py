from __future__ import annotations

import pytest

from dockyard.scan.versions import (
    compare_dpkg,
    parse_dpkg_version,
    semver_key,
    sort_key,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0", "1.0", 0),
        ("1.0", "1.0-0", 0),  # a missing revision equals revision 0
        ("0:1.0", "1.0", 0),  # epoch 0 is the default
        ("1:0.9", "2.0", 1),  # epoch wins over everything
        ("1.0~rc1", "1.0", -1),  # ~ sorts before the empty string
        ("1.0~~", "1.0~", -1),
        ("1.0~", "1.0", -1),
        ("1.0", "1.0+b1", -1),
        ("1.0a", "1.0+", -1),  # letters sort before other symbols
        ("1.2.3", "1.2.10", -1),  # digit runs compare numerically
        ("1.002", "1.2", 0),  # leading zeros do not count
        ("1.0.0", "1.0", 1),
        ("1.0-1", "1.0-1+deb12u1", -1),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
        ("3.0.11-1~deb12u1", "3.0.11-1~deb12u2", -1),
        ("3.0.11-1~deb12u2", "3.0.11-1", -1),
        ("1.0-1ubuntu1", "1.0-1", 1),
        ("1.0-beta-1", "1.0-beta-2", -1),  # upstream may contain '-', the revision is after the last
        ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1),
    ],
)
def test_dpkg_ordering(a: str, b: str, expected: int) -> None:
    assert compare_dpkg(a, b) == expected
    assert compare_dpkg(b, a) == -expected


def test_dpkg_version_parts() -> None:
    assert parse_dpkg_version("2:1.2-3-4") == (2, "1.2-3", "4")
    assert parse_dpkg_version("1.0") == (1 - 1, "1.0", "")


@pytest.mark.parametrize("bad", ["a1.0", "x:1.0", "", "1.0-r$v"])
def test_invalid_dpkg_versions_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_dpkg_version(bad)


def test_semver_prereleases_sort_before_the_release() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1"]
    assert sorted(ordered, key=semver_key) == ordered


def test_unparsable_versions_give_no_sort_key() -> None:
    assert sort_key("PyPI", "not a version") is None
    assert sort_key("Debian:12", "???") is None
    assert sort_key("PyPI", "1.0.post1") > sort_key("PyPI", "1.0")
