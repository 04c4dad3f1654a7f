"""The image contract: what every dockyard image promises, in one place.

Everything that builds, runs, probes, deploys or scans an image imports these facts from here
(``from dockyard.runtime import contract``): the renderer writes them into Dockerfiles, the
runtime reads them inside the container, serve/train/deploy/scan rely on them from outside.
It lives in ``runtime/`` because the runtime ships inside images and may import nothing else
from dockyard; it is stdlib-only and has no side effects.

Invariants:
- The port inside the container is part of the contract, not a user setting: users choose the
  host port (``serve --port``, Swarm/Kubernetes Services), probes always target CONTAINER_PORT.
- Memory amounts mean what they mean to ``docker run --memory``: binary units, case-insensitive,
  an optional ``b``/``ib`` suffix, decimals allowed ("1.5g", "2G", "512MiB", "1073741824").
- A model file's suffix (or, for formats that are a folder, the name of the file that marks the
  folder: MLflow's MLmodel) names exactly one format; every list of model suffixes is derived
  from MODEL_FORMATS.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# -- user and paths ----------------------------------------------------------------------------
USER_UID = 10001  # the `dockyard` user baked into every image; train, secrets and deploy run as it
USER_GID = 10001
USER_NAME = "dockyard"
APP_DIR = "/app"  # project code
VENV_DIR = "/opt/venv"  # the project's locked dependencies
RUNTIME_DIR = "/opt/dockyard/runtime"  # this package, importable as dockyard_runtime
MODEL_DIR = "/opt/dockyard/model"  # baked-in weights (DOCKYARD_MODEL_DIR)
OUTPUTS_DIR = "/outputs"  # where a training run writes artifacts (DOCKYARD_OUTPUTS)
SECRETS_DIR = "/run/secrets"  # build and run secrets, one file per id
DATA_DIR = "/data"  # --data, mounted read-only (DOCKYARD_DATA)
JUPYTER_DIR = "/opt/dockyard/jupyter"  # dev target only: JupyterLab + ipykernel (a uv --prefix)
NOTEBOOK_RUNNER_DIR = "/opt/dockyard/nbrunner"  # train target of a notebook project: nbclient + ipykernel
# llhttp for the runtime's HTTP parser: httptools installed here with `pip --target` by the builder,
# imported from here only by the runtime (never on sys.path: the user's own httptools pin wins)
PARSER_DIR = "/opt/dockyard/parser"
PARSER_REQUIREMENT = "httptools==0.9.0"  # what the builder installs into PARSER_DIR (a binary wheel or nothing)
# zero-code serving (loaders.py, tensors.py) hands the model numpy arrays: the serving image needs it
ZERO_CODE_REQUIREMENT = "numpy"

# -- network -----------------------------------------------------------------------------------
CONTAINER_PORT = 8080  # the serving runtime listens here inside every serving container
HEALTH_PATH = "/healthz"  # liveness: the process answers
READY_PATH = "/readyz"  # readiness: the model is loaded and warmed up
NOTEBOOK_PORT = 8888  # JupyterLab listens here inside dev containers

# -- build secrets -----------------------------------------------------------------------------
CA_SECRET_ID = "dockyard_ca"  # the host CA bundle, mounted on install steps only

# -- labels ------------------------------------------------------------------------------------
LABEL_PREFIX = "io.dockyard."
LABEL_MANAGED = "io.dockyard.managed"  # on every container/service dockyard starts
LABEL_ROLE = "io.dockyard.role"  # serve | train | notebook | ...
LABEL_PROJECT = "io.dockyard.project"  # the project folder's absolute path
LABEL_NAME = "io.dockyard.name"
LABEL_VERSION = "io.dockyard.version"
LABEL_FRAMEWORK = "io.dockyard.framework"
LABEL_PYTHON = "io.dockyard.python"
LABEL_TARGET = "io.dockyard.target"
LABEL_CONFIG_HASH = "io.dockyard.config-hash"
LABEL_LOCK_HASH = "io.dockyard.lock-hash"
LABEL_MODEL = "io.dockyard.model"
LABEL_MODEL_VERSION = "io.dockyard.model-version"
LABEL_MODEL_RUN = "io.dockyard.model-run"
LABEL_MODEL_GIT_COMMIT = "io.dockyard.model-git-commit"
LABEL_METRICS_PREFIX = "io.dockyard.metrics."
LABEL_RUN_ID = "io.dockyard.run-id"
LABEL_SERVICE = "io.dockyard.service"
LABEL_IMAGE_REF = "io.dockyard.image-ref"
LABEL_BASE = "io.dockyard.base"
LABEL_BASE_PYTHON = "io.dockyard.base.python"
LABEL_TEST = "io.dockyard.test"  # test-created objects, removed by the fixture that made them


# -- model formats -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFormat:
    """One saved-model format: how its files are named, what loads it, whether loading is safe."""

    name: str  # registry key, e.g. "sklearn-pickle"
    suffixes: tuple[str, ...]  # lower-case, with the dot
    framework: str  # the distribution that made it (detection's framework name)
    loader: str  # the runtime loader that serves it with no code ("" when none)
    pickle_family: bool  # loading may run code: scanned before it is loaded
    filenames: tuple[str, ...] = ()  # exact file names that mark a model folder (MLflow's MLmodel)


MODEL_FORMATS: tuple[ModelFormat, ...] = (
    # Most specific first: a portable ONNX file beats a pickle of the same model, and an MLflow
    # model folder (its MLmodel file names the flavour and the files) beats the pickle inside it.
    ModelFormat("mlflow", (), "mlflow", "mlflow", False, filenames=("MLmodel",)),
    ModelFormat("onnx", (".onnx",), "onnxruntime", "onnx", False),
    ModelFormat("keras", (".keras",), "keras", "keras", False),
    ModelFormat("xgboost-ubj", (".ubj",), "xgboost", "xgboost", False),
    ModelFormat("xgboost-json", (".json",), "xgboost", "xgboost", False),
    ModelFormat("xgboost-binary", (".bst",), "xgboost", "xgboost", False),
    ModelFormat("lightgbm-text", (".txt", ".lgb"), "lightgbm", "lightgbm", False),
    ModelFormat("sklearn-joblib", (".joblib",), "scikit-learn", "sklearn", True),
    ModelFormat("torchscript", (".pt", ".pth"), "torch", "torchscript", True),
    ModelFormat("safetensors", (".safetensors",), "torch", "", False),
    ModelFormat("hdf5", (".h5",), "tensorflow", "", False),
    ModelFormat("sklearn-pickle", (".pkl", ".pickle", ".sav"), "scikit-learn", "sklearn", True),
    ModelFormat("pickle-other", (".dill", ".ckpt", ".bin", ".npy", ".npz", ".mar"), "", "", True),
)

_BY_SUFFIX = {s: f for f in MODEL_FORMATS for s in f.suffixes}
_BY_NAME = {n: f for f in MODEL_FORMATS for n in f.filenames}
#: file names that make their folder a model (served with no code when the format has a loader)
MODEL_FILENAMES: tuple[str, ...] = tuple(_BY_NAME)

#: every suffix a model file may have, most specific first
MODEL_SUFFIXES: tuple[str, ...] = tuple(s for f in MODEL_FORMATS for s in f.suffixes)
#: suffixes the runtime serves with no code
SERVABLE_SUFFIXES: tuple[str, ...] = tuple(s for f in MODEL_FORMATS if f.loader for s in f.suffixes)
#: suffixes whose loading may run code (pickle, joblib, torch zip): scanned first
PICKLE_SUFFIXES: tuple[str, ...] = tuple(s for f in MODEL_FORMATS if f.pickle_family for s in f.suffixes)
#: suffixes common enough outside ML that a file needs a content check before it counts as a model
AMBIGUOUS_SUFFIXES: tuple[str, ...] = (".json", ".txt", ".bin", ".npy", ".npz")


def model_format(filename: str) -> ModelFormat | None:
    """The format a model file's suffix (or exact name, for MLmodel) names, or None."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if base in _BY_NAME:
        return _BY_NAME[base]
    dot = filename.rfind(".")
    return _BY_SUFFIX.get(filename[dot:].lower()) if dot >= 0 else None


