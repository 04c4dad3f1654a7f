"""KServe V2 / Open Inference Protocol tensors: JSON and the binary tensor extension.

numpy is imported lazily by callers that need it; this module imports it at call time so that
importing the runtime stays cheap for predictors that never touch tensors.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

# V2 datatype -> numpy dtype string (little-endian, as the binary extension requires).
DTYPES: dict[str, str] = {
    "BOOL": "|b1", "UINT8": "|u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "|i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "BYTES": "O",
}
FLOATS = frozenset({"FP16", "FP32", "FP64"})
MAX_DIMS = 32  # numpy 1.x's limit (2.x allows 64); more is no tensor anyone sends on purpose
INTS = frozenset({"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"})


class TensorError(ValueError):
    """Bad tensor input; the message names the tensor and says what to send instead."""


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: V2 datatype and shape (-1 = any length)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def datatype_of(array: Any) -> str:
    """V2 datatype for a numpy array."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind == "f":
        return {2: "FP16", 4: "FP32"}.get(size, "FP64")
    if kind == "i":
        return f"INT{size * 8}"
    if kind == "u":
        return f"UINT{size * 8}"
    return "BYTES"


def accepts(spec_datatype: str, sent: str) -> bool:
    """Whether a tensor sent as ``sent`` may feed an input declared ``spec_datatype``.

    Floats take any float or integer (lossless enough for inference); integers take only
    integers; BYTES and BOOL only themselves.
    """
    if spec_datatype == sent:
        return True
    if spec_datatype in FLOATS:
        return sent in FLOATS or sent in INTS
    if spec_datatype in INTS:
        return sent in INTS
    return False


def _count(shape: list[int]) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item))
    return out


def decode_bytes_binary(raw: memoryview | bytes, count: int, name: str) -> list[bytes]:
    """BYTES elements in the binary extension: each is a 4-byte little-endian length + data."""
    out, pos, end = [], 0, len(raw)
    for i in range(count):
        if pos + 4 > end:
            raise TensorError(f"input {name!r}: binary BYTES data ends before element {i} of {count}")
        (length,) = struct.unpack_from("<I", raw, pos)
        if pos + 4 + length > end:
            raise TensorError(f"input {name!r}: BYTES element {i} says {length} bytes, "
                              f"{end - pos - 4} are left in its binary_data_size")
        out.append(bytes(raw[pos + 4:pos + 4 + length]))
        pos += 4 + length
    if pos != end:
        raise TensorError(f"input {name!r}: {end - pos} bytes follow the last of its {count} BYTES elements; "
                          "make binary_data_size match the data")
    return out


def decode_input(tensor: Any, binary: memoryview | None, offset: int) -> tuple[str, Any, int]:
    """One entry of a V2 ``inputs`` list -> (name, numpy array, bytes of binary data used)."""
    import numpy as np

    if not isinstance(tensor, dict):
        raise TensorError("each entry of 'inputs' must be an object with name, shape, datatype, data")
    name = tensor.get("name")
    if not isinstance(name, str):
        raise TensorError("an input has no 'name'; give every tensor in 'inputs' a name")
    shape, datatype = tensor.get("shape"), tensor.get("datatype")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise TensorError(f"input {name!r}: 'shape' must be a list of non-negative integers, got {shape!r}")
    if len(shape) > MAX_DIMS:
        raise TensorError(f"input {name!r}: 'shape' has {len(shape)} dimensions; at most {MAX_DIMS} are supported")
    if datatype not in DTYPES:
        raise TensorError(f"input {name!r}: unknown datatype {datatype!r}; use one of {', '.join(DTYPES)}")
    count = _count(shape)
    params = tensor.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise TensorError(f"input {name!r}: binary_data_size {size!r} is not a byte count")
        if binary is None or offset + size > len(binary):
            raise TensorError(f"input {name!r}: binary_data_size {size!r} is more than the binary data sent")
        raw = binary[offset:offset + size]
        if datatype == "BYTES":
            values = decode_bytes_binary(raw, count, name)
            array = np.empty(count, dtype=object)
            array[:] = values
        else:
            itemsize = np.dtype(DTYPES[datatype]).itemsize
            if size != count * itemsize:
                raise TensorError(f"input {name!r}: shape {shape} of {datatype} needs {count * itemsize} "
                                  f"bytes, binary_data_size is {size}")
            if datatype == "BOOL" and bytes(raw).strip(b"\x00\x01"):
                raise TensorError(f"input {name!r}: binary BOOL data must be bytes 0 or 1")
            array = np.frombuffer(raw, dtype=DTYPES[datatype])
        return name, array.reshape(shape), size
    if "data" not in tensor:
        raise TensorError(f"input {name!r}: no 'data' and no 'binary_data_size' parameter")
    flat = _flatten(tensor["data"])
    if len(flat) != count:
        raise TensorError(f"input {name!r}: shape {shape} holds {count} values, 'data' has {len(flat)}")
    return name, _json_array(flat, datatype, name).reshape(shape), 0


def _json_array(flat: list[Any], datatype: str, name: str) -> Any:
    import numpy as np

    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in flat):
            raise TensorError(f"input {name!r}: BYTES data must be strings")
        array = np.empty(len(flat), dtype=object)
        array[:] = [v.encode() for v in flat]
        return array
    if datatype == "BOOL":
        if not all(isinstance(v, bool) for v in flat):
            raise TensorError(f"input {name!r}: BOOL data must be true/false")
        return np.asarray(flat, dtype=bool)
    allowed = (int, float) if datatype in FLOATS else (int,)
    if not all(type(v) in allowed for v in flat):
        kind = "numbers" if datatype in FLOATS else "integers"
        raise TensorError(f"input {name!r}: {datatype} data must be {kind}")
    try:
        return np.asarray(flat, dtype=DTYPES[datatype])
    except OverflowError:
        raise TensorError(f"input {name!r}: a value does not fit in {datatype}") from None


def _bytes_item(name: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    kind: Any = type(value)
    if kind.__str__ is object.__str__ and kind.__repr__ is object.__repr__:
        # str() would send the default repr, "<Foo object at 0x7f...>": a heap address.
        raise TypeError(f"output {name!r} holds a {kind.__name__}, which has no text form; "
                        "return str, bytes or numbers, or give the class a __str__")
    return str(value).encode()


def encode_output(name: str, array: Any, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """A numpy array -> (V2 output JSON, binary payload or None)."""
    import numpy as np

    array = np.asarray(array)
    datatype = datatype_of(array)
    out: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if datatype == "BYTES":
        items = [_bytes_item(name, v) for v in array.reshape(-1).tolist()]
        if binary:
            raw = b"".join(struct.pack("<I", len(v)) + v for v in items)
            out["parameters"] = {"binary_data_size": len(raw)}
            return out, raw
        out["data"] = [v.decode("utf-8", "replace") for v in items]
        return out, None
    if binary:
        raw = np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()
        out["parameters"] = {"binary_data_size": len(raw)}
        return out, raw
    out["data"] = array.reshape(-1).tolist()
    return out, None
