"""What the runner runs: a Model turns request inputs into items and items into results.

Two kinds: ``PythonModel`` wraps a user predictor class (``setup()`` + ``predict(**inputs)``,
type hints = schema), ``ArrayModel`` wraps a saved model file (see loaders.py) whose inputs are
named tensors with a leading batch dimension. Both validate every input and raise ``InputError``
naming the field, so routes can answer 4xx and keep serving.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .tensors import TensorError, TensorSpec, accepts, datatype_of


class InputError(ValueError):
    """A request input is missing, extra, or of the wrong type/shape (message names it)."""


class SetupError(Exception):
    """The model could not be loaded, set up or warmed up (problem + fix)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


class Failure:
    """One item's prediction failed; the others in its batch still answer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def check_keys(body: Any, names: list[str], required: set[str]) -> None:
    if not isinstance(body, dict):
        raise InputError(f"the request body must be a JSON object of named inputs ({', '.join(names)}), "
                         f"got a JSON {type(body).__name__}")
    extra = [k for k in body if k not in names]
    if extra:
        raise InputError(f"unknown input {extra[0]!r}; this model takes {', '.join(map(repr, names))}")
    missing = [n for n in names if n in required and n not in body]
    if missing:
        raise InputError(f"missing input {missing[0]!r}; this model takes {', '.join(map(repr, names))}")


def output_specs(result: dict[str, Any]) -> tuple[TensorSpec, ...]:
    """Output signature read off a warm-up result (first dim is the batch)."""
    return tuple(TensorSpec(k, datatype_of(v), (-1, *v.shape[1:])) for k, v in result.items())


# ---------------------------------------------------------------------------------------------
# Zero-code models: named arrays in, named arrays out, batch dimension first.


@dataclass(frozen=True)
class Loaded:
    """What a loader returns: framework name, input signature and a batch predict function."""

    platform: str
    inputs: tuple[TensorSpec, ...]
    predict: Callable[[dict[str, Any]], dict[str, Any]]


class ArrayItem:
    __slots__ = ("arrays", "rows", "single")

    def __init__(self, arrays: dict[str, Any], rows: int, single: bool) -> None:
        self.arrays, self.rows, self.single = arrays, rows, single


class ArrayModel:
    batchable = True

    def __init__(self, name: str, version: str, load: Callable[[], Loaded]) -> None:
        self.name, self.version, self._load = name, version, load
        self.platform = "unknown"
        self.inputs: tuple[TensorSpec, ...] = ()
        self.outputs: tuple[TensorSpec, ...] = ()
        self._predict: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def setup(self) -> None:
        loaded = self._load()
        self.platform, self.inputs, self._predict = loaded.platform, loaded.inputs, loaded.predict

    def example(self) -> dict[str, Any]:
        return {s.name: _zeros(s.shape[1:], s.datatype) for s in self.inputs}

    def from_json(self, body: Any) -> ArrayItem:
        names = [s.name for s in self.inputs]
        check_keys(body, names, set(names))
        arrays, rows, single = {}, -1, False
        for spec in self.inputs:
            array = _json_to_array(body[spec.name], spec)
            sent_shape, feat = list(array.shape), spec.shape[1:]
            if array.ndim == len(feat):  # one row
                array, this_single = array.reshape((1, *array.shape)), True
            else:
                this_single = False
            if array.ndim != len(feat) + 1 or not _dims_match(array.shape[1:], feat) or array.shape[0] == 0:
                raise InputError(f"input {spec.name!r}: expected one row of shape {_shape(feat)} or rows "
                                 f"of shape [n, {_shape(feat)[1:-1]}], got shape {sent_shape}")
            if rows not in (-1, array.shape[0]):
                raise InputError(f"input {spec.name!r} has {array.shape[0]} rows, the other inputs {rows}")
            arrays[spec.name], rows, single = array, array.shape[0], this_single
        return ArrayItem(arrays, rows, single)

    def from_tensors(self, tensors: dict[str, Any]) -> ArrayItem:
        names = [s.name for s in self.inputs]
        check_keys(tensors, names, set(names))
        arrays, rows = {}, -1
        for spec in self.inputs:
            array, sent = tensors[spec.name]
            if not accepts(spec.datatype, sent):
                raise TensorError(f"input {spec.name!r}: datatype {sent} does not fit {spec.datatype}; "
                                  f"send {spec.datatype}")
            if array.ndim != len(spec.shape) or not _dims_match(array.shape, spec.shape) or array.shape[0] == 0:
                raise TensorError(f"input {spec.name!r}: shape {list(array.shape)} does not match "
                                  f"{list(spec.shape)} (-1 = any size, first dim = rows)")
            if rows not in (-1, array.shape[0]):
                raise TensorError(f"input {spec.name!r} has {array.shape[0]} rows, the other inputs {rows}")
            arrays[spec.name] = array.astype(_np_dtype(spec.datatype), copy=False)
            rows = array.shape[0]
        return ArrayItem(arrays, rows, False)

    def run(self, items: list[ArrayItem]) -> list[Any]:
        import numpy as np

        assert self._predict is not None, "setup() runs before run()"
        if len(items) == 1:
            return [self._predict(items[0].arrays)]
        joined = {s.name: np.concatenate([it.arrays[s.name] for it in items]) for s in self.inputs}
        out = self._predict(joined)
        results, start = [], 0
        for item in items:
            results.append({k: v[start:start + item.rows] for k, v in out.items()})
            start += item.rows
        return results

    def to_json(self, item: ArrayItem, result: dict[str, Any]) -> Any:
        values = {k: (v[0] if item.single else v) for k, v in result.items()}
        if len(values) == 1:
            return {"output": next(iter(values.values()))}
        return {"outputs": values}

    def to_tensors(self, item: ArrayItem, result: dict[str, Any]) -> dict[str, Any]:
        return result

    def input_schema(self) -> dict[str, Any]:
        props = {s.name: {"description": f"one row of shape {_shape(s.shape[1:])} or a list of rows "
                                         f"({s.datatype})", **_array_schema(s.shape[1:], s.datatype)}
                 for s in self.inputs}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _np_dtype(datatype: str) -> Any:
    from .tensors import DTYPES

    return DTYPES[datatype]


def _shape(dims: tuple[int, ...]) -> str:
    return "[" + ", ".join("n" if d < 0 else str(d) for d in dims) + "]"


def _dims_match(got: tuple[int, ...], want: tuple[int, ...]) -> bool:
    return len(got) == len(want) and all(w < 0 or g == w for g, w in zip(got, want))


def _zeros(dims: tuple[int, ...], datatype: str) -> Any:
    value: Any = "" if datatype == "BYTES" else False if datatype == "BOOL" else (
        0.0 if datatype.startswith("FP") else 0)
    for dim in reversed(dims):
        value = [value] * (dim if dim > 0 else 1)
    return value


def _scalar_schema(datatype: str) -> dict[str, Any]:
    if datatype == "BYTES":
        return {"type": "string"}
    if datatype == "BOOL":
        return {"type": "boolean"}
    return {"type": "number" if datatype.startswith("FP") else "integer"}


def _array_schema(dims: tuple[int, ...], datatype: str) -> dict[str, Any]:
    schema = _scalar_schema(datatype)
    for dim in reversed(dims):
        schema = {"type": "array", "items": schema, **({"minItems": dim, "maxItems": dim} if dim > 0 else {})}
    return schema


def _as_array(value: Any, name: str) -> Any:
    import numpy as np

    try:
        return np.asarray(value)
    except ValueError as exc:  # ragged rows, or more dimensions than numpy allows
        what = "too many dimensions" if "maximum number of dimension" in str(exc) else "rows must all have the same length"
        raise InputError(f"input {name!r}: {what}") from None


def _json_to_array(value: Any, spec: TensorSpec) -> Any:
    # No dtype first: strings, bools and ragged lists must be errors, not silent casts.
    array = _as_array(value, spec.name)
    kind = array.dtype.kind
    numeric = "iu" if spec.datatype.startswith(("INT", "UINT")) else "iuf"
    if spec.datatype == "BYTES":
        ok = kind == "U"
    elif spec.datatype == "BOOL":
        ok = kind == "b"
    else:
        ok = kind in numeric
    if not ok:
        what = "ragged or mixed values" if kind == "O" else f"{array.dtype.name} values"
        raise InputError(f"input {spec.name!r}: expected {_scalar_schema(spec.datatype)['type']}s "
                         f"({spec.datatype}), got {what}")
    return array.astype(_np_dtype(spec.datatype), copy=False)


# ---------------------------------------------------------------------------------------------
# User predictors: a class with setup() and predict(**inputs); type hints are the schema.

_SCALARS: dict[Any, tuple[str, str]] = {int: ("INT64", "integer"), float: ("FP64", "number"),
                                        str: ("BYTES", "string"), bool: ("BOOL", "boolean")}


@dataclass(frozen=True)
class Field:
    """One predict() parameter: scalar type, list depth, or 'array' (numpy) / 'any'."""

    name: str
    scalar: Any  # int, float, str, bool, "array" or "any"
    depth: int
    required: bool
    optional: bool
    default: Any = None
    shape: tuple[int, ...] | None = None  # from the predictor's `input_shapes`; -1 = any length

    @property
    def spec(self) -> TensorSpec:
        if self.scalar in ("array", "any"):
            return TensorSpec(self.name, "FP64" if self.scalar == "array" else "BYTES", self.shape or (-1,))
        datatype = _SCALARS[self.scalar][0]
        return TensorSpec(self.name, datatype, (1,) if self.depth == 0 else (self.shape or (-1,) * self.depth))

    def check_shape(self, shape: tuple[int, ...], error: type[Exception]) -> None:
        """Reject a value whose shape differs from the declared one (a 4xx naming the input)."""
        if self.shape is None:
            return
        if len(shape) != len(self.shape) or any(w not in (-1, g) for w, g in zip(self.shape, shape)):
            raise error(f"input {self.name!r}: expected shape {list(self.shape)}, got {list(shape)}")

    def describe(self) -> str:
        if self.scalar in ("array", "any"):
            return "a numeric array" if self.scalar == "array" else "any JSON value"
        text = str(self.scalar.__name__)
        for _ in range(self.depth):
            text = f"list[{text}]"
        return text

    def schema(self) -> dict[str, Any]:
        if self.scalar == "any":
            return {}
        if self.scalar == "array":
            return {"type": "array", "items": {}}
        schema: dict[str, Any] = {"type": _SCALARS[self.scalar][1]}
        for _ in range(self.depth):
            schema = {"type": "array", "items": schema}
        return schema


def field_from_hint(name: str, hint: Any, param: inspect.Parameter) -> Field:
    has_default = param.default is not inspect.Parameter.empty
    default = param.default if has_default else None
    optional = False
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        optional, hint = True, rest[0] if len(rest) == 1 else Any
    depth = 0
    while typing.get_origin(hint) in (list, typing.List, tuple) and typing.get_args(hint):
        hint, depth = typing.get_args(hint)[0], depth + 1
    if hint in (list, typing.List):
        hint, depth = Any, depth
    if hint in _SCALARS:
        scalar: Any = hint
    elif getattr(hint, "__name__", "") == "ndarray" or "NDArray" in repr(hint) or "ndarray" in repr(hint):
        scalar = "array"
    else:
        scalar = "any"
    return Field(name, scalar, depth, required=not has_default, optional=optional, default=default)


def _check_value(value: Any, fld: Field, depth: int, where: str) -> None:
    if depth:
        if not isinstance(value, list):
            raise InputError(f"input {where}: expected a list ({fld.describe()}), got {type(value).__name__}")
        if depth == 1 and fld.scalar is float:  # the hot path: a row of numbers
            for i, v in enumerate(value):
                if type(v) is not float and type(v) is not int:
                    raise InputError(f"input {where}[{i}]: expected a number, got {type(v).__name__} {v!r}")
            return
        for i, v in enumerate(value):
            _check_value(v, fld, depth - 1, f"{where}[{i}]")
        return
    scalar = fld.scalar
    ok = (type(value) in (int, float)) if scalar is float else (type(value) is scalar)
    if not ok:
        raise InputError(f"input {where}: expected {scalar.__name__}, got {type(value).__name__} {value!r}")


def convert_json(fld: Field, value: Any) -> Any:
    if value is None:
        if fld.optional:
            return None
        raise InputError(f"input {fld.name!r} is null; send {fld.describe()}")
    if fld.scalar == "any":
        return value
    if fld.scalar == "array":
        array = _as_array(value, fld.name)
        if array.dtype.kind not in "iuf":
            raise InputError(f"input {fld.name!r}: expected a numeric array, got {array.dtype.name} values")
        return array
    _check_value(value, fld, fld.depth, repr(fld.name))
    if fld.shape is not None:
        fld.check_shape(_nested_shape(value, fld.depth), InputError)
    return value


def _nested_shape(value: Any, depth: int) -> tuple[int, ...]:
    """Shape of a nested list; ragged rows give a shape that no declaration matches."""
    shape: list[int] = []
    level = [value]
    for _ in range(depth):
        lengths = {len(v) for v in level}
        if len(lengths) != 1:
            return (-2,)
        shape.append(lengths.pop())
        level = [x for v in level for x in v]
    return tuple(shape)


def convert_tensor(fld: Field, array: Any, sent: str) -> Any:
    spec = fld.spec
    if fld.scalar not in ("any",) and not accepts(spec.datatype, sent):
        raise TensorError(f"input {fld.name!r}: datatype {sent} does not fit {fld.describe()}; send {spec.datatype}")
    if fld.scalar == "array":
        return array
    if fld.scalar != "any" and fld.depth == 0:
        if array.size != 1:
            raise TensorError(f"input {fld.name!r}: expected one value (shape [1]), got shape {list(array.shape)}")
        value = array.reshape(-1).tolist()[0]  # tolist: python objects for numeric and BYTES alike
        if isinstance(value, bytes):
            return _utf8(value, fld.name)
        return float(value) if fld.scalar is float else value
    if array.ndim == fld.depth + 1 and array.shape[0] == 1:  # a leading batch dim of 1 is fine
        array = array.reshape(array.shape[1:])  # still an array, for BYTES (object) data too
    if fld.scalar != "any" and array.ndim != fld.depth:
        raise TensorError(f"input {fld.name!r}: expected {fld.depth} dimension(s) ({fld.describe()}), "
                          f"got shape {list(array.shape)}")
    fld.check_shape(tuple(array.shape), TensorError)
    value = array.tolist()
    return _decode_bytes(value, fld.name) if sent == "BYTES" else value


def _utf8(value: bytes, name: str) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise TensorError(f"input {name!r}: BYTES data is not UTF-8 text (byte {exc.start}); send UTF-8, "
                          "or declare the input as np.ndarray for raw numbers") from None


def _decode_bytes(value: Any, name: str) -> Any:
    if isinstance(value, list):
        return [_decode_bytes(v, name) for v in value]
    return _utf8(value, name) if isinstance(value, bytes) else value


def _with_shapes(fields: list[Field], shapes: Any, target: str) -> list[Field]:
    """Apply a predictor's optional ``input_shapes = {"name": (64,)}`` (-1 = any length)."""
    if shapes is None:
        return fields
    names = {f.name for f in fields}
    if not isinstance(shapes, dict) or not set(shapes) <= names:
        raise SetupError(f"{target}.input_shapes must map predict() argument names to shapes",
                         f"e.g. input_shapes = {{{next(iter(names), 'x')!r}: (64,)}}")
    out = []
    for f in fields:
        shape = shapes.get(f.name)
        if shape is not None:
            shape = tuple(int(d) for d in shape)
            if f.scalar not in ("array", "any") and len(shape) != f.depth:
                raise SetupError(f"{target}.input_shapes[{f.name!r}] has {len(shape)} dimension(s) but the "
                                 f"type hint {f.describe()} has {f.depth}", "make them agree")
            f = dataclasses.replace(f, shape=shape)
        out.append(f)
    return out


