"""dockyard.yaml: the project config schema, and loading it with errors that name key and line."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .runtime import contract

CONFIG_NAME = "dockyard.yaml"
FRAMEWORKS = ("scikit-learn", "torch", "tensorflow", "keras", "xgboost", "lightgbm", "onnx")


# Per-item validators (not whole-field ones) so an error's location, and so its line, is the
# offending list item or mapping key rather than the list or mapping that holds it.
def _debian_package(pkg: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+(=[\w.:~+-]+)?", pkg):
        raise ValueError(f"{pkg!r} is not a Debian package name (lower case, like libgomp1 or libgomp1=12.2.0-14)")
    return pkg


def _env_name(key: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise ValueError(f"{key!r} is not a valid environment variable name (letters, digits, _; not starting with a digit)")
    return key


DebianPackage = Annotated[str, AfterValidator(_debian_package)]
EnvName = Annotated[str, AfterValidator(_env_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dependencies(_Strict):
    """Where dependencies come from. ``file`` is project-relative."""

    file: str | None = None
    kind: Literal["requirements", "pyproject", "uv-lock", "conda", "none"] = "none"
    lock: str | None = Field(default=None, description="hash-pinned lock file (dockyard lock)")
    install_project: bool = Field(default=True, description=(
        "install the project itself (uv pip install --no-deps -e /app) when it is a package: a setup.py, or a "
        "[build-system] in pyproject.toml"))


class Gpu(_Strict):
    enabled: bool = False
    cuda: str | None = None  # e.g. "12.4"; resolved from the framework when omitted
    devel: bool = False  # a CUDA *devel* base only when asked for


class Resources(_Strict):
    cpus: float = Field(default=2.0, gt=0, le=512)
    memory: Annotated[str, WithJsonSchema({"anyOf": [
        {"type": "string", "pattern": contract.MEMORY_PATTERN}, {"type": "integer", "minimum": 1}]})] = Field(
        default="2g", description="memory limit, as docker reads it: 512m, 1.5g, 2G (binary units)")
    gpus: str | None = None
    pids: int = Field(default=512, ge=16, le=1_000_000)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> str:
        try:
            contract.parse_memory(v)  # one parser for every memory amount, with docker's semantics
        except contract.AmountError as exc:
            raise ValueError(str(exc)) from None
        return str(v)


class Serve(_Strict):
    predictor: str | None = Field(default=None, description="module.py:Class with setup() and predict()")
    model: str | None = Field(default=None, description="model file for zero-code serving")
    app: str | None = Field(default=None, description="the project's own ASGI/WSGI app, FILE.py:NAME (uvicorn/gunicorn)")
    port: int = Field(
        default=contract.CONTAINER_PORT, ge=1, le=65535,
        description="default HOST port for `dockyard serve`; inside the container the server always "
                    f"listens on {contract.CONTAINER_PORT} (the image contract)",
    )
    workers: int = Field(default=1, ge=1, le=64)
    max_batch_size: int = Field(default=32, ge=1, le=4096)
    max_batch_wait_ms: float = Field(default=2.0, ge=0, le=10_000)
    bytecode: bool = Field(
        default=True,
        description="precompile what the framework imports into the serving image: about 1 s faster cold "
                    "starts for scikit-learn, for about 22 MB of image",
    )

    # Field validators (not a model validator) so the error points at the offending line.
    @field_validator("predictor")
    @classmethod
    def _predictor(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[\w./-]+\.py:[A-Za-z_]\w*", v):
            raise ValueError(f"{v!r} is not FILE.py:Class; it must look like predict.py:Predictor")
        return v

    @field_validator("model")
    @classmethod
    def _one_entry(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v and info.data.get("predictor"):
            raise ValueError("give either serve.predictor or serve.model, not both")
        return v

    @field_validator("app")
    @classmethod
    def _app(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not re.fullmatch(r"[\w./-]+\.py:[A-Za-z_]\w*", v):
            raise ValueError(f"{v!r} is not FILE.py:NAME; it must look like api/main.py:app")
        if v and (info.data.get("predictor") or info.data.get("model")):
            raise ValueError("serve.app serves the project's own web app; drop serve.predictor / serve.model")
        return v


class Train(_Strict):
    command: str | None = None
    notebook: str | None = Field(default=None, description="a .ipynb run as the training command (docs/notebooks.md)")
    outputs: str = "outputs"
    model_variable: str | None = Field(
        default=None, description="the module-level variable a train script that saves no model leaves its trained "
                                  "model in; dockyard saves it when the script ends (docs/training.md)")

    @field_validator("model_variable")
    @classmethod
    def _model_variable(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if not v.isidentifier():
            raise ValueError(f"{v!r} is not a Python variable name; it must look like model or fc")
        if not info.data.get("command"):
            raise ValueError("train.model_variable needs train.command: the `python SCRIPT.py` that trains it")
        return v

    @field_validator("notebook")
    @classmethod
    def _notebook(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        if not re.fullmatch(r"[\w./ -]+\.ipynb", v) or v.startswith("/") or ".." in v.split("/"):
            raise ValueError(f"{v!r} is not a notebook path inside the project; it must look like train.ipynb")
        if info.data.get("command"):
            raise ValueError("give either train.command or train.notebook, not both")
        return v


class BuildSecret(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    src: str | None = None
    env: str | None = None

    @field_validator("env")
    @classmethod
    def _not_both(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("src") is not None:
            raise ValueError("a build secret takes src (a file) or env (a variable), not both")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> BuildSecret:
        if (self.src is None) == (self.env is None):
            raise ValueError("a build secret needs exactly one of src (a file) or env (a variable)")
        return self


class ProjectConfig(_Strict):
    """The whole of dockyard.yaml."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    python: str = Field(default="3.11", pattern=r"^3\.\d{1,2}$")
    framework: str | None = Field(default=None, json_schema_extra={"enum": [*FRAMEWORKS, None]})
    framework_version: str | None = None
    dependencies: Dependencies = Dependencies()
    system_packages: tuple[DebianPackage, ...] = ()
    gpu: Gpu = Gpu()
    base_image: str | None = None
    train: Train = Train()
    serve: Serve = Serve()
    resources: Resources = Resources()
    env: dict[EnvName, str] = Field(default_factory=dict)
    build_secrets: tuple[BuildSecret, ...] = ()
    post_build_as_root: bool = Field(default=False, description="run the project's postBuild as root (it needs it)")

    @field_validator("python", mode="before")
    @classmethod
    def _python_is_text(cls, v: Any) -> Any:
        # YAML reads `python: 3.10` as the float 3.1: refuse numbers instead of guessing.
        if not isinstance(v, str):
            raise ValueError(  # noqa: TRY004 - pydantic turns only ValueError into a located error
                f"YAML read the version as the number {v!r} (3.10 becomes 3.1); quote it, e.g. python: \"3.10\""
            )
        return v

    @field_validator("framework")
    @classmethod
    def _framework(cls, v: str | None) -> str | None:
        if v is not None and v not in FRAMEWORKS:
            raise ValueError(f"unknown framework {v!r}; known: {', '.join(FRAMEWORKS)}")
        return v

    def config_hash(self) -> str:
        """Stable hash of the config the image is built from (goes into an image label).

        serve.port is left out: it is the host port serve publishes on, not part of the image."""
        blob = json.dumps(self.model_dump(mode="json", exclude={"serve": {"port"}}), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


SCHEMA_URL_COMMENT = "# yaml-language-server: $schema="
SCHEMA_FILE = "dockyard.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of dockyard.yaml, generated from ProjectConfig (pure). Shipped as
    dockyard/schema/dockyard.schema.json; tests/unit/test_config_schema.py keeps it current."""
    schema = ProjectConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": "dockyard.yaml",
            "description": "dockyard project config (see `dockyard plan` for what it resolves to)"}


def shipped_schema() -> Path:
    """The schema file inside the installed package."""
    from importlib import resources

    return Path(str(resources.files("dockyard").joinpath("schema", SCHEMA_FILE)))


def load_config(project_dir: Path) -> ProjectConfig:
    path = project_dir / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"no {CONFIG_NAME} in {project_dir}", f"run `dockyard init {project_dir}` to create one")
    return parse_config(path.read_text(), source=str(path))


def parse_config(text: str, *, source: str = CONFIG_NAME) -> ProjectConfig:
    """Validate YAML text; errors name the key path and its line."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})", "fix the YAML syntax") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level", "see `dockyard init` output")
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if p != "[key]")  # pydantic marks dict-key errors with "[key]"
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(node, loc)
        where = f"{source}:{line}" if line else source
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key (allowed: {', '.join(_allowed_keys(loc[:-1]))})"
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{where}: {key}: {msg}{more}", f"edit {key} in {source}") from exc


def _line_of(node: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node along ``loc``."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = ProjectConfig
    for part in loc:
        if isinstance(part, int):  # an item of a list of models: same model
            continue
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = field.annotation
        args = getattr(model, "__args__", ())
        model = next((a for a in args if hasattr(a, "model_fields")), model)
    return sorted(model.model_fields) if hasattr(model, "model_fields") else []


def dump_config(config: ProjectConfig) -> str:
    """YAML for `dockyard init`: defaults omitted, keys in schema order."""
    data = config.model_dump(mode="json", exclude_defaults=True)
    data = {"name": config.name, "python": config.python, **{k: v for k, v in data.items() if k not in ("name", "python")}}
    return yaml.safe_dump(data, sort_keys=False)
