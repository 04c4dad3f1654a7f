"""Zero-code serving of an MLflow model directory (``MLmodel`` + its flavor's files).

Flavors load natively, without mlflow, where the flavor's files are plain framework files:
``sklearn`` (pickle / cloudpickle / skops), ``xgboost`` and ``lightgbm``. Everything else that
has a ``python_function`` flavor (custom pyfunc, pytorch, keras, ...) loads through
``mlflow.pyfunc.load_model``, so it needs mlflow (``mlflow-skinny``) in the image; dockyard's
planner adds it to the serving image when the project does not already install it.

The signature becomes the model's inputs: a column-based signature gives one V2 input per
column (shape [-1], one value per row; column names may contain spaces), a tensor-based one a
single input named ``input`` (or its own names). Predictions are the model's own, computed the
way ``mlflow models serve`` does: a pandas DataFrame (columns in signature order) goes into the
flavor's ``predict``.

Stdlib only (framework modules are imported when a model is loaded).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any, Callable  # noqa: UP035 (a runtime test allows only top-level stdlib names in from-imports)

from .model import Loaded, SetupError
from .tensors import TensorSpec

MLMODEL = "MLmodel"
NATIVE_FLAVORS = ("sklearn", "xgboost", "lightgbm")
# MLflow column types -> V2 datatypes
_COLUMN_TYPES = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32",
                 "boolean": "BOOL", "string": "BYTES", "binary": "BYTES", "datetime": "BYTES"}
_NUMPY_TYPES = {"float64": "FP64", "float32": "FP32", "float16": "FP16", "int64": "INT64",
                "int32": "INT32", "int16": "INT16", "int8": "INT8", "uint8": "UINT8", "bool": "BOOL",
                "object": "BYTES", "str": "BYTES"}


def is_mlmodel_dir(path: Path) -> bool:
    return path.is_dir() and (path / MLMODEL).is_file()


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """The parsed MLmodel file (PyYAML when installed, else a reader for the block YAML mlflow writes)."""
    text = (model_dir / MLMODEL).read_text(encoding="utf-8")
    try:
        import yaml  # type: ignore[import-untyped,import-not-found,unused-ignore]

        data = yaml.safe_load(text)
    except ImportError:
        data = parse_block_yaml(text)
    except Exception as exc:  # yaml.YAMLError without naming yaml at import time
        raise SetupError(f"{model_dir / MLMODEL} is not valid YAML ({exc})",
                         "re-save the model with mlflow, or restore the MLmodel file") from None
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise SetupError(f"{model_dir / MLMODEL} has no 'flavors' mapping",
                         "point --model at a directory mlflow wrote (mlflow.<flavor>.save_model / log_model)")
    return data


# -- a reader for the block-style YAML that mlflow's yaml.safe_dump writes ----------------------
def parse_block_yaml(text: str) -> Any:
    lines = _logical_lines(text)
    value, _ = _block(lines, 0, 0)
    return value


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(indent, content) per logical line; quoted scalars folded over several lines are joined."""
    out: list[tuple[int, str]] = []
    raw = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    i = 0
    while i < len(raw):
        line = raw[i]
        indent = len(line) - len(line.lstrip(" "))
        content = line.strip()
        while _open_quote(content) and i + 1 < len(raw):
            i += 1
            content += " " + raw[i].strip()
        out.append((indent, content))
        i += 1
    return out


def _open_quote(content: str) -> bool:
    _, sep, value = content.partition(": ") if not content.startswith("- ") else ("", " ", content[2:])
    value = value.strip() if sep else (content if content[:1] in "'\"" else "")
    if value[:1] == "'":
        body = value[1:].replace("''", "")
        return "'" not in body
    if value[:1] == '"':
        body = value[1:].replace('\\\\', "").replace('\\"', "")
        return '"' not in body
    return False


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if i < len(lines) and lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            items.append(_scalar(lines[i][1][2:].strip()))
            i += 1
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        key, _, rest = lines[i][1].partition(":")
        key, rest = _scalar(key.strip()), rest.strip()
        i += 1
        if rest:
            mapping[str(key)] = _scalar(rest)
        elif i < len(lines) and (lines[i][0] > indent or (lines[i][0] == indent and lines[i][1].startswith("- "))):
            mapping[str(key)], i = _block(lines, i, lines[i][0])
        else:
            mapping[str(key)] = None
    return mapping, i


def _scalar(text: str) -> Any:
    if text[:1] == "'" and text[-1:] == "'":
        return text[1:-1].replace("''", "'")
    if text[:1] == '"' and text[-1:] == '"':
        return json.loads(text)
    if text in ("null", "~", ""):
        return None
    if text in ("true", "false"):
        return text == "true"
    if text in ("{}", "[]"):
        return {} if text == "{}" else []
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# -- signature ------------------------------------------------------------------------------------
class Signature:
    """Inputs of an MLmodel signature: columns (a DataFrame goes in) or tensors (arrays go in)."""

    def __init__(self, specs: tuple[TensorSpec, ...], columns: bool) -> None:
        self.specs, self.columns = specs, columns