#: how a .txt file starts when it is a model (LightGBM's text booster). XGBoost's dump_model()
#: text ("booster[0]:") is a report, not a model: nothing can load it, so it never counts.
_TEXT_MODEL_HEADS = (b"tree\n", b"version=")


def looks_like_model(path: str) -> bool:
    """Whether a file is a model file: a known suffix and, for suffixes common outside ML
    (.txt, .json, ...), content that says so (requirements.txt is never a model)."""
    fmt = model_format(path)
    if fmt is None:
        return False
    if fmt.filenames:  # MLmodel: the name alone says it
        return True
    suffix = path[path.rfind("."):].lower()
    if suffix not in AMBIGUOUS_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError:
        return False
    if suffix == ".txt":
        return head.startswith(_TEXT_MODEL_HEADS)
    if suffix == ".json":
        return head.lstrip().startswith(b"{") and b'"learner"' in head
    return "model" in path.rsplit("/", 1)[-1].lower()  # .bin/.npy/.npz: only when named like one


# -- resource amounts (docker semantics) -------------------------------------------------------
# go-units RAMInBytes: `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`, so "2Gi" (Kubernetes'
# spelling) is 2 GiB to docker as well.
#: the same shape as a JSON Schema / ECMAScript pattern (no flags), for dockyard.yaml's schema
MEMORY_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)([iI]?[bB]?)\s*$"
_MEMORY = re.compile(MEMORY_PATTERN)
_MEMORY_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
MEMORY_HELP = "use a size like 512m, 1.5g, 2G, 2Gi or 1073741824 (binary units, as docker reads them)"


