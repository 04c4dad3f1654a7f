"""A training script that has never heard of dockyard.

It writes the way many MLflow-era projects do: an ``mlruns/`` tracking folder and a
``model.joblib`` next to the code, in the current working directory. `dockyard init` then
`dockyard train` captures both without a code change.
"""

import json
import os
import time
import uuid
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier


def log_run(params: dict, metrics: dict) -> Path:
    """MLflow's file-store layout: mlruns/<experiment>/<run>/{params,metrics}/<key>."""
    run = Path("mlruns") / "0" / uuid.uuid4().hex
    for key, value in params.items():
        (run / "params").mkdir(parents=True, exist_ok=True)
        (run / "params" / key).write_text(str(value))
    for key, value in metrics.items():
        (run / "metrics").mkdir(parents=True, exist_ok=True)
        (run / "metrics" / key).write_text(f"{int(time.time() * 1000)} {value} 0\n")
    (run / "meta.json").write_text(json.dumps({"status": "FINISHED", "cwd": os.getcwd()}))
    return run


def main() -> None:
    depth = int(os.environ.get("MAX_DEPTH", "3"))
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    joblib.dump(model, "model.joblib")
    run = log_run({"max_depth": depth}, {"accuracy": accuracy})
    print(f"accuracy={accuracy:.4f}; wrote model.joblib and {run}")


if __name__ == "__main__":
    main()
