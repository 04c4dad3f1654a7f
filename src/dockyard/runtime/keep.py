"""Run a training script as ``python SCRIPT ARGS`` runs it, then keep the model it trained but
never saved: the object in one of its module-level variables (``train.model_variable``).

    python -m dockyard_runtime.keep VARIABLE SCRIPT [ARGS...]

Many real scripts train a model in place and end without saving it (pytorch/examples'
regression ``main.py`` trains ``fc = torch.nn.Linear(4, 1)`` and prints it). ``dockyard init``
finds such a variable by reading the script (detect/trainscripts.py) and writes it into
dockyard.yaml; ``dockyard train`` then runs the script through this module, which saves the
object into ``$DOCKYARD_OUTPUTS`` in a format the runtime serves with no code:

- a torch.nn.Module: TorchScript, ``model.pt`` (code and weights, loadable without the script);
- a Keras model: ``model.keras``;
- an XGBoost Booster or sklearn-API model: ``model.json``;
- a LightGBM Booster or sklearn-API model: ``model.txt``;
- any other scikit-learn estimator (a Pipeline too): ``model.joblib``, checked to be fitted.

The script runs as ``__main__`` with its own ``sys.argv``, ``sys.path[0]`` and ``__file__``, so
``if __name__ == "__main__":`` blocks, relative imports of its neighbours and pickles of classes
it defines behave as under plain ``python SCRIPT``. Its exit status is kept: a script that fails
(or calls ``sys.exit(1)``) fails the run and nothing is saved. Stdlib only: it ships in images.
"""

from __future__ import annotations

import builtins
import os
import sys
import types
from typing import Any

# Classes in the object's hierarchy, checked in order: a Keras model on the torch backend is also
# a torch Module, and xgboost's and LightGBM's sklearn-API classes are also sklearn estimators;
# each gets its own format, not TorchScript or a pickle.
_TORCH = "torch.nn.modules.module.Module"
_XGBOOST = ("xgboost.core.Booster", "xgboost.sklearn.XGBModel")
_LIGHTGBM_BOOSTER = "lightgbm.basic.Booster"
_LIGHTGBM_SKLEARN = "lightgbm.sklearn.LGBMModel"
_SKLEARN = "sklearn.base.BaseEstimator"


class KeepError(Exception):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or not args[0].isidentifier():
        print("usage: python -m dockyard_runtime.keep VARIABLE SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    variable, script, rest = args[0], args[1], args[2:]
    namespace = run_script(script, rest)
    try:
        path, what = keep(namespace, variable, script, os.environ.get("DOCKYARD_OUTPUTS") or ".")
    except KeepError as exc:
        print(f"dockyard: error: {exc.problem}\ndockyard: fix: {exc.fix}", file=sys.stderr, flush=True)
        return 1
    print(f"dockyard: kept {variable} ({what}) as {path}", file=sys.stderr, flush=True)
    return 0


def run_script(script: str, args: list[str]) -> dict[str, Any]:
    """Execute ``script`` as the ``__main__`` module and return its globals; a non-zero
    ``sys.exit`` (or an exception) propagates, as it would end ``python SCRIPT``."""
    path = os.path.abspath(script)
    with open(path, "rb") as fh:
        source = fh.read()
    code = compile(source, path, "exec", dont_inherit=True)  # this module's __future__ flags stay here
    module = types.ModuleType("__main__")
    module.__dict__.update({"__file__": path, "__builtins__": builtins, "__cached__": None})
    sys.modules["__main__"] = module
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(path)  # `python SCRIPT` puts the script's folder first, not the cwd
    try:
        exec(code, module.__dict__)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    return module.__dict__


def keep(namespace: dict[str, Any], variable: str, script: str, outputs: str) -> tuple[str, str]:
    """Save ``namespace[variable]`` into ``outputs``: (the file written, what it holds)."""
    if variable not in namespace:
        raise KeepError(f"{script} ended without a module-level variable named {variable} "
                        "(train.model_variable in dockyard.yaml)",
                        "set train.model_variable to the variable that holds the trained model, or save the model "
                        "in the script (to the working directory or $DOCKYARD_OUTPUTS) and remove "
                        "train.model_variable")
    obj = namespace[variable]
    kinds = [f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__]
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if any(k.startswith("keras.") and k.endswith("models.model.Model") for k in kinds):  # on torch: also a Module
        return _write(outputs, "model.keras", kind, obj.save)
    if _TORCH in kinds:
        return _write(outputs, "model.pt", f"{kind}, TorchScript", lambda p: _torchscript(obj, variable, p))
    if any(k in kinds for k in _XGBOOST):
        return _write(outputs, "model.json", kind, obj.save_model)
    if _LIGHTGBM_BOOSTER in kinds:
        return _write(outputs, "model.txt", kind, obj.save_model)
    if _LIGHTGBM_SKLEARN in kinds:
        return _write(outputs, "model.txt", kind, lambda p: obj.booster_.save_model(p))
    if _SKLEARN in kinds:
        _check_fitted(obj, variable)
        import joblib  # type: ignore[import-untyped,import-not-found,unused-ignore]  # scikit-learn depends on it

        return _write(outputs, "model.joblib", kind, lambda p: joblib.dump(obj, p))
    raise KeepError(f"{variable} is a {kind}, which dockyard cannot save on its own (it saves torch modules, "
                    "Keras models, XGBoost and LightGBM boosters and scikit-learn estimators)",
                    "save the model in the script (to the working directory or $DOCKYARD_OUTPUTS) and remove "
                    "train.model_variable, or point train.model_variable at the model")


def _write(outputs: str, name: str, what: str, save: Any) -> tuple[str, str]:
    path = os.path.join(outputs, name)
    if os.path.exists(path):
        raise KeepError(f"{path} exists already: the script saved a model there itself",
                        "remove train.model_variable from dockyard.yaml: the script's own file is kept")
    os.makedirs(outputs, exist_ok=True)
    save(path)
    return path, what


def _torchscript(obj: Any, variable: str, path: str) -> None:
    import torch  # type: ignore[import-untyped,import-not-found,unused-ignore]

    try:
        scripted = torch.jit.script(obj.eval())
    except Exception as exc:  # TorchScript refuses some Python in forward()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KeepError(f"{variable} cannot be compiled to TorchScript: {first}",
                        f"save it in the script, e.g. torch.save({variable}.state_dict(), 'model.pt') beside a "
                        "predict.py that rebuilds it, and remove train.model_variable") from None
    scripted.save(path)


def _check_fitted(obj: Any, variable: str) -> None:
    import sklearn.exceptions  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import sklearn.utils.validation  # type: ignore[import-untyped,import-not-found,unused-ignore]

    try:
        sklearn.utils.validation.check_is_fitted(obj)
    except sklearn.exceptions.NotFittedError:
        raise KeepError(f"{variable} was never fitted: the script ended before {variable}.fit(...)",
                        "point train.model_variable at the estimator the script fits") from None


if __name__ == "__main__":
    sys.exit(main())
