"""Framework detection from import statements and requirement names."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import detect
from dockyard.detect.imports import frameworks_from_requirements, scan_imports
from projectfiles import write


@pytest.mark.parametrize(
    ("source", "frameworks"),
    [
        ("import sklearn", ("scikit-learn",)),
        ("from sklearn.ensemble import RandomForestClassifier", ("scikit-learn",)),
        ("import torch.nn as nn", ("torch",)),
        ("from tensorflow import keras", ("tensorflow",)),
        ("import keras", ("keras",)),
        ("import xgboost as xgb, lightgbm", ("xgboost", "lightgbm")),
        ("import onnx\nimport onnxruntime as ort", ("onnx", "onnxruntime")),
        ("def f():\n    import torch\n", ("torch",)),
        ("from . import torch", ()),
        ("import torchvision\nimport numpy", ()),
        ("# import torch\nx = 'import torch'", ()),
    ],
)
def test_imports_map_to_canonical_frameworks(tmp_path: Path, source: str, frameworks: tuple[str, ...]) -> None:
    scan = scan_imports(write(tmp_path, {"model.py": source}))
    assert tuple(scan.frameworks) == frameworks


@pytest.mark.parametrize(
    "skipped",
    [
        ".venv/lib/python3.11/site-packages/pkg/mod.py",
        "venv/lib/mod.py",
        "node_modules/x/mod.py",
        ".git/hooks/mod.py",
        "__pycache__/mod.py",
        "lib/site-packages/mod.py",
        "myenv/lib/mod.py",  # any folder holding pyvenv.cfg is a virtual environment
    ],
)
def test_virtualenvs_and_vendored_folders_are_not_scanned(tmp_path: Path, skipped: str) -> None:
    write(tmp_path, {skipped: "import tensorflow\n", "myenv/pyvenv.cfg": "home = /usr\n", "app.py": "import torch\n"})
    scan = scan_imports(tmp_path)
    assert dict(scan.frameworks) == {"torch": ("app.py",)}


def test_importing_files_are_listed_root_first_then_subfolders_sorted(tmp_path: Path) -> None:
    write(tmp_path, {"b.py": "import torch", "a/c.py": "import torch", "a.py": "import torch"})
    assert scan_imports(tmp_path).frameworks["torch"] == ("a.py", "b.py", "a/c.py")


def test_unparsable_file_is_a_warning_not_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"old.py": "print 'python 2'\n", "ok.py": "import lightgbm\n"})
    scan = scan_imports(tmp_path)
    assert tuple(scan.frameworks) == ("lightgbm",)
    assert scan.warnings and scan.warnings[0].startswith("old.py:1:")


def test_scan_stops_at_the_file_cap_and_says_so(tmp_path: Path) -> None:
    write(tmp_path, {f"m{i:02}.py": "import torch\n" for i in range(5)})
    scan = scan_imports(tmp_path, max_files=2)
    assert (scan.files_scanned, scan.truncated) == (2, True)
    assert scan.frameworks["torch"] == ("m00.py", "m01.py")


def test_oversized_files_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, {"big.py": "import torch\n" + "#" * 200, "small.py": "import xgboost\n"})
    assert tuple(scan_imports(tmp_path, max_bytes=100).frameworks) == ("xgboost",)


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("torch==2.3.1+cpu", {"torch": "==2.3.1"}),
        ("torch>=2.2,<2.4", {"torch": "<2.4,>=2.2"}),
        ("tensorflow-cpu~=2.16.0", {"tensorflow": "~=2.16.0"}),
        ("scikit-learn==1.4.*", {"scikit-learn": "==1.4.*"}),
        ("scikit-learn>0.19.1", {"scikit-learn": ">0.19.1"}),
        ("Scikit_Learn", {"scikit-learn": None}),
        ("onnxruntime-gpu==1.18.0", {"onnxruntime": "==1.18.0"}),
        ("tf-keras<3", {"keras": None}),
        ("numpy==2.0.0", {}),
    ],
)
def test_framework_versions_are_the_requirement_specifiers_not_lower_bounds(requirement: str, expected: dict[str, str | None]) -> None:
    assert frameworks_from_requirements([requirement]) == expected


def test_frameworks_combine_imports_and_requirements_with_reasons(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "xgboost==2.0.3\n", "train.py": "import sklearn\n"})
    found = detect(tmp_path)
    assert found.frameworks == ("scikit-learn", "xgboost")
    assert dict(found.framework_versions) == {"xgboost": "==2.0.3"}
    why = {r.what: r.why for r in found.reasons}
    assert why["framework: scikit-learn"] == "imported in train.py"
    assert why["framework: xgboost==2.0.3"] == "listed in requirements.txt"


def test_scan_stops_after_the_directory_entry_budget(tmp_path: Path) -> None:
    write(
        tmp_path, {"a.py": "import torch\n", **{f"data_{i}/x.bin": "" for i in range(10)}, "zz/b.py": "import keras\n"}
    )
    scan = scan_imports(tmp_path, max_entries=13)  # root (12 entries) + one data folder
    assert scan.truncated
    assert tuple(scan.frameworks) == ("torch",)


@pytest.mark.parametrize(
    ("files", "primary"),
    [
        ({"a.py": "import sklearn\nimport torch\n"}, "torch"),
        ({"a.py": "import sklearn\nimport xgboost\n"}, "xgboost"),
        ({"a.py": "import sklearn\nimport torch\n", "model.joblib": "x"}, "scikit-learn"),
        ({"a.py": "import torch\nimport onnxruntime\n", "model.onnx": "x"}, "onnxruntime"),
        ({"a.py": "import torch\nimport onnx\n", "model.onnx": "x"}, "onnx"),
        ({"a.py": "import torch\n", "model.joblib": "x"}, "torch"),
        ({"a.py": "import numpy\n"}, None),
    ],
)
def test_primary_framework_follows_the_model_file_then_the_heaviest_framework(
    tmp_path: Path, files: dict[str, str], primary: str | None
) -> None:
    found = detect(write(tmp_path, files))
    assert found.primary_framework == primary
    if primary:
        assert any(r.what == f"primary framework: {primary}" for r in found.reasons)