class PythonModel:
    platform = "python"

    def __init__(self, target: str, app_dir: str, name: str | None, version: str) -> None:
        self.target, self.app_dir = target, app_dir
        self.name = name or target.split(":", 1)[1].lower()
        self.version = version
        self.batchable = False
        self.fields: list[Field] = []
        self.outputs: tuple[TensorSpec, ...] = ()
        self._instance: Any = None
        self._example: dict[str, Any] | None = None

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return tuple(f.spec for f in self.fields)

    def setup(self) -> None:
        cls = _import_class(self.target, self.app_dir)
        predict = getattr(cls, "predict", None)
        if not callable(predict):
            raise SetupError(f"{self.target} has no predict() method",
                             "define `def predict(self, **inputs)` on the class")
        self.fields = _with_shapes(_fields_of(predict), getattr(cls, "input_shapes", None), self.target)
        self.batchable = getattr(cls, "batch", False) is True
        example = getattr(cls, "example", None)
        self._example = dict(example) if isinstance(example, dict) else None
        self._instance = cls()
        if callable(getattr(self._instance, "setup", None)):
            self._instance.setup()

    def example(self) -> dict[str, Any]:
        if self._example is not None:
            return self._example
        samples: dict[Any, Any] = {int: 0, float: 0.0, str: "", bool: False, "array": [0.0], "any": 0}
        out = {}
        for f in self.fields:
            if not f.required:
                continue
            value = samples[f.scalar]
            for _ in range(f.depth):
                value = [value]
            out[f.name] = value
        return out

    def from_json(self, body: Any) -> dict[str, Any]:
        names = [f.name for f in self.fields]
        check_keys(body, names, {f.name for f in self.fields if f.required})
        return {f.name: convert_json(f, body[f.name]) for f in self.fields if f.name in body}

    def from_tensors(self, tensors: dict[str, Any]) -> dict[str, Any]:
        names = [f.name for f in self.fields]
        check_keys(tensors, names, {f.name for f in self.fields if f.required})
        return {f.name: convert_tensor(f, *tensors[f.name]) for f in self.fields if f.name in tensors}

    def run(self, items: list[dict[str, Any]]) -> list[Any]:
        predict = self._instance.predict
        if not self.batchable:
            results: list[Any] = []
            for item in items:
                try:
                    results.append(predict(**item))
                except BaseException as exc:  # one bad item (even sys.exit) must not fail its neighbours
                    results.append(Failure(exc))
            return results
        columns = {f.name: [it.get(f.name, f.default) for it in items] for f in self.fields}
        out = predict(**columns)
        if not isinstance(out, (list, tuple)) or len(out) != len(items):
            raise TypeError(f"predict() with batch = True must return a list with one output per input "
                            f"({len(items)}), got {type(out).__name__}")
        return list(out)

    def to_json(self, item: Any, result: Any) -> Any:
        return {"output": result}

    def to_tensors(self, item: Any, result: Any) -> dict[str, Any]:
        import numpy as np

        values = result if isinstance(result, dict) else {"output": result}
        out = {}
        for key, value in values.items():
            array = np.asarray(value)
            out[key] = array.reshape(1) if array.ndim == 0 else array
        return out

    def input_schema(self) -> dict[str, Any]:
        props = {f.name: {**f.schema(), "description": f.describe()} for f in self.fields}
        return {"type": "object", "properties": props, "additionalProperties": False,
                "required": [f.name for f in self.fields if f.required]}


