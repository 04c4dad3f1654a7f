"""Train a digit classifier on scikit-learn's bundled 8x8 digits (nothing is downloaded).

Writes model.joblib and metrics.json to $DOCKYARD_OUTPUTS (default: ./outputs).
Parameters come from the environment (dockyard train --param C=0.5 sets PARAM_C).
"""

import json
import os
from pathlib import Path

import joblib
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def main() -> None:
    c = float(os.environ.get("PARAM_C", "1.0"))
    max_iter = int(os.environ.get("PARAM_MAX_ITER", "2000"))
    out = Path(os.environ.get("DOCKYARD_OUTPUTS", "outputs"))
    out.mkdir(parents=True, exist_ok=True)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    model = LogisticRegression(C=c, max_iter=max_iter)
    model.fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    joblib.dump(model, out / "model.joblib")
    (out / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    print(f"C={c} accuracy={accuracy:.4f} -> {out / 'model.joblib'}")


if __name__ == "__main__":
    main()
