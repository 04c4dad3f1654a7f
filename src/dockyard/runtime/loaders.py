"""Zero-code serving: pick a loader for a saved model file by extension (and content).

Every loader returns ``Loaded(platform, inputs, predict)`` where ``predict`` maps named batch
arrays to named batch arrays, so every zero-code model takes dynamic batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable  # noqa: UP035 (a runtime test allows only top-level stdlib names in from-imports)

from .contract import SERVABLE_SUFFIXES, model_format
from .mlflow_model import MLMODEL, is_mlmodel_dir, load_mlmodel
from .model import ArrayModel, Loaded, SetupError
from .tensors import TensorSpec

def framework_for(path: Path) -> str:
    """The loader for a model file, from the one registry of model formats (contract.py)."""
    fmt = model_format(path.name)
    kind = fmt.loader if fmt else ""
    if not kind:
        raise SetupError(f"cannot tell which framework saved {path.name}",
                         f"use one of {', '.join(sorted(SERVABLE_SUFFIXES))}, or serve it with --predictor")
    if kind == "xgboost" and path.suffix.lower() == ".json" and not _looks_like_xgboost_json(path):
        raise SetupError(f"{path.name} is JSON but not an XGBoost model (no 'learner' key)",
                         "save the booster with booster.save_model('model.json'), or use --predictor")
    return kind


def _looks_like_xgboost_json(path: Path) -> bool:  # .json is too common a suffix to trust
    try:
        with path.open("rb") as fh:
            return b'"learner"' in fh.read(1 << 20)
    except OSError:
        return False


def model_from_file(path_text: str, name: str | None, version: str, input_shape: str | None) -> ArrayModel:
    path = Path(path_text)
    loaders: dict[str, Callable[[Path, tuple[int, ...] | None], Loaded]] = {
        "sklearn": _sklearn, "onnx": _onnx, "xgboost": _xgboost, "lightgbm": _lightgbm,
        "torchscript": _torchscript, "keras": _keras,
    }
    shape = _parse_shape(input_shape)

    def load() -> Loaded:
        mlmodel_dir = path.parent if path.name == MLMODEL else path
        if is_mlmodel_dir(mlmodel_dir):  # contract's "mlflow" format: its MLmodel says how to load it
            return load_mlmodel(mlmodel_dir, shape)
        if not path.is_file():
            raise SetupError(f"model file {path} does not exist",
                             "check --model / DOCKYARD_MODEL (inside images weights are in /opt/dockyard/model)")
        kind = framework_for(path)
        try:
            return loaders[kind](path, shape)
        except ImportError as exc:
            raise SetupError(f"{path.name} needs {exc.name or kind}, which is not installed",
                             f"add {exc.name or kind} to the project's requirements") from None

    return ArrayModel(name or (path.name if path.is_dir() else path.stem), version, load)


def _parse_shape(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise SetupError(f"--input-shape {text!r} is not a list of integers", "write it like 64 or 3,224,224") from None
    return dims or None


def _features(n: Any, given: tuple[int, ...] | None, what: str) -> tuple[int, ...]:
    if given:
        return given
    if isinstance(n, int) and n > 0:
        return (n,)
    raise SetupError(f"{what} does not record how many input features it takes",
                     "pass --input-shape N (features per row)")


def _sklearn(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    try:
        import joblib  # type: ignore[import-untyped,import-not-found,unused-ignore]

        estimator = joblib.load(path)
    except ImportError:
        import pickle

        with path.open("rb") as fh:
            estimator = pickle.load(fh)
    return _estimator(estimator, path.name, shape, "sklearn")


def _estimator(estimator: Any, where: str, shape: tuple[int, ...] | None, platform: str) -> Loaded:
    """A fitted scikit-learn-style estimator (anything with predict() and n_features_in_)."""
    if not callable(getattr(estimator, "predict", None)):
        raise SetupError(f"{where} holds a {type(estimator).__name__}, which has no predict()",
                         "save a fitted estimator or pipeline with joblib.dump(model, path)")
    feat = _features(getattr(estimator, "n_features_in_", None), shape, f"the estimator in {where}")
    dtype = "FP64"
    feature_names = getattr(estimator, "feature_names_in_", None)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        x = arrays["input"]
        if feature_names is not None:  # fitted on a DataFrame: keep sklearn from warning per call
            import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]

            x = pd.DataFrame(x, columns=feature_names)
        return {"output": estimator.predict(x)}

    return Loaded(f"{platform}_{type(estimator).__name__}", (TensorSpec("input", dtype, (-1, *feat)),), predict)


_ONNX_TYPES = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(int64)": "INT64",
               "tensor(int32)": "INT32", "tensor(bool)": "BOOL", "tensor(string)": "BYTES",
               "tensor(float16)": "FP16", "tensor(uint8)": "UINT8", "tensor(int8)": "INT8"}


def _onnx(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import onnxruntime as ort  # type: ignore[import-untyped,import-not-found,unused-ignore]

    session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
    specs, fixed_batch = [], None
    for arg in session.get_inputs():
        dims = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape)
        if not dims:
            dims = (-1,)
        if dims[0] > 0:  # exported with a fixed batch (often 1): feed it rows in chunks of that size
            fixed_batch = dims[0]
        if shape and any(d < 0 for d in dims[1:]):
            dims = (-1, *shape)
        specs.append(TensorSpec(arg.name, _ONNX_TYPES.get(arg.type, "FP32"), (-1, *dims[1:])))
    output_names = [o.name for o in session.get_outputs()]

    def run(arrays: dict[str, Any]) -> dict[str, Any]:
        values = session.run(output_names, arrays)
        return {n: v for n, v in zip(output_names, values) if hasattr(v, "shape")}

    predict = run if fixed_batch is None else _in_chunks(run, fixed_batch)
    return Loaded("onnxruntime_onnx", tuple(specs), predict)


def _in_chunks(run: Callable[[dict[str, Any]], dict[str, Any]], size: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Run a fixed-batch model on any number of rows: pad the last chunk with zeros, trim its outputs."""
    import numpy as np

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        rows = next(iter(arrays.values())).shape[0]
        parts: list[dict[str, Any]] = []
        for start in range(0, rows, size):
            chunk = {}
            for name, array in arrays.items():
                piece = array[start:start + size]
                if piece.shape[0] < size:
                    pad = np.zeros((size - piece.shape[0], *piece.shape[1:]), dtype=piece.dtype)
                    piece = np.concatenate([piece, pad])
                chunk[name] = piece
            parts.append({k: v[:min(size, rows - start)] for k, v in run(chunk).items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    return predict


def _xgboost(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import xgboost as xgb  # type: ignore[import-untyped,import-not-found,unused-ignore]

    booster = xgb.Booster(model_file=str(path))
    feat = _features(booster.num_features(), shape, path.name)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        return {"output": booster.inplace_predict(arrays["input"])}

    return Loaded("xgboost", (TensorSpec("input", "FP32", (-1, *feat)),), predict)


def _lightgbm(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import lightgbm as lgb  # type: ignore[import-untyped,import-not-found,unused-ignore]

    booster = lgb.Booster(model_file=str(path))
    feat = _features(booster.num_feature(), shape, path.name)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        return {"output": booster.predict(arrays["input"])}

    return Loaded("lightgbm", (TensorSpec("input", "FP64", (-1, *feat)),), predict)


def _torchscript(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import torch  # type: ignore[import-untyped,import-not-found,unused-ignore]

    module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call,unused-ignore]
    module.eval()
    if not shape:
        shape = _torchscript_features(module, path)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        with torch.inference_mode():
            out = module(torch.from_numpy(arrays["input"]))
        return _named_outputs(out, lambda t: t.detach().cpu().numpy())

    return Loaded("pytorch_torchscript", (TensorSpec("input", "FP32", (-1, *shape)),), predict)


def _named_outputs(out: Any, to_numpy: Callable[[Any], Any]) -> dict[str, Any]:
    """A tensor -> "output"; a tuple/list -> "output_0", "output_1", ...; a dict keeps its keys."""
    if isinstance(out, dict):
        return {str(k): to_numpy(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return {f"output_{i}": to_numpy(v) for i, v in enumerate(out)}
    return {"output": to_numpy(out)}


def _torchscript_features(module: Any, path: Path) -> tuple[int, ...]:
    """TorchScript keeps no input shapes; a first layer that is a Linear(in, out) tells us ``in``.

    Only the *first* layer with weights counts: a Linear after a Conv would give a wrong guess.
    """
    for sub in module.modules():
        weights = list(sub.parameters(recurse=False))
        if not weights:
            continue
        if getattr(sub, "original_name", "") == "Linear" and weights[0].dim() == 2:
            return (int(weights[0].shape[1]),)
        break
    raise SetupError(f"{path.name} does not record its input shape (its first layer is not a Linear)",
                     "pass --input-shape with the per-row shape, e.g. --input-shape 3,224,224")


def _choose_keras_backend() -> None:
    """Keras 3 defaults to TensorFlow; when that is missing, use an installed backend instead.

    An explicit KERAS_BACKEND, or a keras.json naming an installed backend, still wins.
    """
    import importlib.util
    import json
    import os

    if os.environ.get("KERAS_BACKEND"):
        return
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    configured = "tensorflow"
    try:
        with open(os.path.join(home, "keras.json")) as fh:
            configured = str(json.load(fh).get("backend", configured))
    except (OSError, ValueError, AttributeError):
        pass
    installed = [b for b in (configured, "jax", "torch", "tensorflow") if importlib.util.find_spec(b) is not None]
    if installed and installed[0] != configured:
        os.environ["KERAS_BACKEND"] = installed[0]


_KERAS_TYPES = {"float32": "FP32", "float64": "FP64", "float16": "FP16", "int64": "INT64", "int32": "INT32",
                "int16": "INT16", "int8": "INT8", "uint8": "UINT8", "bool": "BOOL"}


def _keras(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    _choose_keras_backend()
    import keras  # type: ignore[import-untyped,import-not-found,unused-ignore]

    net = keras.models.load_model(str(path))
    tensors = list(getattr(net, "inputs", None) or [])
    if not tensors:
        raise SetupError(f"{path.name} holds a Keras model that was never built, so its inputs are unknown",
                         "start the model with keras.Input(shape=...) (or call it once) before saving")
    specs = []
    for t in tensors:  # one input keeps the name "input", like every other zero-code model
        dims = tuple(int(d) if d else -1 for d in t.shape[1:])
        if len(tensors) == 1 and shape:
            dims = shape
        specs.append(TensorSpec("input" if len(tensors) == 1 else t.name,
                                _KERAS_TYPES.get(str(t.dtype), "FP32"), (-1, *dims)))
    names = [s.name for s in specs]
    output_names = list(getattr(net, "output_names", None) or [])

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        out = net.predict_on_batch(arrays["input"] if len(names) == 1 else [arrays[n] for n in names])
        if isinstance(out, dict):
            return dict(out)
        if isinstance(out, (list, tuple)):
            keys = output_names if len(output_names) == len(out) else [f"output_{i}" for i in range(len(out))]
            return dict(zip(keys, out))
        return {"output": out}

    return Loaded("keras", tuple(specs), predict)
