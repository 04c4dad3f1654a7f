"""BentoML: bentofile.yaml -> dockyard.yaml, and which saved model of a BentoML store is served."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dockyard.errors import ConfigError
from dockyard.interop.bentoml import model_entry, saved_models, services
from dockyard.project import init

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "projects" / "bentoml_iris"

# model.yaml as bentoml 1.4.40 writes it (bentoml.sklearn.save_model)
MODEL_YAML = """name: {name}
version: {version}
module: {module}
labels: {{}}
options: {{}}
metadata: {{}}
context:
  framework_name: sklearn
  framework_versions:
    scikit-learn: 1.9.1
  bentoml_version: 1.4.40
  python_version: 3.11.7
signatures:
  predict:
    batchable: true
api_version: v1
creation_time: '{created}'
"""


def save(home: Path, name: str, version: str, module: str, created: str, files: dict[str, str]) -> Path:
    folder = home / "models" / name / version
    folder.mkdir(parents=True)
    (folder / "model.yaml").write_text(MODEL_YAML.format(name=name, version=version, module=module, created=created))
    for rel, text in files.items():
        (folder / rel).write_text(text)
    (home / "models" / name / "latest").write_text(version)
    return folder


def test_init_reads_bentofile_yaml(tmp_path: Path) -> None:
    project = shutil.copytree(PROJECT, tmp_path / "iris")
    result = init(project)
    cfg = result.config
    assert cfg.python == "3.11" and cfg.system_packages == ("libgomp1",)
    assert cfg.env == {"IRIS_GREETING": "hello"}
    assert cfg.dependencies.file == "requirements-bentoml.txt"
    assert (project / "requirements-bentoml.txt").read_text().splitlines()[1:] == [
        "scikit-learn==1.7.2", "bentoml==1.4.40"]
    assert any("BentoML service IrisClassifier" in n for n in result.notes)
    assert services(project) == ["IrisClassifier"]


def test_bentofile_requirements_txt_cuda_and_lock_packages(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("scikit-learn\n")
    (tmp_path / "bentofile.yaml").write_text(
        "service: svc:S\npython:\n  requirements_txt: ./requirements.txt\n  lock_packages: true\n"
        "docker:\n  python_version: '3.12.4'\n  cuda_version: '12.1'\n  distro: alpine\n")
    result = init(tmp_path)
    cfg = result.config
    assert cfg.dependencies.file == "requirements.txt" and cfg.python == "3.12"
    assert (cfg.gpu.enabled, cfg.gpu.cuda) == (True, "12.1")
    notes = "\n".join(result.notes)
    assert "dockyard lock" in notes and "not mapped: docker.distro (alpine)" in notes


def test_python_packages_without_bentoml_get_it(tmp_path: Path) -> None:
    # BentoML's own sk-learn example lists only scikit-learn and pandas: bentoml itself goes into every
    # bento, and prepare_model.py imports it (ModuleNotFoundError in the train image before this)
    (tmp_path / "bentofile.yaml").write_text(
        'service: "service.py:IrisClassifier"\npython:\n  packages:\n    - scikit-learn\n    - pandas\n')
    result = init(tmp_path)
    assert (tmp_path / "requirements-bentoml.txt").read_text().splitlines()[1:] == ["scikit-learn", "pandas", "bentoml"]
    assert any("plus bentoml" in n for n in result.notes)


def test_python_packages_that_pin_bentoml_keep_their_pin(tmp_path: Path) -> None:
    (tmp_path / "bentofile.yaml").write_text("python:\n  packages:\n    - BentoML[io]==1.4.40\n    - bentoml-extra\n")
    init(tmp_path)
    assert (tmp_path / "requirements-bentoml.txt").read_text().splitlines()[1:] == ["BentoML[io]==1.4.40", "bentoml-extra"]


def test_a_requirements_txt_without_bentoml_is_named(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("scikit-learn\nbentoml-extra\n")
    (tmp_path / "bentofile.yaml").write_text("python:\n  requirements_txt: requirements.txt\n")
    notes = "\n".join(init(tmp_path).notes)
    assert "requirements.txt does not list bentoml" in notes
    (tmp_path / "requirements.txt").write_text("scikit-learn\nbentoml>=1.2\n")
    assert "does not list bentoml" not in "\n".join(init(tmp_path, force=True).notes)


def test_the_newest_servable_saved_model_is_served(tmp_path: Path) -> None:
    home = tmp_path / "bentoml"
    save(home, "iris_clf", "aaa", "bentoml.sklearn", "2026-11-30T05:00:00+00:00", {"saved_model.pkl": "x"})
    newer = save(home, "iris_clf", "bbb", "bentoml.xgboost", "2026-11-30T06:00:00+00:00", {"saved_model.ubj": "x"})
    assert [m.version for m in saved_models(tmp_path)] == ["bbb", "aaa"]
    assert model_entry(tmp_path) == newer / "saved_model.ubj"


def test_a_lightgbm_model_is_staged_under_its_text_name(tmp_path: Path) -> None:
    folder = save(tmp_path / "bentoml", "gbm", "v1", "bentoml.lightgbm", "2026-11-30T05:00:00+00:00",
                  {"saved_model.ubj": "tree\nversion=v4\n"})
    entry = model_entry(tmp_path)
    assert entry == folder / "saved_model.txt" and entry.read_text() == "tree\nversion=v4\n"


def test_an_unservable_framework_is_named(tmp_path: Path) -> None:
    save(tmp_path / "bentoml", "net", "v1", "bentoml.pytorch", "2026-11-30T05:00:00+00:00", {"saved_model.pt": "x"})
    with pytest.raises(ConfigError) as info:
        model_entry(tmp_path)
    assert "net:v1" in info.value.problem and "bentoml.pytorch" in info.value.problem
    assert model_entry(tmp_path / "nothing-here") is None
