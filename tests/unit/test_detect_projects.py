"""detect() on whole fixture projects: one row per project format (tests/fixtures/projects/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockyard.detect import DetectError, Detection, Reason, detect

PROJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "projects"

# project -> the fields detect() must report (fields not listed are checked by other tests).
EXPECTED: dict[str, dict[str, Any]] = {
    "requirements_project": {
        "primary_framework": "scikit-learn",
        "dependency_kind": "requirements",
        "dependency_file": "requirements.txt",
        "dependency_files": ("requirements.txt", "requirements/base.txt"),
        "requirements": ("numpy<2,>=1.26", "scikit-learn==1.4.2", 'joblib>=1.3; python_version >= "3.9"'),
        "index_options": ("--extra-index-url https://download.pytorch.org/whl/cpu",),
        "python_version": None,
        "frameworks": ("scikit-learn",),
        "framework_versions": {"scikit-learn": "==1.4.2"},
        "train_command": "python train.py",
        "serve_entry": "predict.py:Predictor",
    },
    "pyproject_project": {
        "primary_framework": "xgboost",
        "dependency_kind": "pyproject",
        "dependency_file": "pyproject.toml",
        "requirements": ("xgboost==2.0.3", "pandas>=2.1"),
        "python_version": "3.11",  # requires-python >=3.10,<3.13 admits dockyard's default
        "frameworks": ("xgboost",),
        "framework_versions": {"xgboost": "==2.0.3"},
        "train_command": "python train.py",
        "serve_entry": "models/model.ubj",
        "project_name": "fraud-model",
    },
    "uvlock_project": {
        "primary_framework": "lightgbm",
        "dependency_kind": "uv-lock",
        "dependency_file": "uv.lock",
        "requirements": ("lightgbm==4.3.0", "numpy==1.26.4", "scipy==1.13.0"),
        "python_version": "3.11",  # requires-python >=3.11 admits dockyard's default
        "frameworks": ("lightgbm",),
        "framework_versions": {"lightgbm": "==4.3.0"},
        "train_command": None,
        "serve_entry": "model.txt",
    },
    "conda_project": {
        "primary_framework": "onnxruntime",
        "dependency_kind": "conda",
        "dependency_file": "environment.yml",
        "requirements": ("torch==2.3.*", "scikit-learn>=1.3", "opencv-python-headless", "onnxruntime==1.18.0"),
        "index_options": ("--extra-index-url https://download.pytorch.org/whl/cpu",),
        "python_version": "3.10",
        "frameworks": ("scikit-learn", "torch", "onnxruntime"),
        "framework_versions": {"scikit-learn": ">=1.3", "torch": "==2.3.*", "onnxruntime": "==1.18.0"},
        "serve_entry": "model.onnx",
    },
    "mlflow_project": {
        "primary_framework": "scikit-learn",
        "dependency_kind": "requirements",
        "dependency_file": "requirements.txt",
        "dependency_files": ("python_env.yaml", "requirements.txt"),
        "requirements": ("mlflow>=2.12", "scikit-learn==1.3.2"),
        "python_version": "3.10",
        "frameworks": ("scikit-learn",),
        "train_command": "python train.py --alpha {alpha} --l1-ratio {l1_ratio}",
        "entry_points": {
            "main": "python train.py --alpha {alpha} --l1-ratio {l1_ratio}",
            "validate": "python validate.py {data_path}",
        },
        "project_name": "wine-quality",
    },
    "torch_imports_project": {
        "primary_framework": "torch",
        "dependency_kind": "none",
        "dependency_file": None,
        "requirements": ("torch",),  # inferred from the imports: nothing else would install it
        "inferred_requirements": True,
        "frameworks": ("torch",),
        "framework_versions": {},
        "train_command": "python -m train",
        "serve_entry": "serve.py:LinearPredictor",
    },
    "python_version_project": {
        "primary_framework": "tensorflow",
        "dependency_kind": "requirements",
        "requirements": ("tensorflow-cpu==2.16.1", "keras>=3.0"),
        "python_version": "3.11",
        "frameworks": ("tensorflow", "keras"),
        "framework_versions": {"tensorflow": "==2.16.1", "keras": ">=3.0"},
    },
}


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_fixture_project_is_detected_as_expected(project: str) -> None:
    found = detect(PROJECTS / project)
    actual = {field: getattr(found, field) for field in EXPECTED[project]}
    actual = {k: dict(v) if k in ("framework_versions", "entry_points") else v for k, v in actual.items()}
    assert actual == EXPECTED[project]


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_every_detection_explains_its_dependency_and_python_choice(project: str) -> None:
    found = detect(PROJECTS / project)
    assert all(isinstance(r, Reason) and r.what and r.why for r in found.reasons)
    assert found.reasons[0].what.startswith("dependencies:")
    assert any(r.what.startswith("python") for r in found.reasons)
    for framework in found.frameworks:
        assert any(r.what.startswith(f"framework: {framework}") for r in found.reasons)


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_detection_serialises_to_json(project: str) -> None:
    found = detect(PROJECTS / project)
    data = json.loads(json.dumps(found.as_dict()))
    assert data["dependency_kind"] == found.dependency_kind
    assert data["requirements"] == list(found.requirements)


def test_conda_project_warns_about_the_unmappable_package_by_name() -> None:
    found = detect(PROJECTS / "conda_project")
    assert [w for w in found.warnings if "r-base" in w], found.warnings
    assert not any("r-base" in req for req in found.requirements)


def test_mlproject_parameter_without_default_is_left_in_place_with_a_warning() -> None:
    found = detect(PROJECTS / "mlflow_project")
    assert any("data_path" in w and "no default" in w for w in found.warnings)


def test_dev_requirements_file_is_reported_as_not_used() -> None:
    found = detect(PROJECTS / "requirements_project")
    unused = [r for r in found.reasons if r.what.startswith("not used")]
    assert unused and "requirements-dev.txt" in unused[0].what


def test_index_options_are_explained_for_plan() -> None:
    found = detect(PROJECTS / "conda_project")
    assert Reason("pip options: --extra-index-url https://download.pytorch.org/whl/cpu", "from environment.yml") in (
        found.reasons
    )


def test_runtime_txt_that_disagrees_with_python_version_file_is_a_warning() -> None:
    found = detect(PROJECTS / "python_version_project")
    assert any("runtime.txt says python 3.10" in w for w in found.warnings)


def test_bad_requirements_file_error_names_file_line_and_text() -> None:
    with pytest.raises(DetectError) as err:
        detect(PROJECTS / "bad_requirements")
    assert err.value.problem.startswith("requirements.txt:3: invalid requirement 'scikit-learn=1.4'")
    assert "PEP 508" in err.value.fix


def test_detection_is_frozen() -> None:
    found = detect(PROJECTS / "torch_imports_project")
    with pytest.raises(AttributeError):
        found.train_command = "x"  # type: ignore[misc]
    assert isinstance(found, Detection)


def test_missing_project_directory_is_a_detect_error(tmp_path: Path) -> None:
    with pytest.raises(DetectError, match="is not a directory"):
        detect(tmp_path / "nope")


def test_empty_project_detects_nothing_and_says_so(tmp_path: Path) -> None:
    found = detect(tmp_path)
    assert (found.dependency_kind, found.dependency_file, found.requirements) == ("none", None, ())
    assert (found.frameworks, found.train_command, found.serve_entry, found.python_version) == ((), None, None, None)
    assert found.reasons[0] == Reason("dependencies: none", "no dependency file found")
