"""The seed article's Keras digit classifier, with its loss bug fixed.

Model: Dense(128, relu) -> Dense(10, softmax), Adam, sparse categorical cross-entropy.
Data: a real MNIST ``mnist.npz`` when ``dockyard train --data DIR`` holds one; otherwise the
8x8 digits that ship with scikit-learn (nothing is downloaded).
Writes model.keras and metrics.json to $DOCKYARD_OUTPUTS (default: ./outputs).
Params: --param epochs=N (PARAM_EPOCHS), --param batch_size=N (PARAM_BATCH_SIZE).
"""

import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")  # dockyard.yaml sets it too; this keeps `python train.py` working

import keras
import numpy as np


def _flat(images: np.ndarray) -> np.ndarray:
    """28x28 uint8 images -> rows of 784 floats in 0..1."""
    return images.reshape(len(images), -1).astype("float32") / 255.0


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(x_train, y_train, x_test, y_test, source), pixels scaled to 0..1 and flattened."""
    mnist = Path(os.environ.get("DOCKYARD_DATA", "data")) / "mnist.npz"
    if mnist.is_file():
        with np.load(mnist) as d:
            x_train, y_train, x_test, y_test = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
        return _flat(x_train), y_train, _flat(x_test), y_test, str(mnist)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x.astype("float32") / 16.0  # the 8x8 digits' pixels run 0..16
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    return x_train, y_train, x_test, y_test, "sklearn digits (8x8)"


def build_model(n_features: int) -> keras.Model:
    model = keras.Sequential([
        keras.Input(shape=(n_features,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    # The article's bug: it passed from_logits=True here although the last layer already applies
    # softmax, so the loss applied softmax a second time and training crawled. With a softmax
    # output the loss must take probabilities: from_logits=False (the default).
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
                  metrics=["accuracy"])
    return model


def main() -> None:
    epochs = int(os.environ.get("PARAM_EPOCHS", "20"))
    batch_size = int(os.environ.get("PARAM_BATCH_SIZE", "32"))
    out = Path(os.environ.get("DOCKYARD_OUTPUTS", "outputs"))
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test, source = load_data()
    print(f"data: {source}: {len(x_train)} train / {len(x_test)} test, backend {keras.backend.backend()}")
    model = build_model(x_train.shape[1])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    model.save(out / "model.keras")
    (out / "metrics.json").write_text(json.dumps({"accuracy": float(accuracy), "loss": float(loss)}))
    print(f"accuracy={accuracy:.4f} loss={loss:.4f} -> {out / 'model.keras'}")


if __name__ == "__main__":
    main()
