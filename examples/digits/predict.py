"""A dockyard predictor for the digits model: 64 pixel values (0-16) in, the digit out."""

import os
from pathlib import Path

import joblib
import numpy as np


class Predictor:
    # The runtime batches concurrent requests into one predict() call: type hints describe
    # ONE request (64 pixels -> a digit); with batch = True each argument arrives as a list
    # of those and predict() returns one output per request.
    batch = True
    input_shapes = {"pixels": (64,)}  # validated per request: a wrong length is a 400 naming "pixels"
    example = {"pixels": [0.0] * 64}  # the warm-up input: ready only after it predicts

    def setup(self) -> None:
        model_dir = Path(os.environ.get("DOCKYARD_MODEL_DIR", "outputs"))
        self.model = joblib.load(model_dir / "model.joblib")

    def predict(self, pixels: list[float]) -> int:
        return [int(d) for d in self.model.predict(np.asarray(pixels, dtype=np.float64))]  # type: ignore[return-value]
