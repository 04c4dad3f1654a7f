"""Cog predictors, run unchanged with the real ``cog`` package (installed in the serving image).

Cog's own inspector (``cog._inspector``) reads the predictor: ``BasePredictor`` subclasses with
``predict()`` or ``run()``, ``Input(...)`` defaults, descriptions, ge/le, min/max length, regex
and choices, ``cog.Path``/``cog.File``/``cog.Secret`` inputs, and the output type (single, list,
iterator, ConcatenateIterator, object). Its ``check_input`` validates and normalises every request,
so a request is accepted or refused exactly as Cog would. File inputs arrive as data: (or http)
URLs and are downloaded to temporary files before predict() runs; file outputs become data:
URLs, which is what Cog answers when it has no upload URL. Iterator outputs are collected.

Not supported (refused at start-up, naming the feature): ``async def`` predictors (Cog
concurrency) and ``setup(self, weights)`` (Cog's weights URL).
"""

from __future__ import annotations

import base64
import importlib
import inspect
import mimetypes
import pathlib
import re
import sys
import time
from pathlib import Path
from typing import Any

from .model import Failure, InputError, SetupError
from .tensors import TensorError, TensorSpec

_COG_IMPORT = re.compile(r"^\s*(from\s+cog(\.\w+)*\s+import|import\s+cog\b)", re.MULTILINE)


class _Example(dict):  # type: ignore[type-arg]
    """Defaults shown on /docs; as the runner's warm-up input it skips predict(): Cog does not warm
    up with a prediction (setup() is the start-up work), and a required file input has no example."""


WARMUP = object()


