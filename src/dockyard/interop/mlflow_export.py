"""``dockyard models export NAME:N --format mlflow``: a stored version as an MLflow model directory.

A version that holds an MLflow model (a run logged one) exports that directory as it is. A
version that holds a plain model file gets an ``MLmodel`` written around it, for the flavors
whose files mlflow reads as they are: XGBoost (.json/.ubj/.bst), LightGBM (text), ONNX, and
scikit-learn (a pickle; a joblib file is re-pickled when joblib can be imported here). Other
formats are refused with the reason.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ..errors import UsageError
from ..runtime.contract import MODEL_SUFFIXES, model_format
from .mlflow_serving import newest_mlmodel_dir

# the mlflow release whose MLmodel layout these files follow (mlflow reads it from 2.x on)
MLMODEL_LAYOUT_VERSION = "2.22.0"


def export_mlflow(store: object, ref: str, dest: Path) -> Path:
    """Write ``ref`` as an MLmodel directory at ``dest`` (absent or empty); returns ``dest``."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} already exists and is not an empty directory",
                         "pass -o with a new directory for the MLflow model")
    with tempfile.TemporaryDirectory(prefix="dockyard-export-") as tmp:
        files = Path(tmp) / "version"
        store.materialize(ref, files)  # type: ignore[attr-defined]
        logged = newest_mlmodel_dir(files)
        if logged is not None:
            _copy_into(logged, dest)
            return dest
        model = _model_file(files, ref)
        stage = Path(tmp) / "mlmodel"
        stage.mkdir()
        flavor, conf, data = _flavor(model, stage, ref)
        _write_mlmodel(stage, flavor, conf, data)
        _copy_into(stage, dest)
    return dest


def _copy_into(src: Path, dest: Path) -> None:
    if dest.exists():
        dest.rmdir()
    shutil.copytree(src, dest)


def _model_file(root: Path, ref: str) -> Path:
    found = sorted((p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES
                    and p.name != "metrics.json"), key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise UsageError(f"{ref} holds no model file to export as an MLflow model",
                         f"save the model under $DOCKYARD_OUTPUTS as one of {', '.join(MODEL_SUFFIXES)}")
    return found[0]


def _flavor(model: Path, stage: Path, ref: str) -> tuple[str, dict[str, object], str]:
    fmt = model_format(model.name)
    kind = fmt.name if fmt else ""
    if kind.startswith("xgboost"):
        data = f"model{model.suffix.lower()}"
        shutil.copyfile(model, stage / data)
        model_fmt = {".json": "json", ".ubj": "ubj"}.get(model.suffix.lower(), "xgb")
        return "xgboost", {"data": data, "model_class": "xgboost.core.Booster", "model_format": model_fmt,
                           "xgb_version": _version("xgboost"), "code": None}, data
    if kind == "lightgbm-text":
        shutil.copyfile(model, stage / "model.lgb")
        return "lightgbm", {"data": "model.lgb", "model_class": "lightgbm.basic.Booster",
                            "lgb_version": _version("lightgbm"), "code": None}, "model.lgb"
    if kind == "onnx":
        shutil.copyfile(model, stage / "model.onnx")
        return "onnx", {"data": "model.onnx", "onnx_version": _version("onnx"),
                        "providers": ["CPUExecutionProvider"], "code": None}, "model.onnx"
    if kind in ("sklearn-pickle", "sklearn-joblib"):
        _write_pickle(model, stage / "model.pkl", joblib_file=kind == "sklearn-joblib")
        return "sklearn", {"pickled_model": "model.pkl", "serialization_format": "pickle",
                           "sklearn_version": _version("sklearn"), "code": None}, "model.pkl"
    raise UsageError(f"{ref}: {model.name} ({kind or 'unknown format'}) has no MLflow flavor dockyard can write",
                     "log the model with mlflow inside the training run (mlflow.<flavor>.log_model); "
                     "dockyard then exports that directory as it is")


def _write_pickle(src: Path, dest: Path, *, joblib_file: bool) -> None:
    if not joblib_file:
        shutil.copyfile(src, dest)
        return
    try:
        import pickle

        import joblib  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise UsageError(f"{src.name} is a joblib file; mlflow's sklearn flavor reads plain pickles, and "
                         "converting needs joblib here", "pip install joblib scikit-learn next to dockyard, "
                         "or save the model with pickle") from None
    # Loading runs the file's code: `dockyard serve` scans pickles before loading them; so do we.
    from ..scan.models import scan_model_file

    if scan_model_file(src).status == "malicious":
        raise UsageError(f"refusing to convert {src.name}: the scanner flags it as dangerous",
                         "inspect it with `dockyard scan`")
    with dest.open("wb") as fh:
        pickle.dump(joblib.load(src), fh)


def _version(module: str) -> str | None:
    loaded = sys.modules.get(module)
    if loaded is None:
        try:
            loaded = __import__(module)
        except ImportError:
            return None
    return str(getattr(loaded, "__version__", "")) or None


def _write_mlmodel(stage: Path, flavor: str, conf: dict[str, object], data: str) -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    mlmodel = {
        "flavors": {
            "python_function": {"loader_module": f"mlflow.{flavor}", "python_version": python,
                                "env": {"virtualenv": "python_env.yaml"},
                                # as mlflow writes them: sklearn names model_path, the others data
                                **({"model_path": data, "predict_fn": "predict"} if flavor == "sklearn"
                                   else {"data": data})},
            flavor: conf,
        },
        "mlflow_version": MLMODEL_LAYOUT_VERSION,
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    (stage / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=True))
    package = {"sklearn": "scikit-learn"}.get(flavor, flavor)
    version = conf.get("sklearn_version") or conf.get("xgb_version") or conf.get("lgb_version") or conf.get("onnx_version")
    (stage / "requirements.txt").write_text(f"{package}=={version}\n" if version else f"{package}\n")
    (stage / "python_env.yaml").write_text(yaml.safe_dump({"python": python, "build_dependencies": ["pip"],
                                                           "dependencies": ["-r requirements.txt"]}))
