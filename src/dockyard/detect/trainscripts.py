"""Which script trains, read from what the scripts do, for projects with no train-named entry point.

Example collections (LightGBM's python-guide, XGBoost's guide-python, pytorch/examples) hold
several scripts, none called train.py. A script is a *candidate* when it imports a framework
dockyard knows, fits or trains (``.fit(``, ``.train(``, ``lgb.train(``, ``loss.backward()``, ``jax.value_and_grad(``,
``optimizer.apply_gradients(``) and
saves a model (``.save_model(``, ``joblib.dump``, ``pickle.dump``, ``torch.save``, ``model.save(``,
``mlflow.*.log_model``). Candidates are ranked, deterministically:

1. a saved file name whose format dockyard serves with no code (the one registry of model formats,
   ``runtime/contract.py``), and safely (not a pickle, which serving refuses until it passes the
   pickle gate), beats a pickle it serves, which beats a format it cannot serve, which beats a
   save with no literal name;
2. a name like main/train/example/simple/basic/quickstart beats any other;
3. fewer lines (the simplest example) beat more;
4. then the path.

A script that trains but saves nothing (``saves`` False) may still leave its trained model in a
module-level variable: ``fc = torch.nn.Linear(4, 1)`` trained by ``loss.backward()`` steps,
``clf = RandomForestClassifier()`` then ``clf.fit(...)``, ``bst = xgb.train(...)``, ``model =
keras.Sequential(...)`` then ``model.fit(...)``. That variable (``model_variable``) is what
``train.model_variable`` names: ``dockyard train`` keeps it when the script ends
(runtime/keep.py). Only models trained *in place* count: a Keras model driven by a stateless
jax loop keeps its initial weights, so it is not offered.

Files are parsed with ``ast``, never run or imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dockyard.runtime.contract import model_format

from .imports import MAX_FILE_BYTES, MODULE_FRAMEWORK, python_files

# Receivers whose dump/save writes data, not a model (json.dump, np.save, yaml.dump, df.to_csv).
_DATA_WRITERS = frozenset({"json", "yaml", "np", "numpy", "csv", "pd", "pandas", "plt", "fig", "ujson", "toml"})
_SAVE_CALLS = frozenset({"save_model", "save", "dump", "log_model", "save_pretrained"})
# jax trains through its transforms (keras-on-jax custom loops: jax.value_and_grad + a jitted step),
# TensorFlow/Keras custom loops through the optimizer.
_TRAIN_CALLS = frozenset({"fit", "train", "backward", "fit_generator", "partial_fit", "value_and_grad", "grad",
                          "apply_gradients"})
_PREFERRED_NAMES = ("main", "train", "example", "simple", "basic", "quickstart")
MAX_CANDIDATE_FILES = 500


@dataclass(frozen=True)
class Candidate:
    script: str  # project-relative path
    framework: str
    saved: str | None  # the model file name it saves, when literal
    servable: bool  # dockyard serves that format with no code
    pickle: bool  # ... and loading it may run code (the pickle gate applies)
    lines: int
    saves: bool = True  # False: it trains, but writes no model file dockyard could keep
    model_variable: str | None = None  # saves nothing, but leaves its trained model in this global

    @property
    def command(self) -> str:
        return f"python {self.script}"

    def rank(self) -> tuple[int, int, int, str]:
        stem = Path(self.script).stem.lower()
        preferred = any(word in stem for word in _PREFERRED_NAMES)
        saved_rank = (0 if not self.pickle else 1) if self.servable else 2 if self.saved else 3
        return (saved_rank, 0 if preferred else 1, self.lines, self.script)

    def describe(self) -> str:
        what = f"saves {self.saved}" if self.saved else "saves a model"
        return f"{self.script} ({self.framework}, {what}, {self.lines} lines)"


def training_candidates(project_dir: Path) -> list[Candidate]:
    """Scripts that train and save a model, best first."""
    return [c for c in training_scripts(project_dir) if c.saves]


def training_scripts(project_dir: Path) -> list[Candidate]:
    """Scripts that import a framework and train, best first: those that save a model, and those
    that save none (``saves`` False: pytorch/examples' main.py). One parse of the project's files."""
    found = []
    for path in python_files(project_dir, limit=MAX_CANDIDATE_FILES):
        rel = path.relative_to(project_dir).as_posix()
        if path.suffix != ".py" or _not_a_script(rel):
            continue
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            source = path.read_bytes()
            tree = ast.parse(source, filename=rel)
        except (OSError, ValueError, SyntaxError):
            continue
        candidate = _candidate(rel, tree, source.count(b"\n") + 1)
        if candidate is not None:
            found.append(candidate)
    return sorted(found, key=Candidate.rank)


def _not_a_script(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    parts = rel.split("/")[:-1]
    return (name.startswith(("test_", "_")) or name.endswith("_test.py") or name in ("setup.py", "conftest.py")
            or any(p in ("tests", "test", "docs") for p in parts))


def _candidate(rel: str, tree: ast.AST, lines: int) -> Candidate | None:
    frameworks: list[str] = []
    trains = False
    saves: list[str | None] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            frameworks += [MODULE_FRAMEWORK[m] for m in (a.name.split(".")[0] for a in node.names) if m in MODULE_FRAMEWORK]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module.split(".")[0]
            frameworks += [MODULE_FRAMEWORK[module]] if module in MODULE_FRAMEWORK else []
        elif isinstance(node, ast.Call):
            name, receiver = _call_name(node)
            trains = trains or name in _TRAIN_CALLS
            if name in _SAVE_CALLS and receiver not in _DATA_WRITERS:
                saves.append(_literal_filename(node))
    if not (frameworks and trains):
        return None
    if not saves:
        return Candidate(rel, frameworks[0], None, False, False, lines, saves=False,
                         model_variable=model_variable(tree))
    named = [s for s in saves if s is not None and model_format(s) is not None]
    best = min(named, key=_save_rank, default=None)
    fmt = model_format(best) if best else None
    framework = fmt.framework if fmt and fmt.framework in frameworks else next(
        (f for f in frameworks if f != "scikit-learn"), frameworks[0])  # sklearn is often just metrics
    return Candidate(rel, framework, best, bool(fmt and fmt.loader), bool(fmt and fmt.pickle_family), lines)


def _save_rank(name: str) -> int:
    fmt = model_format(name)
    return 3 if fmt is None else (0 if not fmt.pickle_family else 1) if fmt.loader else 2


def _call_name(call: ast.Call) -> tuple[str, str]:
    """(``save_model``, ``gbm``) for ``gbm.save_model(...)``; (``dump``, ``joblib``) for ``joblib.dump``."""
    func = call.func
    if isinstance(func, ast.Attribute):
        value = func.value
        receiver = value.id if isinstance(value, ast.Name) else value.attr if isinstance(value, ast.Attribute) else ""
        return func.attr, receiver
    return (func.id, "") if isinstance(func, ast.Name) else ("", "")


def _literal_filename(call: ast.Call) -> str | None:
    """The first string literal argument that names a model file (``"model.txt"``), if any; also
    inside ``open("model.pkl", "wb")``."""
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and model_format(arg.value):
            return arg.value
        if isinstance(arg, ast.Call) and arg.args and isinstance(arg.args[0], ast.Constant):
            inner = arg.args[0].value
            if isinstance(inner, str) and model_format(inner):
                return inner
    return None


# Constructors whose result is trained in place, by the qualified name the script's imports give
# them; "fit": only when the script calls NAME.fit(...); "backward": when it calls .backward().
_ESTIMATOR_MODULES = ("sklearn.", "xgboost.", "lightgbm.", "catboost.")
_BOOSTER_TRAINS = frozenset({"xgboost.train", "lightgbm.train"})
_TORCH_MODULE = frozenset({"torch.nn.Module", "torch.nn.modules.module.Module"})
_KERAS_MODELS = frozenset({"keras.Model", "keras.Sequential", "keras.models.Model", "keras.models.Sequential",
                           "tensorflow.keras.Model", "tensorflow.keras.Sequential"})


def model_variable(tree: ast.Module | ast.AST) -> str | None:
    """The module-level variable holding a model the script trains in place, when exactly one does."""
    if not isinstance(tree, ast.Module):
        return None
    aliases = _import_aliases(tree)
    classes = {node.name: {_qualified(b, aliases) for b in node.bases} for node in tree.body
               if isinstance(node, ast.ClassDef)}
    fitted: set[str] = set()  # receivers of .fit(...)
    backward = False
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name, receiver = _call_name(call)
        if name == "fit":
            fitted.add(receiver)
        backward = backward or name == "backward"
    found: dict[str, None] = {}
    for node in _module_level(tree.body):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call)):
            continue
        name, made = node.targets[0].id, _qualified(node.value.func, aliases)
        bases = classes.get(made, set())
        torch = made.startswith("torch.nn.") and made.rsplit(".", 1)[-1][:1].isupper() or bool(bases & _TORCH_MODULE)
        keras = made in _KERAS_MODELS or bool(bases & _KERAS_MODELS)
        estimator = made.startswith(_ESTIMATOR_MODULES) and made.rsplit(".", 1)[-1][:1].isupper()
        if made in _BOOSTER_TRAINS or (torch and backward) or ((keras or estimator) and name in fitted):
            found[name] = None
    return next(iter(found)) if len(found) == 1 else None


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that bind module globals: the body, into if/for/while/with/try blocks, never
    into functions or classes."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(node, field, []) or [])
        for handler in getattr(node, "handlers", []) or []:
            yield from _module_level(handler.body)


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name: ``nn`` -> ``torch.nn``, ``RandomForestClassifier`` ->
    ``sklearn.ensemble.RandomForestClassifier``, ``xgb`` -> ``xgboost``."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _qualified(node: ast.expr, aliases: dict[str, str]) -> str:
    """``nn.Linear`` -> ``torch.nn.Linear`` through the imports; a local name stays as it is."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([aliases.get(node.id, node.id), *parts])
