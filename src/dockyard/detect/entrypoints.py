"""How the project trains and how it serves.

Train command, first match wins: MLproject ``main`` entry point (the project said so) ->
``train.py`` -> ``train/__main__.py`` -> what the project names (a run line in the README, a
``[project.scripts]`` entry named *train*, a Makefile ``train:`` target) -> conventional subfolders
(``src/``, ``model/``, ``scripts/``, ``training/`` train.py or train_model.py) -> in an example collection, the script
that trains and saves a model (trainscripts.py ranks them). None found is reported with what was
looked for and how to set one.

Serve entry: a class with both ``setup`` and ``predict`` methods in ``predict.py``,
``predictor.py`` or ``serve.py`` (found with ``ast``, never imported) -> ``predict.py:Predictor``;
otherwise a saved model file in the project root, ``model/``, ``models/`` or ``artifacts/``.
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.runtime.contract import MODEL_FORMATS, looks_like_model

from ._files import Reason
from .trainscripts import Candidate, training_scripts

PREDICTOR_FILES: tuple[str, ...] = ("predict.py", "predictor.py", "serve.py")
MODEL_DIRS: tuple[str, ...] = (".", "model", "models", "artifacts")
# Saved-model formats a serve entry can be, most specific first (a portable ONNX file beats a
# pickle of the same model): those of the one registry (runtime/contract.py) that name a framework.
MODEL_SUFFIXES: tuple[str, ...] = tuple(s for f in MODEL_FORMATS if f.framework for s in f.suffixes)
# Conventional places, first match wins: the root, then the subfolders real projects use.
_TRAIN_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("train.py", "python train.py"),
    ("train/__main__.py", "python -m train"),
    ("src/train.py", "python src/train.py"),
    ("model/train.py", "python model/train.py"),
    ("scripts/train.py", "python scripts/train.py"),
    ("train_model.py", "python train_model.py"),
    ("scripts/train_model.py", "python scripts/train_model.py"),
    ("src/train_model.py", "python src/train_model.py"),
    ("training/train.py", "python training/train.py"),
)
LOOKED_FOR = (
    "MLproject entry point main, train.py, train/__main__.py, src/, model/, scripts/, training/ "
    "train.py or train_model.py, a `python|uv run ...train...py` line in the README, a [project.scripts] "
    "entry named *train*, a Makefile train: target"
)
README_FILES = ("README.md", "README.rst", "README.txt", "README")
# `uv run model/train.py`, `python3 src/train.py --epochs 3`, `python -m pkg.train`, `poetry run python x.py`
_RUN_LINE = re.compile(
    r"(?:^|[\s`$>])(?:uv run|poetry run|pipenv run|pdm run)?\s*(?:python3?(?:\.\d+)?\s+)?"
    r"(?:-m\s+(?P<module>[A-Za-z_][\w.]*train[\w.]*)|(?P<script>[\w./-]*train[\w-]*\.py))(?P<args>[^`\n]*)"
)


@dataclass(frozen=True)
class Found:
    value: str | None
    reason: Reason | None
    warnings: tuple[str, ...] = ()
    model_variable: str | None = None  # train: the global the script leaves its trained model in


def find_train_command(
    project_dir: Path, mlproject_entries: Mapping[str, str] | None = None, mlproject_file: str = "MLproject"
) -> Found:
    if mlproject_entries and "main" in mlproject_entries:
        command = mlproject_entries["main"]
        return Found(command, Reason(f"train: {command}", f"{mlproject_file} entry point 'main'"))
    for script, command in _TRAIN_SCRIPTS[:2]:
        if (project_dir / script).is_file():
            return Found(command, Reason(f"train: {command}", f"{script} exists"))
    for finder in (_from_readme, _from_project_scripts, _from_makefile):
        found = finder(project_dir)
        if found is not None:
            return found
    for script, command in _TRAIN_SCRIPTS[2:]:
        if (project_dir / script).is_file():
            return Found(command, Reason(f"train: {command}", f"{script} exists"))
    scripts = training_scripts(project_dir)
    found = _from_script_contents([c for c in scripts if c.saves])
    if found is not None:
        return found
    kept = next((c for c in scripts if not c.saves and c.model_variable), None)
    if kept is not None:
        return _kept_variable(kept, [c.script for c in scripts if c is not kept])
    unsaved = [c.script for c in scripts if not c.saves]
    verb = "trains but saves" if len(unsaved) == 1 else "train but save"
    note = (f"; {', '.join(unsaved[:5])} {verb} no model, which "
            "`dockyard train` keeps as the version: save one (to the working directory or $DOCKYARD_OUTPUTS) and "
            "set train.command, or try it with `dockyard run PROJECT -- python SCRIPT`") if unsaved else ""
    return Found(None, Reason("train: none found", f"looked for {LOOKED_FOR}{note}; set one in dockyard.yaml: "
                                                    "train: {command: python path/to/train.py}"))


def _kept_variable(script: Candidate, others: list[str]) -> Found:
    """No script saves a model, but one trains a model in a module-level variable: run it, and
    keep that variable when it ends (train.model_variable, runtime/keep.py)."""
    why = (f"no train-named script, and none saves a model; {script.script} ({script.framework}) trains "
           f"{script.model_variable} in place and saves nothing, so train.model_variable: {script.model_variable} "
           "keeps it when the script ends (saved in a format dockyard serves; `dockyard train` says which)")
    if others:
        why += f"; the others: {', '.join(others[:5])}" + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    why += "; to keep a file the script writes instead, save it there and remove train.model_variable"
    return Found(script.command, Reason(f"train: {script.command}", why), model_variable=script.model_variable)


def _from_script_contents(candidates: list[Candidate]) -> Found | None:
    """An example collection: the best of the scripts that train and save a model (trainscripts.py,
    best first)."""
    if not candidates:
        return None
    best, others = candidates[0], candidates[1:]
    why = (f"no train-named script; {best.describe()} is the best of {len(candidates)} scripts that import a "
           "framework, train and save a model (ranked: a format dockyard serves, not a pickle; then a name like "
           "main/train/example/simple; then fewest lines)")
    if others:
        shown = ", ".join(c.script for c in others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        why += f"; the others: {shown}"
    why += "; to run another, set train: {command: python path/to/script.py} in dockyard.yaml"
    return Found(best.command, Reason(f"train: {best.command}", why))


def _from_readme(project_dir: Path) -> Found | None:
    """A run line the README shows, when the script (or module) it names exists."""
    for name in README_FILES:
        path = project_dir / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(errors="replace")[:200_000]
        except OSError:
            continue
        for match in _RUN_LINE.finditer(text):
            script, module = match.group("script"), match.group("module")
            args = match.group("args").strip().rstrip("\\").strip()
            args = args if args and not args.startswith(("#", "|", "&", ">")) else ""
            if script and (project_dir / script.removeprefix("./")).is_file():
                command = " ".join(["python", script.removeprefix("./"), args]).strip()
            elif module and _module_exists(project_dir, module):
                command = " ".join(["python -m", module, args]).strip()
            else:
                continue
            return Found(command, Reason(f"train: {command}", f"the run line in {name}: {match.group(0).strip()}"))
    return None


def _module_exists(project_dir: Path, module: str) -> bool:
    rel = Path(*module.split("."))
    return any((project_dir / root / rel).with_suffix(".py").is_file() or (project_dir / root / rel / "__main__.py").is_file()
               for root in (".", "src"))


def _from_project_scripts(project_dir: Path) -> Found | None:
    """``[project.scripts] train = "pkg.train:main"``: call the function (the project is not
    installed as a package in the image, its code is copied to /app)."""
    path = project_dir / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        scripts = tomllib.loads(path.read_text()).get("project", {}).get("scripts", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    for name, target in scripts.items() if isinstance(scripts, dict) else ():
        if "train" not in name.lower() or not isinstance(target, str) or ":" not in target:
            continue
        module, _, func = target.partition(":")
        module, func = module.strip(), func.strip().split()[0] if func.strip() else "main"
        if not re.fullmatch(r"[A-Za-z_][\w.]*", module) or not re.fullmatch(r"[A-Za-z_][\w.]*", func):
            continue
        in_src = not (project_dir / Path(*module.split("."))).exists() and (project_dir / "src").is_dir()
        call = f"import sys; from {module} import {func.split('.')[0]} as f; sys.exit(f())"
        command = ("PYTHONPATH=/app/src:$PYTHONPATH " if in_src else "") + f"python -c {shlex.quote(call)}"
        return Found(command, Reason(f"train: {command}", f"[project.scripts] {name} = {target!r} in pyproject.toml"))
    return None


def _from_makefile(project_dir: Path) -> Found | None:
    """The first python command of a Makefile ``train:`` target (make itself is not in the image)."""
    path = project_dir / "Makefile"
    if not path.is_file():
        return None
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines):
        if not re.match(r"^train\s*:", line):
            continue
        for recipe in lines[i + 1:]:
            if not recipe.startswith("\t"):
                break
            text = recipe.strip().lstrip("@-").strip()
            text = re.sub(r"^(uv run|poetry run|pipenv run|pdm run)\s+(python3?\s+)?", "python ", text)
            text = re.sub(r"^python3(\.\d+)?\s", "python ", text)
            text = re.sub(r"^\$\(PYTHON\)\s", "python ", text)
            if text.startswith("python ") and "$(" not in text:
                return Found(text, Reason(f"train: {text}", "the train: target of the Makefile"))
    return None


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
    if path.suffix.lower() not in MODEL_SUFFIXES or not looks_like_model(str(path)):
        return False
    # .h5 is also plain HDF5 data: only a file named like a model counts.
    return path.suffix.lower() != ".h5" or "model" in path.stem.lower()
