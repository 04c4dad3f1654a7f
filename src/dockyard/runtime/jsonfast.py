"""JSON in and out: orjson when the image happens to have it, else the stdlib."""

from __future__ import annotations

import json
from typing import Any, Callable


def _default(value: Any) -> Any:
    # numpy arrays and scalars (the common outputs) without importing numpy here.
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _std_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_default).encode()


loads: Callable[[bytes], Any]
dumps: Callable[[Any], bytes]

try:
    import orjson as _orjson  # type: ignore[import-not-found,unused-ignore]  # optional

    _OPTS = _orjson.OPT_SERIALIZE_NUMPY

    def _or_dumps(value: Any) -> bytes:
        try:
            out: bytes = _orjson.dumps(value, default=_default, option=_OPTS)
            return out
        except TypeError:  # e.g. non-contiguous arrays, ints over 64 bits
            return _std_dumps(value)

    loads = _orjson.loads
    dumps = _or_dumps
    DecodeError: type[Exception] = _orjson.JSONDecodeError
except ImportError:  # pragma: no cover - depends on the image
    loads = json.loads
    dumps = _std_dumps
    DecodeError = ValueError
