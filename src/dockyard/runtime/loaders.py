"""Zero-code serving: pick a loader for a saved model file by extension (and content).

Every loader returns ``Loaded(platform, inputs, predict)`` where ``predict`` maps named batch
arrays to named batch arrays, so every zero-code model takes dynamic batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .model import ArrayModel, Loaded, SetupError
from .tensors import TensorSpec

SUFFIXES = {
    ".joblib": "sklearn", ".pkl": "sklearn", ".pickle": "sklearn",
    ".onnx": "onnx", ".ubj": "xgboost", ".json": "xgboost",
    ".txt": "lightgbm", ".lgb": "lightgbm", ".pt": "torchscript", ".pth": "torchscript",
    ".keras": "keras",
}


def framework_for(path: Path) -> str:
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SetupError(f"cannot tell which framework saved {path.name}",
                         f"use one of {', '.join(sorted(SUFFIXES))}, or serve it with --predictor")
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
        if not path.is_file():
            raise SetupError(f"model file {path} does not exist",
                             "check --model / DOCKYARD_MODEL (inside images weights are in /opt/dockyard/model)")
        kind = framework_for(path)
        try:
            return loaders[kind](path, shape)
        except ImportError as exc:
            raise SetupError(f"{path.name} needs {exc.name or kind}, which is not installed",
                             f"add {exc.name or kind} to the project's requirements") from None

    return ArrayModel(name or path.stem, version, load)


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
        import joblib

        estimator = joblib.load(path)
    except ImportError:
        import pickle

        with path.open("rb") as fh:
            estimator = pickle.load(fh)
    if not callable(getattr(estimator, "predict", None)):
        raise SetupError(f"{path.name} holds a {type(estimator).__name__}, which has no predict()",
                         "save a fitted estimator or pipeline with joblib.dump(model, path)")
    feat = _features(getattr(estimator, "n_features_in_", None), shape, f"the estimator in {path.name}")
    dtype = "FP64"
    feature_names = getattr(estimator, "feature_names_in_", None)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        x = arrays["input"]
        if feature_names is not None:  # fitted on a DataFrame: keep sklearn from warning per call
            import pandas as pd

            x = pd.DataFrame(x, columns=feature_names)
        return {"output": estimator.predict(x)}

    return Loaded(f"sklearn_{type(estimator).__name__}", (TensorSpec("input", dtype, (-1, *feat)),), predict)


_ONNX_TYPES = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(int64)": "INT64",
               "tensor(int32)": "INT32", "tensor(bool)": "BOOL", "tensor(string)": "BYTES",
               "tensor(float16)": "FP16", "tensor(uint8)": "UINT8", "tensor(int8)": "INT8"}


def _onnx(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
    specs = []
    for arg in session.get_inputs():
        dims = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape)
        if not dims:
            dims = (-1,)
        if shape and any(d < 0 for d in dims[1:]):
            dims = (-1, *shape)
        specs.append(TensorSpec(arg.name, _ONNX_TYPES.get(arg.type, "FP32"), (-1, *dims[1:])))
    output_names = [o.name for o in session.get_outputs()]

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        values = session.run(output_names, arrays)
        return {n: v for n, v in zip(output_names, values) if hasattr(v, "shape")}

    return Loaded("onnxruntime_onnx", tuple(specs), predict)


def _xgboost(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import xgboost as xgb

    booster = xgb.Booster(model_file=str(path))
    feat = _features(booster.num_features(), shape, path.name)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        return {"output": booster.inplace_predict(arrays["input"])}

    return Loaded("xgboost", (TensorSpec("input", "FP32", (-1, *feat)),), predict)


def _lightgbm(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(path))
    feat = _features(booster.num_feature(), shape, path.name)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        return {"output": booster.predict(arrays["input"])}

    return Loaded("lightgbm", (TensorSpec("input", "FP64", (-1, *feat)),), predict)


def _torchscript(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import torch

    module = torch.jit.load(str(path), map_location="cpu")
    module.eval()
    if not shape:
        # TorchScript keeps no input shapes; the first 2-D weight is usually a Linear(in, out).
        weights = [p for p in module.parameters() if p.dim() == 2]
        if not weights:
            raise SetupError(f"{path.name} does not record its input shape",
                             "pass --input-shape, e.g. --input-shape 3,224,224")
        shape = (int(weights[0].shape[1]),)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        with torch.inference_mode():
            out = module(torch.from_numpy(arrays["input"]))
        return {"output": out.detach().cpu().numpy()}

    return Loaded("pytorch_torchscript", (TensorSpec("input", "FP32", (-1, *shape)),), predict)


def _keras(path: Path, shape: tuple[int, ...] | None) -> Loaded:
    import keras

    net = keras.models.load_model(str(path))
    dims = tuple(net.inputs[0].shape[1:])
    feat = shape or tuple(int(d) if d else -1 for d in dims)

    def predict(arrays: dict[str, Any]) -> dict[str, Any]:
        return {"output": net.predict_on_batch(arrays["input"])}

    return Loaded("keras", (TensorSpec("input", "FP32", (-1, *feat)),), predict)