class TargetMissing(Exception):
    """The MODULE of a MODULE:NAME target is not importable from the app dir (as opposed to a
    dependency the module itself imports, which raises ModuleNotFoundError)."""

    def __init__(self, module_name: str, root: str) -> None:
        super().__init__(f"cannot import {module_name!r} from {root}")
        self.root = root


def import_target(target: str, app_dir: str) -> tuple[Any, str]:
    """Import MODULE of a MODULE:NAME target with app_dir first on sys.path: (module, NAME).
    The one import rule for --predictor (here) and --app (webapp)."""
    module_name, _, attr = target.partition(":")
    root = str(Path(app_dir).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(module_name), attr
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TargetMissing(module_name, root) from None
        raise


def _import_class(target: str, app_dir: str) -> type:
    try:
        module, class_name = import_target(target, app_dir)
    except TargetMissing as exc:
        raise SetupError(str(exc), f"check --app-dir (now {app_dir!r}) and the module name in --predictor") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise SetupError(f"module {module.__name__!r} has no class {class_name!r}",
                         f"check the CLASS part of --predictor {target}")
    return cls


def _fields_of(predict: Callable[..., Any]) -> list[Field]:
    try:
        hints = typing.get_type_hints(predict)
    except Exception:  # unresolvable forward refs: fall back to untyped inputs
        hints = {}
    fields = []
    for name, param in inspect.signature(predict).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        fields.append(field_from_hint(name, hints.get(name, Any), param))
    return fields
