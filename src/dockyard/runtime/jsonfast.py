"""JSON in and out, with one policy whether or not the image happens to have orjson.

orjson is only a fast path; the stdlib's semantics are the policy:

- a body must be UTF-8 JSON nested at most ``MAX_DEPTH`` deep (else ``JsonError``);
- NaN, Infinity and numbers too large for a double (``1e400``) are not JSON: ``JsonError``
  naming where they are, e.g. ``x[3]``;
- integers of any size stay integers (orjson alone would turn big ones into floats);
- in output, a NaN or infinite number becomes ``null`` (orjson's behaviour, and what
  JavaScript's JSON.stringify does), never the invalid token ``NaN``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

MAX_DEPTH = 64  # arrays/objects inside each other; deeper bodies are refused before parsing


class JsonError(ValueError):
    """The body is not JSON we accept; the message says where and what to send instead."""


class _NonFinite(ValueError):
    pass


def _reject_constant(token: str) -> Any:
    raise _NonFinite(token)


class _Marker(float):
    """Stands in for NaN/Infinity while locating them for the error message."""

    token = "NaN"


def _mark_constant(token: str) -> _Marker:
    marker = _Marker("nan")
    marker.token = token
    return marker


_STRICT = json.JSONDecoder(parse_constant=_reject_constant)
_LOCATE = json.JSONDecoder(parse_constant=_mark_constant)
# Numbers that orjson reads differently from the stdlib (big ints -> float, 1e400 -> error):
# bodies holding one take the stdlib path. Floats from repr() have at most 17 digits. Checked
# with translate + find (about 2 us for a 64-float row; a regex for 19 digits takes 13 us).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19
_BIG_EXPONENT = re.compile(rb"[eE][+]?0*[1-9]\d{2}")


def _special_number(raw: bytes) -> bool:
    if _LONG_DIGITS in raw.translate(_DIGITS_TO_ZERO):
        return True
    return (b"e" in raw or b"E" in raw) and _BIG_EXPONENT.search(raw) is not None


# A string, or an unterminated one up to the end: every match attempt from a quote succeeds, so
# hostile input cannot make this quadratic. The loop's two branches start with different bytes,
# so it never backtracks (no possessive `*+`: images run Python 3.10, whose re lacks it).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.S)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # everything but brackets
_INNERMOST = re.compile(rb"\[\]|\{\}")


def check_depth(raw: bytes) -> None:
    """Refuse bodies nested deeper than MAX_DEPTH, at C speed (no recursion, no Python loop per byte)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return  # the common case: a few rows of numbers
    skeleton = _STRING.sub(b"", raw).translate(None, _BRACKETS)
    for _ in range(MAX_DEPTH):  # peel one level per pass
        skeleton, n = _INNERMOST.subn(b"", skeleton)
        if not skeleton or not n:
            return  # all peeled (or unbalanced: the parser will say so)
    raise JsonError(f"the JSON is nested more than {MAX_DEPTH} levels deep; send flatter data")


def _path(value: Any, where: str) -> tuple[str, str] | None:
    """(path, token) of the first NaN/Infinity in a parsed value."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return where or "the top level", getattr(value, "token", "a number beyond the range of a double")
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _path(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _path(item, f"{where}[{i}]")
            if found:
                return found
    return None


def _std_loads(text: str) -> Any:
    try:
        value = _STRICT.decode(text)
    except _NonFinite:
        value = _LOCATE.decode(text)
    found = _path(value, "")
    if found:
        where, token = found
        raise JsonError(f"{token} at {where} is not a finite number; send finite numbers "
                        "(JSON has no NaN or Infinity)")
    return value


def _describe(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno} column {exc.colno})"
    return str(exc)


def loads(raw: bytes) -> Any:
    """Parse a request body; JsonError (a ValueError) says what is wrong, and where."""
    check_depth(raw)
    if _fast_loads is not None and not _special_number(raw):
        try:
            return _fast_loads(raw)
        except ValueError:
            pass  # NaN, a lone surrogate, or simply invalid: the stdlib decides and explains
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonError(f"the body is not UTF-8 (byte {exc.start}); send UTF-8 JSON") from None
    try:
        return _std_loads(text)
    except RecursionError:  # cannot happen below MAX_DEPTH; kept as a last guard
        raise JsonError(f"the JSON is nested more than {MAX_DEPTH} levels deep; send flatter data") from None
    except JsonError:
        raise
    except ValueError as exc:
        raise JsonError(_describe(exc)) from None


def _default(value: Any) -> Any:
    # numpy arrays and scalars (the common outputs) without importing numpy here.
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    raise TypeError(f"a {type(value).__name__} in the output is not JSON serialisable; "
                    "return numbers, strings, lists, dicts or numpy arrays")


def _finite(value: Any) -> Any:
    """The value with every NaN/Infinity replaced by None (the slow path of a rare case)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (str, int, type(None))):
        return value
    return _finite(_default(value))


def _std_dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), default=_default, allow_nan=False).encode()
    except ValueError:  # a NaN or infinity somewhere: null, as orjson writes it
        return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False).encode()


dumps: Callable[[Any], bytes]
_fast_loads: Callable[[bytes], Any] | None

try:
    import orjson as _orjson  # type: ignore[import-not-found,unused-ignore]  # optional

    _OPTS = _orjson.OPT_SERIALIZE_NUMPY

    def _or_dumps(value: Any) -> bytes:
        try:
            out: bytes = _orjson.dumps(value, default=_default, option=_OPTS)
            return out
        except TypeError:  # e.g. non-contiguous arrays, ints over 64 bits, int dict keys
            return _std_dumps(value)

    _fast_loads = _orjson.loads
    dumps = _or_dumps
    BACKEND = "orjson"
except ImportError:  # pragma: no cover - depends on the image
    _fast_loads = None
    dumps = _std_dumps
    BACKEND = "json"
