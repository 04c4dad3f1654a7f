"""pyproject.toml: PEP 621 dependencies and requires-python; Poetry-only files warn."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import DetectError, detect
from dockyard.detect.pyproject import PyprojectInfo, read_pyproject


def read(tmp_path: Path, text: str) -> PyprojectInfo:
    (tmp_path / "pyproject.toml").write_text(text)
    return read_pyproject(tmp_path / "pyproject.toml", tmp_path)


def test_pep621_dependencies_and_requires_python_are_read(tmp_path: Path) -> None:
    info = read(tmp_path, '[project]\nname = "m"\nrequires-python = ">=3.11"\ndependencies = ["Torch>=2.3", "numpy"]\n')
    assert info.dependencies == ("torch>=2.3", "numpy")
    assert info.requires_python == ">=3.11"
    assert info.name == "m"
    assert info.warnings == ()


def test_optional_dependencies_are_not_installed(tmp_path: Path) -> None:
    info = read(
        tmp_path, '[project]\nname = "m"\ndependencies = ["numpy"]\n[project.optional-dependencies]\ndev = ["pytest"]\n'
    )
    assert info.dependencies == ("numpy",)


def test_poetry_only_pyproject_is_left_to_the_poetry_reader(tmp_path: Path) -> None:
    info = read(tmp_path, '[tool.poetry]\nname = "m"\n[tool.poetry.dependencies]\npython = "^3.10"\ntorch = "^2.3"\n')
    assert info.dependencies == ()
    assert not info.declares_dependencies
    assert info.warnings == ()  # detect/poetry.py reads [tool.poetry.dependencies]


def test_poetry_only_project_is_read_with_carets_as_pep440(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.poetry.dependencies]\npython = "^3.10"\nnumpy = "^1.26"\n'
                                             'pandas = "~2.1.0"\nscikit-learn = "*"\n')
    found = detect(tmp_path)
    assert found.dependency_kind == "pyproject"
    assert found.requirements == ("numpy<2.0,>=1.26", "pandas<2.2.0,>=2.1.0", "scikit-learn")
    assert found.python_version == "3.10" or found.python_version is not None


def test_dynamic_dependencies_give_a_warning(tmp_path: Path) -> None:
    info = read(tmp_path, '[project]\nname = "m"\ndynamic = ["dependencies"]\n')
    assert "dynamic" in info.warnings[0]


def test_invalid_dependency_names_its_index_and_text(tmp_path: Path) -> None:
    with pytest.raises(DetectError) as err:
        read(tmp_path, '[project]\nname = "m"\ndependencies = ["numpy", "torch >> 2"]\n')
    assert "pyproject.toml: [project].dependencies[1] is not a valid requirement: 'torch >> 2'" in err.value.problem


def test_broken_toml_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"pyproject.toml is not valid TOML: .*line 2"):
        read(tmp_path, '[project]\nname = "m\n')


def test_dependencies_that_are_not_a_list_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"must be a list of strings"):
        read(tmp_path, '[project]\ndependencies = "numpy"\n')
