"""BentoML projects: bentofile.yaml -> dockyard.yaml, and models saved to the BentoML store.

``translate`` maps python.packages (-> requirements-bentoml.txt), python.requirements_txt,
python.lock_packages (-> `dockyard lock`), envs, docker.system_packages, docker.python_version,
docker.cuda_version and docker.base_image, and lists the ``@bentoml.service`` classes it found
(their API runs under ``bentoml serve``, not dockyard; the saved model is served with no code).

During ``dockyard train`` BENTOML_HOME points under /outputs (``train_env``), so models saved with
``bentoml.<framework>.save_model`` become artifacts of the version. ``model_entry`` picks the newest
saved model whose framework dockyard serves: sklearn / picklable_model (saved_model.pkl), xgboost
(saved_model.ubj), lightgbm (its text model, saved as saved_model.ubj: staged as saved_model.txt),
onnx, torchscript, and mlflow (an MLmodel directory).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import Dependencies, Gpu, ProjectConfig
from ..detect.requirements import names_distribution
from ..errors import ConfigError, DetectError
from ..runtime.contract import OUTPUTS_DIR
from ..fsio import atomic_write_bytes
from .cog import Translation  # one shape for every other tool's file init translates

BENTOFILE = "bentofile.yaml"
GENERATED_REQUIREMENTS = "requirements-bentoml.txt"
HOME_ENV = "BENTOML_HOME"
CAPTURED_HOME = f"{OUTPUTS_DIR}/bentoml"
# BentoML framework module -> the file (or folder) it saves, for the frameworks dockyard serves
SERVED = {"bentoml.sklearn": "saved_model.pkl", "bentoml.picklable_model": "saved_model.pkl",
          "bentoml.xgboost": "saved_model.ubj", "bentoml.lightgbm": "saved_model.ubj",
          "bentoml.onnx": "saved_model.onnx", "bentoml.torchscript": "saved_model.pt",
          "bentoml.mlflow": "mlflow_model"}
_SERVICE = re.compile(r"@bentoml\.service(?:\([^)]*\))?\s*\n\s*class\s+(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class SavedModel:
    name: str
    version: str
    module: str
    path: Path  # the model's folder in the store
    created: str


def train_env(image_env: list[str]) -> dict[str, str]:
    if any(e.startswith(f"{HOME_ENV}=") for e in image_env):
        return {}
    return {HOME_ENV: CAPTURED_HOME}


# -- the model store ------------------------------------------------------------------------
def saved_models(root: Path) -> list[SavedModel]:
    """Models in every BentoML store under ``root`` (a models/<name>/<version>/model.yaml tree), newest first."""
    found = []
    for meta in root.rglob("model.yaml"):
        folder = meta.parent
        if folder.parent.parent.name != "models":
            continue
        try:
            data = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("module"):
            found.append(SavedModel(str(data.get("name") or folder.parent.name), str(data.get("version") or folder.name),
                                    str(data["module"]), folder, str(data.get("creation_time") or "")))
    return sorted(found, key=lambda m: (m.created, str(m.path)), reverse=True)


def model_entry(root: Path) -> Path | None:
    """The model file (or MLmodel folder) of the newest saved model dockyard serves; None without a store."""
    models = saved_models(root)
    if not models:
        return None
    for model in models:
        target = SERVED.get(model.module)
        if target is None or not (model.path / target).exists():
            continue
        if model.module == "bentoml.lightgbm":  # a LightGBM text model behind an .ubj name
            text = model.path / "saved_model.txt"
            if not text.exists():
                shutil.copyfile(model.path / target, text)
            return text
        return model.path / target
    newest = models[0]
    raise ConfigError(f"the BentoML model {newest.name}:{newest.version} was saved with {newest.module}, which "
                      "dockyard cannot serve with no code",
                      f"save it with one of {', '.join(sorted(SERVED))}, or serve it with a predictor")


# -- bentofile.yaml -------------------------------------------------------------------------
def translate(project_dir: Path, base: ProjectConfig) -> Translation | None:
    path = project_dir / BENTOFILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DetectError(f"{path}: not valid YAML ({exc})", "fix bentofile.yaml") from None
    if not isinstance(data, dict):
        raise DetectError(f"{path}: expected a mapping at the top level", "fix bentofile.yaml")
    python = data.get("python") or {}
    docker = data.get("docker") or {}
    notes = ["bentofile.yaml: mapped python packages/requirements, envs, docker.system_packages, "
             "docker.python_version"]
    deps = base.dependencies
    if python.get("requirements_txt"):
        req_file = str(python["requirements_txt"]).removeprefix("./")
        deps = Dependencies(file=req_file, kind="requirements")
        if python.get("packages"):
            notes.append("not mapped: python.packages beside requirements_txt (add them to the requirements file)")
        listed = project_dir / req_file
        if listed.is_file() and not names_distribution(listed.read_text(encoding="utf-8", errors="replace").splitlines(), "bentoml"):
            notes.append(f"warning: {req_file} does not list bentoml, which BentoML installs in every bento and "
                         "the project's code imports: add bentoml to it")
    elif python.get("packages"):
        packages = [str(p) for p in python["packages"]]
        # BentoML installs bentoml itself in every bento: python.packages lists only what the service
        # needs besides it (its own examples leave it out), while the code imports bentoml.
        extra = [] if names_distribution(packages, "bentoml") else ["bentoml"]
        lines = ["# generated by `dockyard init` from bentofile.yaml python.packages", *packages, *extra]
        atomic_write_bytes(project_dir / GENERATED_REQUIREMENTS, ("\n".join(lines) + "\n").encode(), mode=None)
        deps = Dependencies(file=GENERATED_REQUIREMENTS, kind="requirements")
        notes.append(f"wrote {GENERATED_REQUIREMENTS} from python.packages"
                     + (" (plus bentoml, which BentoML installs in every bento)" if extra else ""))
    if python.get("lock_packages"):
        notes.append("python.lock_packages: run `dockyard lock` for hash-pinned dependencies (dockyard's lock)")
    env = dict(base.env)
    for item in data.get("envs") or ():
        if isinstance(item, dict) and item.get("name"):
            env[str(item["name"])] = str(item.get("value", ""))
    update: dict[str, object] = {"dependencies": deps, "env": env,
                                 "system_packages": tuple(dict.fromkeys(
                                     base.system_packages + tuple(str(p) for p in docker.get("system_packages") or ())))}
    if docker.get("python_version"):
        update["python"] = re.match(r"3\.\d+", str(docker["python_version"])).group(0)  # type: ignore[union-attr]
    if docker.get("cuda_version"):
        update["gpu"] = Gpu(enabled=True, cuda=str(docker["cuda_version"]))
    if docker.get("base_image"):
        update["base_image"] = str(docker["base_image"])
    for key in ("distro", "setup_script", "dockerfile_template"):
        if docker.get(key) and not (key == "distro" and docker[key] == "debian"):
            notes.append(f"not mapped: docker.{key} ({docker[key]}): dockyard builds on its Debian base")
    for cls in services(project_dir):
        notes.append(f"BentoML service {cls}: its API runs under `bentoml serve`, not dockyard; models it saves "
                     "with bentoml.<framework>.save_model during `dockyard train` are served with no code "
                     "(dockyard serve --model NAME:N)")
    config = base.model_copy(update=update)
    ProjectConfig.model_validate(config.model_dump())
    return Translation(config, tuple(notes))


def services(project_dir: Path) -> list[str]:
    """Classes decorated with @bentoml.service in the project's top-level Python files."""
    out = []
    for path in sorted(project_dir.glob("*.py")):
        try:
            out += _SERVICE.findall(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return out
