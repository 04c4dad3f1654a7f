"""How the project trains and how it serves.

Train command, first match wins: MLproject ``main`` entry point (the project said so) ->
``train.py`` -> ``train/__main__.py`` -> ``src/train.py`` / ``scripts/train.py``.

Serve entry: a class with both ``setup`` and ``predict`` methods in ``predict.py``,
``predictor.py`` or ``serve.py`` (found with ``ast``, never imported) -> ``predict.py:Predictor``;
otherwise a saved model file in the project root, ``model/``, ``models/`` or ``artifacts/``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._files import Reason

PREDICTOR_FILES: tuple[str, ...] = ("predict.py", "predictor.py", "serve.py")
MODEL_DIRS: tuple[str, ...] = (".", "model", "models", "artifacts")
# Most specific formats first: a portable ONNX file beats a pickle of the same model.
MODEL_SUFFIXES: tuple[str, ...] = (
    ".onnx",
    ".keras",
    ".ubj",
    ".joblib",
    ".pt",
    ".pth",
    ".safetensors",
    ".h5",
    ".pkl",
    ".pickle",
    ".bst",
    ".txt",
)
_TRAIN_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("train.py", "python train.py"),
    ("train/__main__.py", "python -m train"),
    ("src/train.py", "python src/train.py"),
    ("scripts/train.py", "python scripts/train.py"),
)


@dataclass(frozen=True)
class Found:
    value: str | None
    reason: Reason | None
    warnings: tuple[str, ...] = ()


def find_train_command(
    project_dir: Path, mlproject_entries: Mapping[str, str] | None = None, mlproject_file: str = "MLproject"
) -> Found:
    if mlproject_entries and "main" in mlproject_entries:
        command = mlproject_entries["main"]
        return Found(command, Reason(f"train: {command}", f"{mlproject_file} entry point 'main'"))
    for script, command in _TRAIN_SCRIPTS:
        if (project_dir / script).is_file():
            return Found(command, Reason(f"train: {command}", f"{script} exists"))
    return Found(None, None)


def find_train_notebook(project_dir: Path) -> Found:
    """A project without a train script but with notebooks at its top level trains by running
    one (``train.notebook``): ``train.ipynb`` if there is one, else the only notebook, else the
    first whose name mentions training; several unrelated notebooks propose nothing."""
    notebooks = sorted(p.name for p in project_dir.glob("*.ipynb") if p.is_file())
    if not notebooks:
        return Found(None, None)
    training = [n for n in notebooks if "train" in n.lower()]
    if "train.ipynb" in notebooks:
        chosen, why = "train.ipynb", "train.ipynb exists and there is no train script"
    elif len(notebooks) == 1:
        chosen, why = notebooks[0], "the only notebook, and there is no train script"
    elif training:
        chosen, why = training[0], f"{len(notebooks)} notebooks; {training[0]} is named for training"
    else:
        return Found(None, None, (f"{len(notebooks)} notebooks and no train script: set train.notebook in "
                                  "dockyard.yaml to the one that trains",))
    return Found(chosen, Reason(f"train: notebook {chosen}", why + " (runs with nbclient, see docs/notebooks.md)"))


def find_serve_entry(project_dir: Path) -> Found:
    warnings: list[str] = []
    for filename in PREDICTOR_FILES:
        path = project_dir / filename
        if not path.is_file():
            continue
        classes, warning = predictor_classes(path)
        if warning:
            warnings.append(warning)
        if classes:
            entry = f"{filename}:{classes[0]}"
            if len(classes) > 1:
                warnings.append(f"{filename} has several predictor classes ({', '.join(classes)}); using {classes[0]}")
            why = f"class {classes[0]} in {filename} has setup() and predict()"
            return Found(entry, Reason(f"serve: {entry}", why), tuple(warnings))
    model = _model_file(project_dir)
    if model is None:
        return Found(None, None, tuple(warnings))
    why = "a saved model file; no predictor class with setup() and predict() found"
    return Found(model, Reason(f"serve: {model}", why), tuple(warnings))


def predictor_classes(path: Path) -> tuple[list[str], str | None]:
    """Names of classes in ``path`` with both ``setup`` and ``predict`` (own or from a class in the same file)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=path.name)
    except SyntaxError as exc:
        return [], f"{path.name}:{exc.lineno}: not valid Python 3 ({exc.msg}); no predictor read from it"
    except (OSError, ValueError):
        return [], None
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    return [name for name in classes if {"setup", "predict"} <= _methods(name, classes, set())], None


def _methods(name: str, classes: dict[str, ast.ClassDef], seen: set[str]) -> set[str]:
    if name in seen or name not in classes:
        return set()
    seen.add(name)
    node = classes[name]
    own = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for base in node.bases:  # a base class defined in the same file (BasePredictor patterns)
        if isinstance(base, ast.Name):
            own |= _methods(base.id, classes, seen)
    return own


def _model_file(project_dir: Path) -> str | None:
    for folder in MODEL_DIRS:
        directory = project_dir / folder
        if not directory.is_dir():
            continue
        saved_model = directory / "saved_model.pb"
        if folder != "." and saved_model.is_file():  # TensorFlow SavedModel: the folder is the model
            return folder
        files = [p for p in directory.iterdir() if p.is_file() and _is_model_file(p)]
        if files:
            best = min(files, key=lambda p: (_suffix_rank(p), p.name))
            return best.relative_to(project_dir).as_posix()
        for sub in sorted(p for p in directory.iterdir() if p.is_dir() and folder != "."):
            if (sub / "saved_model.pb").is_file():
                return sub.relative_to(project_dir).as_posix()
    return None


def _suffix_rank(path: Path) -> int:
    return MODEL_SUFFIXES.index(path.suffix.lower())


def _is_model_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        return False
    if suffix == ".txt":  # only a LightGBM/XGBoost text booster, never requirements.txt
        return _is_text_booster(path)
    # .h5 is also plain HDF5 data: only a file named like a model counts.
    return suffix != ".h5" or "model" in path.stem.lower()


def _is_text_booster(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError:
        return False
    return head.startswith((b"tree\n", b"version=", b"booster["))