def is_cog_predictor(target: str, app_dir: str) -> bool:
    """Whether MODULE:CLASS lives in a file that imports cog (read, not imported)."""
    module = target.partition(":")[0]
    path = Path(app_dir) / (module.replace(".", "/") + ".py")
    try:
        return bool(_COG_IMPORT.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


class CogModel:
    platform = "cog"
    batchable = False

    def __init__(self, target: str, app_dir: str, name: str | None, version: str) -> None:
        self.target, self.app_dir = target, app_dir
        self.name = name or target.split(":", 1)[1].lower()
        self.version = version
        self.info: Any = None
        self.inputs: tuple[TensorSpec, ...] = ()
        self.outputs: tuple[TensorSpec, ...] = (TensorSpec("output", "BYTES", (-1,)),)
        self._instance: Any = None
        self._method = "predict"
        self.setup_started = self.setup_completed = ""
        self.setup_failed: str | None = None

    # -- start-up --------------------------------------------------------------------------
    def setup(self) -> None:
        self.setup_started = _now()
        try:
            self._setup()
        except SetupError as exc:
            self.setup_failed = exc.problem
            raise
        self.setup_completed = _now()

    def _setup(self) -> None:
        try:  # the real cog SDK, installed in the image (by name: lazily, never at the top level)
            _inspector = importlib.import_module("cog._inspector")
        except ImportError:
            raise SetupError(f"{self.target} is a Cog predictor, and the cog package is not installed",
                             "add cog to the project's requirements (dockyard serve adds it to the serving image)") from None
        module, _, cls_name = self.target.partition(":")
        root = str(Path(self.app_dir).resolve())
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            self.info = _inspector.create_predictor(module, cls_name)
        except (ImportError, ValueError) as exc:
            raise SetupError(f"Cog cannot read the predictor {self.target}: {exc}",
                             "fix the predictor so `cog predict` would accept it") from None
        cls = getattr(sys.modules[module], cls_name)
        self._method = "run" if "run" in vars(cls) or not callable(getattr(cls, "predict", None)) else "predict"
        unsupported = unsupported_features(cls, self._method)
        if unsupported:
            raise SetupError(f"{self.target} uses {unsupported[0]}, which dockyard does not serve",
                             "use a synchronous predict() and load weights in setup() from files in the image")
        self.inputs = tuple(_spec(f) for f in sorted(self.info.inputs.values(), key=lambda f: f.order))
        self._instance = cls()
        if callable(getattr(self._instance, "setup", None)):
            self._instance.setup()

    def example(self) -> dict[str, Any]:
        defaults = {f.name: f.type.json_encode(f.default) for f in self.info.inputs.values()
                    if f.default is not None and not hasattr(f.default, "default_factory")
                    and not isinstance(f.default, pathlib.Path)}
        return _Example(defaults)

    # -- requests ----------------------------------------------------------------------------
    def from_json(self, body: Any) -> Any:
        if isinstance(body, _Example):
            return WARMUP
        if not isinstance(body, dict):
            raise InputError(f"the input must be a JSON object of named inputs ({', '.join(self.info.inputs)})")
        _inspector = importlib.import_module("cog._inspector")
        known = {k: v for k, v in body.items() if k in self.info.inputs}  # Cog ignores unknown inputs
        try:
            return _inspector.check_input(self.info.inputs, known)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def from_tensors(self, tensors: dict[str, Any]) -> Any:
        values = {}
        for name, (array, _datatype) in tensors.items():
            field = self.info.inputs.get(name)
            if field is None:
                raise TensorError(f"unknown input {name!r}; this model takes {', '.join(self.info.inputs)}")
            value = _decode(array.reshape(-1).tolist())
            repeated = field.type.repetition.name.endswith("REPEATED")
            values[name] = value if repeated else value[0]
        try:
            return self.from_json(values)
        except InputError as exc:
            raise TensorError(str(exc)) from None

    def run(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if item is WARMUP:
                out.append(None)
                continue
            try:
                out.append(self._predict(item))
            except Exception as exc:  # one failure must not fail the others
                out.append(Failure(exc))
        return out

    def _predict(self, kwargs: dict[str, Any]) -> Any:
        files = []
        ready = {}
        for key, value in kwargs.items():
            ready[key], made = _materialise(value)
            files += made
        try:
            result = getattr(self._instance, self._method)(**ready)
            if inspect.isgenerator(result) or (hasattr(result, "__next__") and not isinstance(result, (str, bytes))):
                result = list(result)
            return self.encode(result)
        finally:
            for f in files:
                f.unlink(missing_ok=True)

    def encode(self, result: Any) -> Any:
        """Cog's JSON for an output: files as data: URLs, objects as dicts."""
        output = self.info.output
        if output.kind.name in ("ITERATOR", "CONCAT_ITERATOR"):
            return [_files_to_urls(output.type.json_encode(x)) for x in result]
        return _files_to_urls(output.json_encode(result))

    def to_json(self, item: Any, result: Any) -> Any:
        return {"output": result}

    def to_tensors(self, item: Any, result: Any) -> dict[str, Any]:
        import json

        import numpy as np

        value = result if isinstance(result, (list, tuple)) else [result]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return {"output": np.asarray(value)}
        return {"output": np.asarray([v if isinstance(v, str) else json.dumps(v) for v in value], dtype=object)}

    # -- schemas -------------------------------------------------------------------------------
    def input_schema(self) -> dict[str, Any]:
        return input_schema(self.info)


def unsupported_features(cls: type, method: str) -> list[str]:
    found = []
    fn = getattr(cls, method, None)
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        found.append(f"async def {method}() (Cog concurrency)")
    owner = next((c for c in cls.__mro__ if "setup" in vars(c)), None)
    setup = vars(owner)["setup"] if owner is not None and not owner.__module__.startswith("cog") else None
    if setup is not None and "weights" in inspect.signature(setup).parameters:
        found.append("setup(self, weights) (Cog weights URLs)")
    return found


def _spec(field: Any) -> TensorSpec:
    primitive, repeated = field.type.primitive.name, field.type.repetition.name.endswith("REPEATED")
    datatype = {"BOOL": "BOOL", "FLOAT": "FP64", "INTEGER": "INT64"}.get(primitive, "BYTES")
    return TensorSpec(field.name, datatype, (-1,) if repeated else (1,))


def _decode(values: list[Any]) -> list[Any]:
    return [v.decode() if isinstance(v, bytes) else v for v in values]


def _materialise(value: Any) -> tuple[Any, list[pathlib.Path]]:
    """Download URLPath inputs (data:/http URLs) to temporary files, as Cog's worker does."""
    if isinstance(value, list):
        pairs = [_materialise(v) for v in value]
        return [p[0] for p in pairs], [f for p in pairs for f in p[1]]
    convert = getattr(value, "convert", None)  # cog's URLPath: downloads on demand
    if callable(convert) and isinstance(value, pathlib.Path):
        path: pathlib.Path = convert()
        return path, [path]
    return value, []


def _files_to_urls(value: Any) -> Any:
    if isinstance(value, pathlib.Path):
        return data_url(value)
    if hasattr(value, "read") and hasattr(value, "seek"):  # a cog.File / file object output
        value.seek(0)
        data = value.read()
        return "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    if isinstance(value, list):
        return [_files_to_urls(v) for v in value]
    if isinstance(value, dict):
        return {k: _files_to_urls(v) for k, v in value.items()}
    return value


def data_url(path: pathlib.Path) -> str:
    mime = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e6) % 1_000_000:06d}+00:00"


