"""What serving an MLflow model directory adds to a plan (pure apart from reading MLmodel files).

The runtime loads the sklearn, xgboost and lightgbm flavors with their own libraries; any other
flavor (custom pyfunc, pytorch, keras, ...) loads through ``mlflow.pyfunc``, so the serving image
(only that one) gets ``mlflow-skinny`` at the version that wrote the model, plus the packages in
the model's own requirements.txt that the project does not list, unless the project already
installs mlflow. A scikit-learn model mlflow >= 3 saved with skops also needs ``skops``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..runtime.mlflow_model import MLMODEL, NATIVE_FLAVORS, parse_block_yaml
from .mlflow_tracking import mlmodel_dirs


def newest_mlmodel_dir(root: Path) -> Path | None:
    """The MLflow model a stored version (or a folder) serves by default: the newest one."""
    if (root / MLMODEL).is_file():
        return root
    found = mlmodel_dirs(root)
    return found[0] if found else None


def serving_requirements(root: Path, requirements: tuple[str, ...]) -> tuple[str, ...]:
    """Requirements to add so the MLflow model under ``root`` loads (none when not an MLflow model)."""
    model_dir = newest_mlmodel_dir(root)
    if model_dir is None:
        return ()
    try:
        meta = parse_block_yaml((model_dir / MLMODEL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    flavors = meta.get("flavors") if isinstance(meta, dict) else None
    if not isinstance(flavors, dict):
        return ()
    have = {_name(r) for r in requirements}
    extra: list[str] = []
    native = next((f for f in NATIVE_FLAVORS if f in flavors), None)
    if native is None and "python_function" in flavors and not have & {"mlflow", "mlflow-skinny"}:
        version = str(meta.get("mlflow_version") or "")
        extra.append(f"mlflow-skinny=={version}" if re.fullmatch(r"[\w.]+", version) else "mlflow-skinny")
        if "pandas" not in have:  # mlflow.pyfunc needs it; mlflow-skinny does not bring it
            extra.append("pandas")
        # and what mlflow recorded the model needs (as `mlflow models serve` installs it), for the
        # packages the project does not already pin
        for line in _model_requirements(model_dir):
            name = _name(line)
            if name and name not in have | {"mlflow", "mlflow-skinny"} and name not in {_name(e) for e in extra}:
                extra.append(line)
    conf = flavors.get(native) if native else None
    if isinstance(conf, dict) and conf.get("serialization_format") == "skops" and "skops" not in have:
        extra.append("skops")
    return tuple(extra)


def _model_requirements(model_dir: Path) -> list[str]:
    try:
        text = (model_dir / "requirements.txt").read_text(encoding="utf-8")
    except OSError:
        return []
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "-"))]


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""