def signature_of(meta: dict[str, Any], where: str) -> Signature | None:
    sig = meta.get("signature") or {}
    raw = sig.get("inputs") if isinstance(sig, dict) else None
    if not raw:
        return None
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise SetupError(f"{where}: signature.inputs is not JSON", "re-log the model with a signature") from None
    if not isinstance(entries, list) or not entries:
        return None
    if all(e.get("type") == "tensor" for e in entries):
        specs = []
        for n, e in enumerate(entries):
            spec = e.get("tensor-spec") or {}
            dims = tuple(int(d) for d in spec.get("shape") or (-1,))
            name = e.get("name") or ("input" if len(entries) == 1 else f"input_{n}")
            specs.append(TensorSpec(name, _NUMPY_TYPES.get(str(spec.get("dtype")), "FP32"),
                                    dims if dims and dims[0] == -1 else (-1, *dims[1:])))
        return Signature(tuple(specs), columns=False)
    specs = []
    for n, e in enumerate(entries):
        kind = e.get("type")
        if kind not in _COLUMN_TYPES:
            raise SetupError(f"{where}: input column {e.get('name', n)!r} has type {kind!r}, which dockyard "
                             "cannot take as one value per row",
                             "log the model with a signature of scalar columns or tensors, or serve it "
                             "with a predictor (--predictor)")
        specs.append(TensorSpec(str(e.get("name", n)), _COLUMN_TYPES[kind], (-1,)))
    return Signature(tuple(specs), columns=True)


# -- loading --------------------------------------------------------------------------------------
def load_mlmodel(model_dir: Path, shape: tuple[int, ...] | None) -> Loaded:
    """Load the best flavor of ``model_dir`` and wrap it as a batch predict over named arrays."""
    meta = read_mlmodel(model_dir)
    flavors: dict[str, Any] = meta["flavors"]
    where = str(model_dir / MLMODEL)
    signature = signature_of(meta, where)
    native = next((f for f in NATIVE_FLAVORS if f in flavors), None)
    if native is not None:
        estimator = _load_native(native, flavors[native], model_dir)
        platform = f"mlflow_{native}"
        predict_df = _native_predict(native, estimator)
    elif "python_function" in flavors:
        estimator, platform = _load_pyfunc(model_dir, flavors, meta), f"mlflow_{_main_flavor(flavors)}"
        predict_df = estimator.predict
    else:
        names = ", ".join(sorted(flavors)) or "none"
        raise SetupError(f"{where}: flavor(s) {names} cannot be served (no python_function flavor)",
                         "re-log the model with mlflow.pyfunc.log_model, or serve it with a predictor "
                         "(--predictor) that loads it")
    if signature is None:
        signature = _signature_from_estimator(estimator, shape, where)
    return Loaded(platform, signature.specs, _batch_predict(signature, predict_df))


def _main_flavor(flavors: dict[str, Any]) -> str:
    return next((f for f in flavors if f != "python_function"), "pyfunc")


def _needs(module: str, flavor: str, version: str | None = None) -> SetupError:
    pin = f"=={version}" if version else ""
    return SetupError(f"the MLflow model's {flavor} flavor needs the {module} package, which is not installed",
                      f"add {module}{pin} to the project's requirements")


def _load_native(flavor: str, conf: dict[str, Any], model_dir: Path) -> Any:
    if flavor == "sklearn":
        data = conf.get("pickled_model") or "model.pkl"
        return _load_sklearn_file(model_dir / data, str(conf.get("serialization_format") or "cloudpickle"),
                                  conf.get("skops_trusted_types"), conf.get("sklearn_version"))
    if flavor == "xgboost":
        try:
            import xgboost as xgb  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise _needs("xgboost", flavor, conf.get("xgb_version")) from None
        model_class = str(conf.get("model_class") or "xgboost.core.Booster")
        model = xgb.Booster() if model_class.endswith(".Booster") else _class(model_class)()
        model.load_model(str(model_dir / str(conf.get("data") or "model.xgb")))
        return model
    model_class = str(conf.get("model_class") or "lightgbm.basic.Booster")
    try:
        import lightgbm as lgb  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise _needs("lightgbm", flavor, conf.get("lgb_version")) from None
    if model_class == "lightgbm.basic.Booster":
        return lgb.Booster(model_file=str(model_dir / str(conf.get("data") or "model.lgb")))
    return _load_sklearn_file(model_dir / str(conf.get("data") or "model.pkl"),
                              str(conf.get("serialization_format") or "cloudpickle"),
                              conf.get("skops_trusted_types"), None)


