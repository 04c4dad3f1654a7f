"""MLflow MLproject: rendered entry points and the environment files it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import DetectError, detect
from dockyard.detect.mlproject import (
    MLProject,
    Param,
    command_parameters,
    find_mlproject,
    read_mlproject,
    render_command,
)
from dockyard.errors import UsageError


def read(tmp_path: Path, text: str, name: str = "MLproject") -> MLProject:
    (tmp_path / name).write_text(text)
    return read_mlproject(tmp_path / name, tmp_path)


MAIN = (
    "entry_points:\n  main:\n    parameters:\n"
    "      alpha: {type: float, default: 0.5}\n"
    "      name: {type: string, default: 'my run'}\n"
    "      epochs: {type: int, default: 3}\n"
    '    command: "python train.py --alpha {alpha} --name {name} -e {epochs}"\n'
)


def test_entry_point_keeps_its_template_and_declares_typed_parameters(tmp_path: Path) -> None:
    ml = read(tmp_path, MAIN)

    assert ml.entry_points == {"main": "python train.py --alpha {alpha} --name {name} -e {epochs}"}
    assert ml.parameters["main"]["alpha"] == Param("alpha", "float", "0.5")
    assert ml.parameters["main"]["epochs"] == Param("epochs", "int", "3")


def test_run_values_replace_defaults_and_are_shell_quoted(tmp_path: Path) -> None:
    ml = read(tmp_path, MAIN)

    command, values = render_command(ml.entry_points["main"], ml.parameters["main"], {"alpha": "0.3"})

    assert command == "python train.py --alpha 0.3 --name 'my run' -e 3"
    assert values == {"alpha": "0.3", "name": "my run", "epochs": "3"}


@pytest.mark.parametrize(("given", "words"), [
    ({"alpah": "0.3"}, ["unknown --param 'alpah'", "alpha (float, default 0.5)", "epochs (int, default 3)"]),
    ({"alpha": "lots"}, ["alpha='lots'", "float"]),
    ({"epochs": "2.5"}, ["epochs='2.5'", "int"]),
])
def test_bad_params_are_user_errors_that_name_the_declared_ones(tmp_path: Path, given: dict[str, str], words: list[str]) -> None:
    ml = read(tmp_path, MAIN)
    with pytest.raises(UsageError) as info:
        render_command(ml.entry_points["main"], ml.parameters["main"], given)
    for word in words:
        assert word in info.value.problem


def test_a_required_parameter_must_be_given(tmp_path: Path) -> None:
    ml = read(tmp_path, "entry_points:\n  main:\n    parameters:\n      data: path\n    command: python s.py {data}\n")
    with pytest.raises(UsageError, match="'data' has no default"):
        render_command(ml.entry_points["main"], ml.parameters["main"], {})


def test_the_train_command_declares_the_matching_entry_points_parameters(tmp_path: Path) -> None:
    read(tmp_path, MAIN)
    declared = command_parameters(tmp_path, "python train.py --alpha {alpha}   --name {name} -e {epochs}")
    assert set(declared) == {"alpha", "name", "epochs"}
    assert command_parameters(tmp_path, "python train.py") == {}
    # A placeholder no MLproject declares is a required string.
    assert command_parameters(tmp_path, "python other.py {seed}") == {"seed": Param("seed", "string", None)}


def test_multiline_command_is_collapsed_to_one_line(tmp_path: Path) -> None:
    ml = read(tmp_path, "entry_points:\n  main:\n    command: >\n      python train.py\n      --epochs 2\n")
    assert ml.entry_points["main"] == "python train.py --epochs 2"


def test_short_form_parameter_has_no_default_and_is_warned_about(tmp_path: Path) -> None:
    ml = read(
        tmp_path, "entry_points:\n  score:\n    parameters:\n      data: path\n    command: python score.py {data}\n"
    )
    assert ml.entry_points["score"] == "python score.py {data}"
    assert "data" in ml.warnings[0]


def test_entry_point_without_command_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match="entry point 'main' has no 'command'"):
        read(tmp_path, "entry_points:\n  main:\n    parameters: {}\n")


def test_referenced_environment_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError) as err:
        read(tmp_path, "conda_env: conda.yaml\nentry_points:\n  main:\n    command: python train.py\n")
    assert "conda_env names conda.yaml, which does not exist" in err.value.problem


def test_mlproject_file_name_is_case_insensitive(tmp_path: Path) -> None:
    (tmp_path / "mlProject").write_text("name: x\n")
    assert find_mlproject(tmp_path) == tmp_path / "mlProject"


def test_main_entry_point_becomes_the_train_command_over_train_py(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "MLproject").write_text("entry_points:\n  main:\n    command: python fit.py\n")
    found = detect(tmp_path)
    assert found.train_command == "python fit.py"
    assert any(r.why == "MLproject entry point 'main'" for r in found.reasons)


def test_python_env_with_inline_requirements_is_the_dependency_source(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text("python_env: env/python_env.yaml\n")
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "python_env.yaml").write_text('python: "3.12"\ndependencies:\n  - Torch==2.3.1\n  - mlflow\n')
    found = detect(tmp_path)
    assert (found.dependency_kind, found.dependency_file) == ("requirements", "env/python_env.yaml")
    assert found.requirements == ("torch==2.3.1", "mlflow")
    assert found.python_version == "3.12"


def test_python_env_build_dependencies_are_installed_before_its_dependencies(tmp_path: Path) -> None:
    # MLflow's virtualenv manager installs build_dependencies first; mlflow 2.x imports pkg_resources,
    # which only setuptools provides (a real MLproject failed in a fresh venv without it)
    (tmp_path / "MLproject").write_text("python_env: python_env.yaml\n")
    (tmp_path / "python_env.yaml").write_text('python: "3.10.12"\nbuild_dependencies:\n- pip\n- setuptools\n'
                                              "- wheel==0.41.2\ndependencies:\n- -r requirements.txt\n")
    (tmp_path / "requirements.txt").write_text("mlflow==2.7.0\nscikit-learn==1.3.0\n")
    found = detect(tmp_path)
    # pip is the installer, not an import: the uv-made venv does without it
    assert found.requirements == ("setuptools", "wheel==0.41.2", "mlflow==2.7.0", "scikit-learn==1.3.0")
    assert found.dependency_file == "requirements.txt"
    assert found.python_version == "3.10"


def test_python_env_build_dependencies_must_be_a_list(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text("python_env: python_env.yaml\n")
    (tmp_path / "python_env.yaml").write_text('python: "3.11"\nbuild_dependencies: pip\ndependencies: [mlflow]\n')
    with pytest.raises(DetectError) as err:
        detect(tmp_path)
    assert "build_dependencies" in err.value.problem and "'- name'" in err.value.fix


def test_python_env_python_written_as_a_number_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text("python_env: python_env.yaml\n")
    (tmp_path / "python_env.yaml").write_text("python: 3.10\ndependencies: []\n")
    with pytest.raises(DetectError) as err:
        detect(tmp_path)
    assert 'python: "3.10"' in err.value.fix


def test_conda_env_reference_is_followed(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_text("conda_env: envs/train.yaml\n")
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "train.yaml").write_text("dependencies:\n  - python=3.11\n  - pytorch=2.3\n")
    found = detect(tmp_path)
    assert (found.dependency_kind, found.dependency_file, found.requirements) == (
        "conda",
        "envs/train.yaml",
        ("torch==2.3.*",),
    )
    assert found.python_version == "3.11"


def test_entry_points_that_are_not_a_mapping_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match="entry_points must be a mapping"):
        read(tmp_path, "entry_points: [main]\n")