class AmountError(ValueError):
    """A memory or CPU amount that cannot be read; the message names the value and the fix."""


def parse_memory(value: int | str) -> int:
    """Bytes in a memory amount, exactly as ``docker run --memory`` reads it (go-units
    RAMInBytes): "2G" and "2g" and "2GiB" are 2 GiB, "1.5g" is 1.5 GiB, a bare number is bytes."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise AmountError(f"memory {value!r} is not an amount; {MEMORY_HELP}")
    if isinstance(value, int):
        if value <= 0:
            raise AmountError(f"memory {value!r} must be more than zero; {MEMORY_HELP}")
        return value
    match = _MEMORY.match(value)
    if not match or ("i" in match.group(3).lower() and not match.group(2)):
        raise AmountError(f"memory {value!r} is not a size; {MEMORY_HELP}")
    amount = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])
    if amount <= 0:
        raise AmountError(f"memory {value!r} must be more than zero; {MEMORY_HELP}")
    return amount


def format_memory(amount: int) -> str:
    """The shortest exact docker spelling of a byte count ("1536m", "2g")."""
    for unit in ("p", "t", "g", "m", "k"):
        size = _MEMORY_UNITS[unit]
        if amount % size == 0:
            return f"{amount // size}{unit}"
    return str(amount)


def parse_cpus(value: float | int | str) -> float:
    """CPUs as ``docker run --cpus`` reads them (a positive decimal; "500m" millicores also
    accepted, as Kubernetes writes them)."""
    if isinstance(value, bool):
        raise AmountError(f"cpus {value!r} is not a number; pass e.g. 0.5 or 2")
    if isinstance(value, str):
        text = value.strip()
        try:
            cpus = int(text[:-1]) / 1000 if text.endswith("m") else float(text)
        except ValueError:
            raise AmountError(f"cpus {value!r} is not a number; pass e.g. 0.5 or 2") from None
    else:
        cpus = float(value)
    if not math.isfinite(cpus) or cpus < 0.01:
        raise AmountError(f"cpus {value!r} must be a number >= 0.01; pass e.g. 0.5 or 2")
    return cpus
