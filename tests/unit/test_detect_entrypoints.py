"""Train command and serve entry discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect.entrypoints import find_serve_entry, find_train_command, predictor_classes
from projectfiles import write


PREDICTOR = "class Predictor:\n    def setup(self):\n        pass\n    def predict(self, x):\n        return x\n"


@pytest.mark.parametrize(
    ("files", "command"),
    [
        ({"train.py": "", "train/__main__.py": ""}, "python train.py"),
        ({"train/__main__.py": ""}, "python -m train"),
        ({"src/train.py": ""}, "python src/train.py"),
        ({"scripts/train.py": ""}, "python scripts/train.py"),
        ({"fit.py": ""}, None),
    ],
)
def test_train_command_from_conventional_scripts(tmp_path: Path, files: dict[str, str], command: str | None) -> None:
    assert find_train_command(write(tmp_path, files)).value == command


def test_mlproject_main_beats_train_py(tmp_path: Path) -> None:
    found = find_train_command(write(tmp_path, {"train.py": ""}), {"main": "python fit.py --x 1"})
    assert found.value == "python fit.py --x 1"


@pytest.mark.parametrize(
    ("files", "entry"),
    [
        ({"predict.py": PREDICTOR}, "predict.py:Predictor"),
        ({"predictor.py": PREDICTOR, "serve.py": PREDICTOR}, "predictor.py:Predictor"),
        ({"serve.py": PREDICTOR.replace("def setup", "async def setup")}, "serve.py:Predictor"),
        ({"predict.py": "class P:\n    def predict(self, x): ...\n", "model.joblib": "x"}, "model.joblib"),
        ({"model.pkl": "x", "model.onnx": "x"}, "model.onnx"),
        ({"models/clf.joblib": "x", "artifacts/net.pt": "x"}, "models/clf.joblib"),
        ({"model/saved_model.pb": "x", "model/variables/v": "x"}, "model"),
        ({"models/v1/saved_model.pb": "x"}, "models/v1"),
        ({"requirements.txt": "numpy\n", "notes.txt": "hello"}, None),
        ({"booster.txt": "tree\nversion=v4\n"}, "booster.txt"),
        ({"data.h5": "x"}, None),
        ({"model.h5": "x"}, "model.h5"),
    ],
)
def test_serve_entry_prefers_a_predictor_class_then_a_model_file(
    tmp_path: Path, files: dict[str, str], entry: str | None
) -> None:
    assert find_serve_entry(write(tmp_path, files)).value == entry


def test_predictor_methods_may_come_from_a_base_class_in_the_same_file(tmp_path: Path) -> None:
    source = "class Base:\n    def setup(self): ...\nclass Mine(Base):\n    def predict(self, x): ...\n"
    assert predictor_classes(write(tmp_path, {"predict.py": source}) / "predict.py") == (["Mine"], None)


def test_several_predictor_classes_use_the_first_and_warn(tmp_path: Path) -> None:
    write(tmp_path, {"predict.py": PREDICTOR + PREDICTOR.replace("Predictor", "Other")})
    found = find_serve_entry(tmp_path)
    assert found.value == "predict.py:Predictor"
    assert "Predictor, Other" in found.warnings[0]


def test_predictor_file_with_a_syntax_error_is_a_warning_and_falls_back_to_a_model(tmp_path: Path) -> None:
    found = find_serve_entry(write(tmp_path, {"predict.py": "class (:\n", "model.joblib": "x"}))
    assert found.value == "model.joblib"
    assert found.warnings[0].startswith("predict.py:1:")
