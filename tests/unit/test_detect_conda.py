"""Conda environments mapped to PyPI through the conda_pypi.json data file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import DetectError
from dockyard.detect.conda import (
    CondaEnv,
    conda_version_to_pep440,
    load_conda_map,
    map_conda_package,
    read_conda_env,
    split_conda_spec,
)


@pytest.mark.parametrize(
    ("spec", "name", "version"),
    [
        ("numpy", "numpy", ""),
        ("numpy=1.26", "numpy", "==1.26.*"),
        ("numpy==1.26", "numpy", "==1.26"),
        ("numpy>=1.2,<2", "numpy", ">=1.2,<2"),
        ("numpy >= 1.2, <2", "numpy", ">=1.2,<2"),
        ("numpy=1.26.4=py311h64a7726_0", "numpy", "==1.26.4"),
        ("numpy 1.26.*", "numpy", "==1.26.*"),
        ("numpy 1.26.4 py311_0", "numpy", "==1.26.4"),
        ("numpy 1.2*", "numpy", "==1.2.*"),
        ("numpy>=1.2.*", "numpy", ">=1.2"),
        ("conda-forge::numpy=1.26", "numpy", "==1.26.*"),
        ("numpy[version='>=1.2']", "numpy", ">=1.2"),
        ("numpy=*", "numpy", ""),
        ("numpy=1.2|1.3", "numpy", None),
    ],
)
def test_conda_version_specs_become_pep440(spec: str, name: str, version: str | None) -> None:
    assert split_conda_spec(spec) == (name, version)


@pytest.mark.parametrize(
    ("spec", "pypi"),
    [
        ("pytorch=2.3", "torch==2.3.*"),
        ("pytorch-cpu", "torch"),
        ("py-xgboost>=2.0", "xgboost>=2.0"),
        ("tensorflow=2.16", "tensorflow==2.16.*"),
        ("scikit-learn==1.4.2", "scikit-learn==1.4.2"),
        ("Matplotlib-Base", "matplotlib"),
        ("some_new_package", "some-new-package"),
    ],
)
def test_conda_names_map_to_pypi_names(spec: str, pypi: str) -> None:
    assert map_conda_package(spec).pypi == pypi


@pytest.mark.parametrize("spec", ["pip", "setuptools", "cudatoolkit=11.8", "mkl", "python=3.10", "cpuonly"])
def test_installer_python_and_system_libraries_are_dropped_with_a_reason(spec: str) -> None:
    mapped = map_conda_package(spec)
    assert (mapped.pypi, mapped.unmappable) == (None, False)
    assert mapped.note


@pytest.mark.parametrize("spec", ["r-base=4.3", "r-ggplot2", "ffmpeg", "openjdk=17"])
def test_conda_only_packages_are_unmappable(spec: str) -> None:
    mapped = map_conda_package(spec)
    assert (mapped.pypi, mapped.unmappable) == (None, True)


def test_mapping_table_is_data_with_no_name_in_two_categories() -> None:
    table = load_conda_map()
    assert not set(table.rename) & set(table.drop)
    assert not set(table.drop) & table.unmappable
    assert table.rename["pytorch"] == "torch"


def read(tmp_path: Path, text: str, name: str = "environment.yml") -> CondaEnv:
    (tmp_path / name).write_text(text)
    return read_conda_env(tmp_path / name, tmp_path)


def test_environment_with_nested_pip_list_and_python_version(tmp_path: Path) -> None:
    env = read(
        tmp_path,
        "name: x\nchannels: [conda-forge]\ndependencies:\n"
        "  - python=3.11\n  - numpy=1.26\n  - pip\n  - pip:\n    - Requests==2.32.3\n"
        "    - --extra-index-url https://download.pytorch.org/whl/cpu\n",
    )
    assert env.python_spec == "==3.11.*"
    assert env.requirements == ("numpy==1.26.*", "requests==2.32.3")
    assert env.options == ("--extra-index-url https://download.pytorch.org/whl/cpu",)


def test_missing_pip_include_names_the_environment_file_line(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"^environment.yml:3: -r missing.txt: file not found"):
        read(tmp_path, "dependencies:\n  - pip:\n    - -r missing.txt\n")


def test_pip_include_resolves_next_to_the_environment_file(tmp_path: Path) -> None:
    (tmp_path / "extra.txt").write_text("scipy\n")
    env = read(tmp_path, "dependencies:\n  - python=3.11\n  - pip:\n    - -r extra.txt\n")
    assert env.requirements == ("scipy",)
    assert env.python_spec == "==3.11.*"


def test_unmappable_packages_are_named_in_one_warning(tmp_path: Path) -> None:
    env = read(tmp_path, "dependencies:\n  - numpy\n  - r-base\n  - ffmpeg\n")
    assert env.unmappable == ("r-base", "ffmpeg")
    assert len(env.warnings) == 1 and "r-base, ffmpeg" in env.warnings[0]
    assert env.requirements == ("numpy",)


def test_untranslatable_version_is_dropped_with_a_warning(tmp_path: Path) -> None:
    env = read(tmp_path, "dependencies:\n  - numpy=1.2|1.3\n")
    assert env.requirements == ("numpy",)
    assert "no pip equivalent" in env.warnings[0]


def test_bad_pip_entry_names_its_real_line(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"^environment.yml:6: invalid requirement 'not valid!'"):
        read(tmp_path, "name: x\ndependencies:\n  - numpy\n  - pip:\n    - requests\n    - not valid!\n")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match=r"^environment.yml:3: invalid YAML"):
        read(tmp_path, "dependencies:\n  - numpy\n  - bad: x: y\n")


def test_dependencies_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match="'dependencies' must be a list"):
        read(tmp_path, "dependencies: numpy\n")


def test_unexpected_mapping_in_dependencies_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match="unexpected mapping"):
        read(tmp_path, "dependencies:\n  - npm: [left-pad]\n")


@pytest.mark.parametrize("version", ["1.2|1.3", "not a version!"])
def test_versions_without_pep440_form_return_none(version: str) -> None:
    assert conda_version_to_pep440(version) is None