def _load_sklearn_file(path: Path, fmt: str, trusted: Any, version: str | None) -> Any:
    if not path.is_file():
        raise SetupError(f"the MLflow model's data file {path} is missing",
                         "copy the whole MLmodel directory, with every file mlflow wrote")
    if fmt == "skops":
        try:
            import skops.io as sio  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise SetupError(f"{path.name} was saved in the skops format, and skops is not installed",
                             "add skops to the project's requirements (mlflow >= 3 saves scikit-learn "
                             "models with skops)") from None
        try:
            return sio.load(str(path), trusted=list(trusted or []))
        except Exception as exc:  # skops.io.exceptions.UntrustedTypesFoundException and kin
            raise SetupError(f"skops refused to load {path.name}: {exc}",
                             "log the model with skops_trusted_types=[...] naming those types") from None
    if fmt not in ("pickle", "cloudpickle"):
        raise SetupError(f"{path.name}: unknown serialization_format {fmt!r}",
                         "re-save the model with serialization_format 'skops', 'cloudpickle' or 'pickle'")
    try:
        loader: Any = __import__("cloudpickle") if fmt == "cloudpickle" else pickle
    except ImportError:
        loader = pickle  # cloudpickle writes standard pickles for importable classes
    try:
        with path.open("rb") as fh:
            return loader.load(fh)
    except ModuleNotFoundError as exc:
        raise SetupError(f"{path.name} needs the module {exc.name!r}, which is not installed",
                         f"add the package providing {exc.name} to the project's requirements"
                         + (f" (scikit-learn=={version})" if version else "")) from None


def _class(qualified: str) -> Any:
    import importlib

    module, _, name = qualified.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise SetupError(f"cannot import {qualified}", f"install the package that provides {module}") from None


def _native_predict(flavor: str, model: Any) -> Callable[[Any], Any]:
    if flavor == "xgboost" and type(model).__name__ == "Booster":
        import xgboost as xgb  # type: ignore[import-untyped,import-not-found,unused-ignore]

        return lambda data: model.predict(xgb.DMatrix(data))
    if not callable(getattr(model, "predict", None)):
        raise SetupError(f"the MLflow {flavor} model is a {type(model).__name__}, which has no predict()",
                         "log a fitted estimator")
    return model.predict  # type: ignore[no-any-return]


def _load_pyfunc(model_dir: Path, flavors: dict[str, Any], meta: dict[str, Any]) -> Any:
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")  # dockyard scanned the files
    try:
        import mlflow.pyfunc  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as exc:
        version = meta.get("mlflow_version")
        flavor = _main_flavor(flavors)
        if exc.name and not exc.name.startswith("mlflow"):
            raise SetupError(f"mlflow (needed by the MLflow model's {flavor} flavor) cannot import {exc.name!r}",
                             f"add the package providing {exc.name} to the project's requirements") from None
        raise SetupError(f"the MLflow model's {flavor} flavor loads only through mlflow, which is not installed",
                         f"add mlflow-skinny{'==' + str(version) if version else ''} to the project's "
                         "requirements (dockyard serve adds it to the serving image by itself)") from None
    try:
        return mlflow.pyfunc.load_model(str(model_dir))
    except ModuleNotFoundError as exc:
        raise SetupError(f"the MLflow model's {_main_flavor(flavors)} flavor needs the module {exc.name!r}, "
                         "which is not installed",
                         f"add the package providing {exc.name} to the project's requirements") from None


def _signature_from_estimator(model: Any, shape: tuple[int, ...] | None, where: str) -> Signature:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return Signature(tuple(TensorSpec(str(n), "FP64", (-1,)) for n in names), columns=True)
    n = getattr(model, "n_features_in_", None)
    if n is None and callable(getattr(model, "num_features", None)):
        n = model.num_features()
    if n is None and callable(getattr(model, "num_feature", None)):
        n = model.num_feature()
    if shape:
        return Signature((TensorSpec("input", "FP64", (-1, *shape)),), columns=False)
    if isinstance(n, int) and n > 0:
        return Signature((TensorSpec("input", "FP64", (-1, n)),), columns=False)
    raise SetupError(f"{where} has no signature, and the model does not record its inputs",
                     "log the model with a signature (mlflow.models.infer_signature), or pass --input-shape N")


def _batch_predict(sig: Signature, predict: Callable[[Any], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    names = [s.name for s in sig.specs]

    def run(arrays: dict[str, Any]) -> dict[str, Any]:
        if sig.columns:
            data = _frame(names, arrays)
        elif len(names) == 1:
            data = arrays[names[0]]
        else:
            data = {n: arrays[n] for n in names}
        return outputs_of(predict(data))

    return run


def _frame(names: list[str], arrays: dict[str, Any]) -> Any:
    try:
        import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        import numpy as np

        return np.column_stack([arrays[n] for n in names])
    return pd.DataFrame({n: arrays[n] for n in names}, columns=names)


def outputs_of(result: Any) -> dict[str, Any]:
    """A model's result as named arrays with the batch first (DataFrame columns keep their names)."""
    import numpy as np

    if hasattr(result, "to_dict") and hasattr(result, "columns"):  # a DataFrame
        return {str(c): np.asarray(result[c]) for c in result.columns}
    if isinstance(result, dict):
        return {str(k): np.asarray(v) for k, v in result.items()}
    if hasattr(result, "to_numpy"):  # a Series
        return {"output": result.to_numpy()}
    return {"output": np.asarray(result)}
