"""A dockyard predictor for the digits model: 64 pixel values (0-16) in, the digit out."""

import os
from pathlib import Path

import joblib
import numpy as np


class Predictor:
    batch = True  # the runtime batches concurrent requests into one predict() call

    def setup(self) -> None:
        model_dir = Path(os.environ.get("DOCKYARD_MODEL_DIR", "outputs"))
        self.model = joblib.load(model_dir / "model.joblib")

    def predict(self, pixels: list[list[float]]) -> list[int]:
        return [int(d) for d in self.model.predict(np.asarray(pixels, dtype=np.float64))]
