"""The ordered priority list that picks one dependency source when a project has several."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import detect
from projectfiles import write

UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "numpy" }]

[[package]]
name = "numpy"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }
"""
PYPROJECT = '[project]\nname = "app"\nversion = "0.1"\ndependencies = ["numpy"]\n'
PYPROJECT_NO_DEPS = '[project]\nname = "app"\nversion = "0.1"\ndependencies = []\n'
MLPROJECT_CONDA = "name: app\nconda_env: envs/train.yaml\nentry_points:\n  main:\n    command: python train.py\n"
CONDA = "dependencies:\n  - numpy\n"


@pytest.mark.parametrize(
    ("files", "kind", "chosen"),
    [
        ({"uv.lock": UV_LOCK, "pyproject.toml": PYPROJECT, "requirements.txt": "numpy\n"}, "uv-lock", "uv.lock"),
        ({"pyproject.toml": PYPROJECT, "requirements.txt": "numpy\n"}, "pyproject", "pyproject.toml"),
        ({"pyproject.toml": PYPROJECT_NO_DEPS, "requirements.txt": "numpy\n"}, "requirements", "requirements.txt"),
        ({"pyproject.toml": PYPROJECT_NO_DEPS}, "pyproject", "pyproject.toml"),
        ({"requirements.txt": "numpy\n", "environment.yml": CONDA}, "requirements", "requirements.txt"),
        (
            {"MLproject": MLPROJECT_CONDA, "envs/train.yaml": CONDA, "requirements.txt": "x\n"},
            "conda",
            "envs/train.yaml",
        ),
        ({"environment.yml": CONDA, "conda.yaml": CONDA}, "conda", "environment.yml"),
        ({"conda.yaml": CONDA}, "conda", "conda.yaml"),
        (
            {"requirements-dev.txt": "pytest\n", "requirements-prod.txt": "numpy\n"},
            "requirements",
            "requirements-prod.txt",
        ),
        (
            {"requirements/base.txt": "numpy\n", "requirements/test.txt": "pytest\n"},
            "requirements",
            "requirements/base.txt",
        ),
        ({"requirements.txt": "numpy\n", "requirements-dev.txt": "pytest\n"}, "requirements", "requirements.txt"),
    ],
    ids=[
        "uv-lock-beats-pyproject-and-requirements",
        "pyproject-dependencies-beat-requirements",
        "empty-pyproject-dependencies-fall-through-to-requirements",
        "pyproject-without-dependencies-is-last-resort",
        "requirements-beat-conda",
        "mlproject-conda-env-beats-requirements",
        "environment-yml-beats-conda-yaml",
        "conda-yaml-alone",
        "prod-requirements-beat-dev",
        "requirements-dir-base-beats-test",
        "requirements-txt-beats-requirements-dev",
    ],
)
def test_priority_list_picks_one_dependency_source(
    tmp_path: Path, files: dict[str, str], kind: str, chosen: str
) -> None:
    found = detect(write(tmp_path, files))
    assert (found.dependency_kind, found.dependency_file) == (kind, chosen)


def test_only_a_dev_requirements_file_is_used_with_a_warning(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"requirements-dev.txt": "pytest\n"}))
    assert found.dependency_file == "requirements-dev.txt"
    assert any("looks like a dev/test file" in w for w in found.warnings)


def test_unused_dependency_files_are_named_in_the_reasons(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"pyproject.toml": PYPROJECT, "requirements.txt": "numpy\n", "conda.yaml": CONDA}))
    unused = [r.what for r in found.reasons if r.what.startswith("not used")]
    assert unused == ["not used: requirements.txt, conda.yaml"]


def test_uv_lock_counts_its_pyproject_as_part_of_the_same_source(tmp_path: Path) -> None:
    found = detect(write(tmp_path, {"uv.lock": UV_LOCK, "pyproject.toml": PYPROJECT}))
    assert not [r for r in found.reasons if r.what.startswith("not used")]
    assert found.python_version == "3.11"  # dockyard's default, which >=3.11 allows


def test_python_candidates_can_be_narrowed_by_the_caller(tmp_path: Path) -> None:
    found = detect(
        write(tmp_path, {"uv.lock": UV_LOCK, "pyproject.toml": PYPROJECT}), python_candidates=("3.12", "3.13")
    )
    assert found.python_version == "3.12"  # the default (3.11) is not a candidate: the nearest one is