# -- Cog's OpenAPI shape ---------------------------------------------------------------------
def input_schema(info: Any) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required = []
    for field in sorted(info.inputs.values(), key=lambda f: f.order):
        prop: dict[str, Any] = {"title": field.name.replace("_", " ").title(), "x-order": field.order}
        if field.choices is not None:
            prop["allOf"] = [{"$ref": f"#/components/schemas/{field.name}"}]
        else:
            prop.update(field.type.json_type())
        for key, attr in (("description", "description"), ("minimum", "ge"), ("maximum", "le"),
                          ("minLength", "min_length"), ("maxLength", "max_length"), ("pattern", "regex"),
                          ("deprecated", "deprecated")):
            value = getattr(field, attr)
            if value is not None:
                prop[key] = value
        default = field.default
        if default is not None and not hasattr(default, "default_factory"):
            prop["default"] = field.type.json_encode(default) if not isinstance(default, pathlib.Path) else str(default)
        elif field.type.repetition.name not in ("OPTIONAL", "OPTIONAL_REPEATED"):
            required.append(field.name)
        props[field.name] = prop
    schema: dict[str, Any] = {"type": "object", "title": "Input", "properties": props}
    if required:
        schema["required"] = required
    return schema


def openapi(model: CogModel) -> dict[str, Any]:
    """The schema Cog serves at /openapi.json (Input, Output, PredictionRequest/Response)."""
    info = model.info
    schemas: dict[str, Any] = {"Input": input_schema(info), "Output": info.output.json_type()}
    for field in info.inputs.values():
        if field.choices is not None:
            schemas[field.name] = {"title": field.name, "description": "An enumeration.",
                                   "enum": list(field.choices),
                                   "type": field.type.primitive.json_type()["type"]}
    schemas["Status"] = {"title": "Status", "description": "An enumeration.", "type": "string",
                         "enum": ["starting", "processing", "succeeded", "canceled", "failed"]}
    schemas["PredictionRequest"] = {"title": "PredictionRequest", "type": "object", "properties": {
        "id": {"title": "Id", "type": "string"}, "created_at": {"title": "Created At", "type": "string",
                                                               "format": "date-time"},
        "input": {"$ref": "#/components/schemas/Input"}}}
    schemas["PredictionResponse"] = {"title": "PredictionResponse", "type": "object", "properties": {
        "id": {"title": "Id", "type": "string"}, "input": {"$ref": "#/components/schemas/Input"},
        "output": {"$ref": "#/components/schemas/Output"}, "status": {"$ref": "#/components/schemas/Status"},
        "error": {"title": "Error", "type": "string"}, "logs": {"title": "Logs", "type": "string", "default": ""},
        "metrics": {"title": "Metrics", "type": "object"},
        "created_at": {"title": "Created At", "type": "string", "format": "date-time"},
        "started_at": {"title": "Started At", "type": "string", "format": "date-time"},
        "completed_at": {"title": "Completed At", "type": "string", "format": "date-time"}}}
    schemas["HTTPValidationError"] = {"title": "HTTPValidationError", "type": "object", "properties": {
        "detail": {"title": "Detail", "type": "array", "items": {"type": "object"}}}}

    def predict_op(summary: str, op_id: str) -> dict[str, Any]:
        return {"summary": summary, "operationId": op_id, "requestBody": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/PredictionRequest"}}}},
            "responses": {"200": {"description": "Successful Response", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PredictionResponse"}}}},
                "422": {"description": "Validation Error", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}}}

    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {
            "/": {"get": {"summary": "Root", "operationId": "root__get",
                          "responses": {"200": {"description": "Successful Response"}}}},
            "/health-check": {"get": {"summary": "Healthcheck", "operationId": "healthcheck_health_check_get",
                                      "responses": {"200": {"description": "Successful Response"}}}},
            "/predictions": {"post": predict_op("Predict", "predict_predictions_post")},
            "/predictions/{prediction_id}": {"put": predict_op("Predict Idempotent",
                                                                "predict_idempotent_predictions__prediction_id__put")},
        },
        "components": {"schemas": schemas},
    }

