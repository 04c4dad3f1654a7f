"""Python version: .python-version > runtime.txt > conda python= > requires-python."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import DetectError, detect
from dockyard.detect.python_version import choose_python, parse_minor, pick_from_range
from projectfiles import write


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("3.11", "3.11"),
        ("3.11.4", "3.11"),
        ("python-3.10.12", "3.10"),
        ("cpython-3.12.1", "3.12"),
        ("3.13.0rc1", "3.13"),
        ("system", None),
        ("pypy3.10", None),
        ("2.7.18", None),
    ],
)
def test_version_strings_reduce_to_major_minor(text: str, minor: str | None) -> None:
    assert parse_minor(text) == minor


@pytest.mark.parametrize(
    ("spec", "minor", "rule"),
    [
        (">=3.6", "3.11", "default"),  # setup.py python_requires of a 2018 project: not 3.13
        (">=3.8", "3.11", "default"),
        (">=3.10,<3.13", "3.11", "default"),
        ("~=3.10", "3.11", "default"),
        ("==3.11.*", "3.11", "default"),
        (">=3.11.4", "3.11", "default"),
        ("~=3.10.0", "3.10", "only"),
        ("==3.10.11", "3.10", "only"),  # Poetry's python = "3.10.11" keeps its minor version
        ("<3.11", "3.10", "only"),
        (">=3.12", "3.12", "nearest"),
        (">=3.13", "3.13", "only"),
        ("!=3.11.*", "3.12", "nearest"),  # 3.10 and 3.12 are as near: the newer wins
        (">=3.10,!=3.11.*,!=3.12.*", "3.10", "nearest"),
    ],
)
def test_requires_python_prefers_the_default_else_the_nearest_to_it(spec: str, minor: str, rule: str) -> None:
    chosen, why = pick_from_range(spec, source="pyproject.toml", candidates=("3.10", "3.11", "3.12", "3.13"))
    assert chosen == minor
    assert spec in why and "pyproject.toml" in why
    starts = {"default": "dockyard's default Python", "only": "the only one", "nearest": "nearest to dockyard's default 3.11"}
    assert why.startswith(starts[rule])


def test_requires_python_allowing_no_candidate_is_an_error_listing_them() -> None:
    with pytest.raises(DetectError) as err:
        pick_from_range(">=3.14", source="pyproject.toml", candidates=("3.10", "3.11"))
    assert "allows none of the supported Pythons (3.10, 3.11)" in err.value.problem


def test_malformed_requires_python_is_an_error() -> None:
    with pytest.raises(DetectError, match="not a valid version range"):
        pick_from_range("3.11", source="pyproject.toml", candidates=("3.11",))


PYPROJECT = '[project]\nname = "x"\nrequires-python = ">=3.10"\ndependencies = ["numpy"]\n'


@pytest.mark.parametrize(
    ("files", "version", "why"),
    [
        (
            {".python-version": "3.11.4\n", "runtime.txt": "python-3.10.12", "pyproject.toml": PYPROJECT},
            "3.11",
            "from .python-version",
        ),
        ({"runtime.txt": "python-3.10.12\n", "pyproject.toml": PYPROJECT}, "3.10", "from runtime.txt"),
        ({"environment.yml": "dependencies:\n  - python=3.10\n"}, "3.10", "in environment.yml"),
        (
            {"environment.yml": "dependencies:\n  - python>=3.11\n"},
            "3.11",
            "requires-python '>=3.11' in environment.yml",
        ),
        ({"pyproject.toml": PYPROJECT}, "3.11", "dockyard's default Python: of the supported 3.10, 3.11, 3.12, 3.13, "
         "requires-python '>=3.10' in pyproject.toml allows 3.10, 3.11, 3.12, 3.13"),
        ({".python-version": "# pyenv\n3.12\n3.11\n"}, "3.12", "from .python-version"),
    ],
)
def test_python_version_sources_in_priority_order(
    tmp_path: Path, files: dict[str, str], version: str, why: str
) -> None:
    found = detect(write(tmp_path, files))
    assert found.python_version == version
    reason = next(r for r in found.reasons if r.what == f"python {version}")
    assert why in reason.why


def test_unusable_python_version_file_falls_through_with_a_warning(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {".python-version": "system\n", "runtime.txt": "python-3.12.1\n"}))
    assert found.python_version == "3.12"
    assert any(".python-version says 'system'" in w for w in found.warnings)


def test_pin_outside_requires_python_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, {".python-version": "3.9\n"})
    choice = choose_python(tmp_path, requires_python=("pyproject.toml", ">=3.10"))
    assert choice.version == "3.9"
    assert "does not allow it" in choice.warnings[0]


def test_nothing_pinned_gives_none(tmp_path: Path) -> None:
    assert choose_python(tmp_path).version is None
