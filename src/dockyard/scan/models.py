"""Model-file scanner: pickle / joblib / PyTorch files walked opcode by opcode, never loaded.

A small stack machine follows the opcodes far enough to resolve every import (GLOBAL,
STACK_GLOBAL from memoised strings, INST) and to step over the raw numpy bytes joblib writes
between pickle opcodes. Imports of dangerous callables make a file ``malicious``; a file the
walker cannot follow to its STOP opcode is ``unscannable`` (never ``clean``). Safetensors and
ONNX carry no code and pass after a structural check.
"""

from __future__ import annotations

import ast
import bz2
import gzip
import io
import json
import lzma
import pickletools
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dockyard.runtime import contract
from dockyard.scan.findings import Finding

MAX_DECOMPRESSED = 8 << 30  # refuse zip bombs in compressed joblib files
#: every suffix the scanner looks at: the image contract's one list of model formats
MODEL_SUFFIXES: tuple[str, ...] = contract.MODEL_SUFFIXES
_ALLOWLIST_FILE = Path(__file__).with_name("pickle_allowlist.json")


def _load_allowlist() -> dict[tuple[str, str], str]:
    doc = json.loads(_ALLOWLIST_FILE.read_text())
    return {(m, n): framework for framework, pairs in doc["frameworks"].items() for m, n in pairs}


#: (module, name) -> the framework section of pickle_allowlist.json that allows it
ALLOWED_IMPORTS: dict[tuple[str, str], str] = _load_allowlist()

# Known code-execution gadgets. Anything off the allow-list is refused already; this list only
# decides how loudly (critical "dangerous" instead of high "not allow-listed").
_DANGEROUS_ROOTS = {
    "os", "posix", "nt", "subprocess", "runpy", "socket", "shutil", "importlib", "pty", "sys",
    "webbrowser", "requests", "urllib", "urllib2", "urllib3", "http", "httplib", "ftplib",
    "telnetlib", "smtplib", "ctypes", "multiprocessing", "code", "codeop", "pdb", "bdb",
    "commands", "marshal", "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "asyncio",
    "signal", "platform", "pydoc", "timeit", "trace", "profile", "cProfile", "pip", "setuptools",
    "distutils", "zipimport", "aiohttp", "httpx", "paramiko", "tempfile", "glob", "io", "_io",
    "_posixsubprocess", "_thread", "threading", "pkgutil", "uuid", "operator", "_operator",
    "functools", "types", "inspect", "builtins", "__builtin__", "shelve", "sqlite3", "venv",
}
_DANGEROUS_PREFIXES = ("numpy.load", "numpy.save", "numpy.fromfile", "numpy.loadtxt", "numpy.genfromtxt",
                       "numpy.memmap", "torch.load", "torch.save", "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.lib.npyio", "torch.hub",
                       "torch.serialization", "torch.jit", "torch._dynamo", "torch.utils.cpp_extension",
                       "joblib", "sklearn.externals.joblib", "sklearn.utils._testing")
# TorchScript archives name their own classes "__torch__.<...>"; torch.jit.load resolves them
# from the archive's code/ (TorchScript, not Python), so inside such an archive they are allowed.
TORCHSCRIPT_PREFIX = "__torch__"


def classify_import(module: str, name: str, *, torchscript: bool = False) -> str:
    """'safe' (on the allow-list), 'dangerous' (a known gadget) or 'unknown' (refused too)."""
    if (module, name) in ALLOWED_IMPORTS:
        return "safe"
    root = module.split(".")[0]
    if torchscript and root == TORCHSCRIPT_PREFIX and "." not in name:
        return "safe"
    if root in _DANGEROUS_ROOTS or "." in name:  # a dotted name walks attributes (find_class getattr chain)
        return "dangerous"
    dotted = f"{module}.{name}"
    if any(dotted == p or dotted.startswith(p + ".") for p in _DANGEROUS_PREFIXES):
        return "dangerous"
    return "unknown"


@dataclass(frozen=True)
class ModelScanResult:
    path: str
    status: str  # 'clean' | 'malicious' (known gadget) | 'unsafe' (off the allow-list) | 'unscannable'
    format: str
    findings: tuple[Finding, ...] = ()
    imports: tuple[str, ...] = ()  # every module.name the file imports (for the curious)
    frameworks: tuple[str, ...] = ()  # allow-list sections its imports come from

    @property
    def safe(self) -> bool:
        return self.status == "clean"


class Unscannable(Exception):
    """The bytes are not what they claim; the reason goes into the report."""


# -- the opcode walker ---------------------------------------------------------------------------


class _Mark:
    pass


MARK = _Mark()
UNKNOWN = object()


@dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclass
class Obj:
    func: Any
    args: Any
    state: Any = None


@dataclass
class _Walk:
    """Result of walking one pickle stream."""

    imports: list[tuple[str, str, int]] = field(default_factory=list)  # module, name, offset
    unresolved: list[tuple[int, str]] = field(default_factory=list)  # offset, why (computed import, EXT code)
    joblib_arrays: int = 0
    torchscript: bool = False  # a TorchScript archive: __torch__.* names are its own classes
    code: list[tuple[str, str, str]] = field(default_factory=list)  # severity, title, detail (non-pickle code)

    def merge(self, inner: _Walk) -> None:
        self.imports.extend(inner.imports)
        self.unresolved.extend(inner.unresolved)
        self.joblib_arrays += inner.joblib_arrays
        self.code.extend(inner.code)


_PUSH_ARG = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
             "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
             "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}
_CONST = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_NEW = {"EMPTY_TUPLE": tuple, "EMPTY_LIST": list, "EMPTY_DICT": dict, "EMPTY_SET": set}


class _Machine:
    def __init__(self, fh: IO[bytes], walk: _Walk) -> None:
        self.fh, self.walk = fh, walk
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.result: Any = UNKNOWN  # what STOP returns (only literals are known)

    def pop(self) -> Any:
        if not self.stack:
            raise Unscannable("pickle pops from an empty stack")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        items: list[Any] = []
        while True:
            item = self.pop()
            if item is MARK:
                items.reverse()
                return items
            items.append(item)

    def top(self) -> Any:
        if not self.stack:
            raise Unscannable("pickle reads an empty stack")
        return self.stack[-1]

    def run(self) -> None:
        try:
            for op, arg, pos in pickletools.genops(self.fh):
                if self.step(op.name, arg, pos or 0):
                    return
        except Unscannable:
            raise
        except Exception as exc:  # genops raises ValueError / struct.error / UnicodeError on junk
            raise Unscannable(f"not a valid pickle stream: {exc}") from exc
        raise Unscannable("pickle stream ends without a STOP opcode")

    def _import(self, module: str, name: str, pos: int) -> Global:
        self.walk.imports.append((module, name, pos))
        return Global(module, name)

    def step(self, name: str, arg: Any, pos: int) -> bool:
        st = self.stack
        if name in _PUSH_ARG:
            st.append(arg)
        elif name in _CONST:
            st.append(_CONST[name])
        elif name in _NEW:
            st.append(_NEW[name]())
        elif name == "MARK":
            st.append(MARK)
        elif name == "STOP":
            self.result = self.pop()
            return True
        elif name in {"PROTO", "FRAME", "NEXT_BUFFER", "READONLY_BUFFER"}:
            if name == "NEXT_BUFFER":
                st.append(UNKNOWN)
        elif name in {"TUPLE1", "TUPLE2", "TUPLE3"}:
            n = int(name[-1])
            items = [self.pop() for _ in range(n)][::-1]
            st.append(tuple(items))
        elif name in {"TUPLE", "LIST", "FROZENSET"}:
            items = self.pop_mark()
            st.append(tuple(items) if name == "TUPLE" else list(items) if name == "LIST" else UNKNOWN)
        elif name == "DICT":
            items = self.pop_mark()
            st.append(self._dict(items))
        elif name in {"APPEND", "APPENDS", "ADDITEMS"}:
            items = [self.pop()] if name == "APPEND" else self.pop_mark()
            target = self.top()
            if isinstance(target, list):
                target.extend(items)
        elif name in {"SETITEM", "SETITEMS"}:
            if name == "SETITEM":
                value, key = self.pop(), self.pop()
                items = [key, value]
            else:
                items = self.pop_mark()
            target = self.top()
            if isinstance(target, dict):
                target.update(self._dict(items))
        elif name == "POP":
            self.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            st.append(self.top())
        elif name in {"GET", "BINGET", "LONG_BINGET"}:
            st.append(self.memo.get(arg, UNKNOWN))
        elif name in {"PUT", "BINPUT", "LONG_BINPUT"}:
            self.memo[arg] = self.top()
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            st.append(self._import(module, attr, pos))
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            if isinstance(module, str) and isinstance(attr, str):
                st.append(self._import(module, attr, pos))
            else:
                self.walk.unresolved.append((pos, "STACK_GLOBAL takes a computed module name (normal pickles never do)"))
                st.append(UNKNOWN)
        elif name == "INST":
            module, _, attr = str(arg).partition(" ")
            st.append(Obj(self._import(module, attr, pos), tuple(self.pop_mark())))
        elif name == "OBJ":
            items = self.pop_mark()
            st.append(Obj(items[0] if items else UNKNOWN, tuple(items[1:])))
        elif name in {"REDUCE", "NEWOBJ"}:
            args, func = self.pop(), self.pop()
            st.append(Obj(func, args))
        elif name == "NEWOBJ_EX":
            self.pop()  # kwargs: not needed to name the callable
            args, cls = self.pop(), self.pop()
            st.append(Obj(cls, args))
        elif name == "BUILD":
            state = self.pop()
            target = self.top()
            if isinstance(target, Obj):
                target.state = state
                self._after_build(target)
        elif name in {"PERSID"}:
            st.append(UNKNOWN)
        elif name == "BINPERSID":
            self.pop()
            st.append(UNKNOWN)
        elif name in {"EXT1", "EXT2", "EXT4"}:
            # The copyreg extension registry maps a code to any import the loading process registered.
            self.walk.unresolved.append((pos, f"{name} imports through the copyreg extension registry"))
            st.append(UNKNOWN)
        else:
            raise Unscannable(f"unsupported pickle opcode {name}")
        return False

    @staticmethod
    def _dict(items: list[Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, value in zip(items[::2], items[1::2]):
            try:
                out[key] = value
            except TypeError:  # unhashable key (a list...): we only need string keys
                continue
        return out

    # joblib writes each numpy array's raw bytes right after its NumpyArrayWrapper BUILD.
    def _after_build(self, obj: Obj) -> None:
        func = obj.func
        if not (isinstance(func, Global) and func.name == "NumpyArrayWrapper" and isinstance(obj.state, dict)):
            return
        self.walk.joblib_arrays += 1
        state = obj.state
        descr, itemsize = _dtype_info(state.get("dtype"))
        if descr is None:
            raise Unscannable("joblib array with a dtype the scanner cannot size")
        if _dtype_has_objects(state.get("dtype")):
            _Machine(self.fh, self.walk).run()  # joblib reads arrays with objects as a nested pickle
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.fh.read(1)
            if len(pad) != 1:
                raise Unscannable("joblib file truncated inside array padding")
            self._skip(pad[0])
        shape = state.get("shape")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise Unscannable("joblib array with a shape the scanner cannot read")
        count = 1
        for n in shape:
            count *= n
        self._skip(count * itemsize)

    def _skip(self, n: int) -> None:
        start = self.fh.tell()
        end = self.fh.seek(0, io.SEEK_END)
        if start + n > end:
            raise Unscannable("joblib file truncated inside array data")
        self.fh.seek(start + n)


def _dtype_has_objects(dtype: Any, depth: int = 0) -> bool:
    """Whether joblib would unpickle this array (``dtype.hasobject``). Any sign counts, since the
    pickle spells the dtype however it likes: an object-like descr, an object field or subarray
    base, the NPY_ITEM_HASOBJECT flag bit, or a void dtype whose parts cannot be read."""
    if not isinstance(dtype, Obj) or not isinstance(dtype.args, tuple) or not dtype.args or depth > 32:
        return True
    descr = dtype.args[0]
    if not isinstance(descr, str):
        return True
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    if _may_hold_objects(descr) and not descr.lstrip("<>|=").startswith("V"):
        return True
    if len(state) >= 8 and isinstance(state[7], int) and state[7] & 1:
        return True
    subarray = state[2] if len(state) > 2 else None
    if isinstance(subarray, tuple) and subarray and _dtype_has_objects(subarray[0], depth + 1):
        return True
    fields = state[4] if len(state) > 4 else None
    if isinstance(fields, dict) and any(not isinstance(f, tuple) or not f or _dtype_has_objects(f[0], depth + 1)
                                        for f in fields.values()):
        return True
    if descr.lstrip("<>|=").startswith("V") and not isinstance(fields, dict) and not isinstance(subarray, tuple):
        return True  # raw void bytes with nothing to say what is inside
    return False


def _dtype_info(dtype: Any) -> tuple[str | None, int]:
    """(descr, itemsize) of a pickled ``numpy.dtype(descr, False, True)`` with its BUILD state."""
    if not isinstance(dtype, Obj) or not isinstance(dtype.args, tuple) or not dtype.args:
        return None, 0
    descr = dtype.args[0]
    if not isinstance(descr, str):
        return None, 0
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    if len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return descr, state[5]  # flexible / structured dtypes carry their element size
    digits = "".join(ch for ch in descr if ch.isdigit())
    if descr.lstrip("<>|=").startswith("O"):
        return descr, 8
    if not digits:
        return None, 0
    return descr, int(digits)


# torch.save's legacy (non-zip) format: this number, then four more pickles that torch.load
# unpickles in turn (protocol version, sys info, the data, the storage keys), then raw storages.
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_STREAMS = 4


def walk_pickles(fh: IO[bytes]) -> _Walk:
    """Walk one pickle, then the pickles that follow it (legacy torch files hold five)."""
    walk = _Walk()
    first = _Machine(fh, walk)
    first.run()
    if first.result == TORCH_LEGACY_MAGIC:
        for _ in range(TORCH_LEGACY_STREAMS):  # torch.load unpickles each, in any protocol: all must walk
            _Machine(fh, walk).run()
        return walk
    while True:  # pickle.load and joblib read only the first; a payload hidden after it is still reported
        start = fh.tell()
        if fh.read(1) != b"\x80":  # the next stream must start with PROTO, else it is raw data
            break
        fh.seek(start)
        try:
            _Machine(fh, walk).run()
        except Unscannable:
            break  # raw tensor bytes that happen to start with 0x80: nothing loads them as pickle
    return walk


# -- formats -----------------------------------------------------------------------------------


def _decompress(data: bytes) -> tuple[str, bytes] | None:
    """(codec, payload) for joblib's compressors, or None when ``data`` is not compressed."""
    try:
        if data[:2] == b"\x1f\x8b":
            return "gzip", _bounded(gzip.GzipFile(fileobj=io.BytesIO(data)))
        if data[:3] == b"BZh":
            return "bz2", _bounded(bz2.BZ2File(io.BytesIO(data)))
        if data[:6] == b"\xfd7zXZ\x00":
            return "xz", _bounded(lzma.LZMAFile(io.BytesIO(data)))
        if data[:3] == b"\x5d\x00\x00":
            return "lzma", _bounded(lzma.LZMAFile(io.BytesIO(data), format=lzma.FORMAT_ALONE))
        if data[:1] == b"\x78" and data[1:2] in {b"\x01", b"\x5e", b"\x9c", b"\xda"}:
            obj = zlib.decompressobj()
            out = obj.decompress(data, MAX_DECOMPRESSED)
            if obj.unconsumed_tail:
                raise Unscannable("compressed model expands beyond the scanner's limit")
            return "zlib", out
        if data[:4] == b"\x04\x22\x4d\x18":
            try:
                import lz4.frame  # type: ignore[import-not-found]
            except ImportError:
                raise Unscannable("lz4-compressed file and the lz4 package is not installed (pip install lz4)") from None
            return "lz4", lz4.frame.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise Unscannable(f"corrupt compressed data: {exc}") from exc
    return None


def _bounded(fh: Any) -> bytes:
    out: bytes = fh.read(MAX_DECOMPRESSED + 1)
    if len(out) > MAX_DECOMPRESSED:
        raise Unscannable("compressed model expands beyond the scanner's limit")
    return out


def _check_safetensors(data: bytes) -> None:
    if len(data) < 8:
        raise Unscannable("too short for safetensors")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8 or size > 100 << 20:
        raise Unscannable("safetensors header length is larger than the file")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError as exc:
        raise Unscannable(f"safetensors header is not JSON: {exc}") from exc
    body = len(data) - 8 - size
    if not isinstance(header, dict):
        raise Unscannable("safetensors header is not a JSON object")
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise Unscannable("safetensors __metadata__ must map strings to strings")
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (not isinstance(info, dict) or not isinstance(info.get("dtype"), str)
                or not isinstance(info.get("shape"), list) or not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1] <= body):
            raise Unscannable(f"safetensors tensor {key!r} has a malformed entry")


_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise Unscannable("truncated protobuf varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _check_onnx(data: bytes) -> None:
    """Walk the top-level fields of a ModelProto: known numbers, right wire types, graph present."""
    i, seen = 0, set()
    while i < len(data):
        tag, i = _varint(data, i)
        number, wire = tag >> 3, tag & 7
        if _ONNX_FIELDS.get(number) != wire:
            raise Unscannable(f"not an ONNX ModelProto (field {number}, wire type {wire})")
        seen.add(number)
        if wire == 0:
            _, i = _varint(data, i)
        else:
            length, i = _varint(data, i)
            i += length
            if i > len(data):
                raise Unscannable("truncated ONNX field")
    if 7 not in seen:
        raise Unscannable("ONNX model without a graph")


def _check_npy(data: bytes, name: str, walk: _Walk) -> None:
    major = data[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", data[8:10]), 10
    else:
        (hlen,), start = struct.unpack("<I", data[8:12]), 12
    try:
        header = ast.literal_eval(data[start:start + hlen].decode("latin-1"))
    except (ValueError, SyntaxError) as exc:
        raise Unscannable(f"{name}: bad .npy header") from exc
    if not isinstance(header, dict):
        raise Unscannable(f"{name}: bad .npy header")
    if _may_hold_objects(header.get("descr")):  # object arrays are stored as a pickle after the header
        walk.merge(walk_pickles(io.BytesIO(data[start + hlen:])))


def _check_keras_config(raw: bytes, walk: _Walk) -> None:
    """Keras v3 archives name every object by (module, class_name) and load_model imports that
    module; a Lambda layer carries marshalled Python bytecode. Only keras' own modules pass."""
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise Unscannable(f"Keras config.json is not JSON: {exc}") from exc
    stack: list[Any] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        cls, module = node.get("class_name"), node.get("module")
        if cls in {"__lambda__", "Lambda"} or (cls == "function" and "code" in str(node.get("config"))):
            walk.code.append(("critical", "Keras archive holds a Lambda (marshalled Python bytecode)",
                              "load_model runs it when safe_mode is off; rebuild the model without Lambda layers"))
        elif isinstance(module, str) and module != "keras" and not module.startswith("keras."):
            walk.code.append(("high", f"Keras archive imports {module}.{cls}, which is not part of keras",
                              "load_model imports the module the config names; only keras' own pass the gate"))


_PLAIN_DTYPE = re.compile(r"[<>|=]?[biufcmMUSVa?]\d*(\[\w+\])?")


def _may_hold_objects(descr: Any) -> bool:
    """Fail closed: only a dtype spelled as a plain number/string type, or a structure of them,
    is known to hold no Python objects ('O', 'object', 'object_'... all unpickle)."""
    if isinstance(descr, str):
        return not _PLAIN_DTYPE.fullmatch(descr)
    if isinstance(descr, list):
        return any(not isinstance(field, tuple) or len(field) < 2 or _may_hold_objects(field[1]) for field in descr)
    return True


def _scan_zip(data: bytes, walk: _Walk) -> str:
    # Entries are read one by one (ZipInfo, not name): two entries with the same name must both
    # be judged, since another zip reader may pick the one Python's name lookup would hide.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entries = zf.infolist()
        names = [e.filename for e in entries]
        pickles = [e for e in entries if e.filename.endswith(".pkl")]
        arrays = []
        for entry in entries:  # numpy.load parses any npz member that starts with the .npy magic
            if entry not in pickles and not entry.is_dir():
                with zf.open(entry) as fh:
                    if fh.read(6) == b"\x93NUMPY":
                        arrays.append(entry)
        if not pickles and not arrays:
            if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
                _check_keras_config(zf.read("config.json"), walk)
                return "keras"
            raise Unscannable("zip archive with no pickle or .npy members (unknown model format)")
        walk.torchscript = any(n.endswith("constants.pkl") or "/code/" in n for n in names)
        for entry in pickles:
            walk.merge(walk_pickles(io.BytesIO(zf.read(entry))))
        for entry in arrays:
            _check_npy(zf.read(entry), entry.filename, walk)
        if not pickles:
            return "npz"
        return "torchscript" if walk.torchscript else "pytorch-zip"


# Formats that hold data only: loading them runs no code from the file.
_NO_CODE = {f.name for f in contract.MODEL_FORMATS if not f.pickle_family}


def _sniff_and_walk(path: Path, data: bytes, walk: _Walk) -> str:
    suffix = path.suffix.lower()
    if data[:4] == b"PK\x03\x04":
        return _scan_zip(data, walk)
    if data[:6] == b"\x93NUMPY":
        _check_npy(data, path.name, walk)
        return "npy"
    if suffix == ".safetensors":
        _check_safetensors(data)
        return "safetensors"
    if suffix == ".onnx":
        _check_onnx(data)
        return "onnx"
    fmt = contract.model_format(path.name)
    if fmt is not None and fmt.name in _NO_CODE:
        return fmt.name  # xgboost/lightgbm native, HDF5: the framework parses data, never unpickles
    unpacked = _decompress(data)
    if unpacked:
        codec, payload = unpacked
        walk.merge(walk_pickles(io.BytesIO(payload)))
        return f"joblib+{codec}" if walk.joblib_arrays else f"pickle+{codec}"
    walk.merge(walk_pickles(io.BytesIO(data)))
    return "joblib" if walk.joblib_arrays else "pickle"


def pickle_imports(path: Path) -> tuple[str, list[tuple[str, str]]]:
    """(format, every (module, name) the file's pickles import), for deriving the allow-list.

    Raises :class:`Unscannable` when the file cannot be walked."""
    walk = _Walk()
    fmt = _sniff_and_walk(Path(path), Path(path).read_bytes(), walk)
    return fmt, [(m, n) for m, n, _ in walk.imports]


def scan_model_file(path: Path) -> ModelScanResult:
    """Scan one model file without loading it; see the module docstring for the verdicts."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return _unscannable(where, "unknown", f"cannot read the file: {exc.strerror}")
    return scan_model_bytes(data, where)


def scan_model_bytes(data: bytes, where: str) -> ModelScanResult:
    """Scan a model file's bytes (``where`` is its name or path, whose suffix picks the format)."""
    walk = _Walk()
    try:
        fmt = _sniff_and_walk(Path(where), data, walk)
    except Unscannable as exc:
        return _unscannable(where, "unknown", str(exc))
    except (zipfile.BadZipFile, struct.error, IndexError, KeyError, EOFError, zlib.error) as exc:
        return _unscannable(where, "unknown", f"corrupt file: {exc}")
    return _verdict(where, fmt, walk)


def _unscannable(where: str, fmt: str, reason: str) -> ModelScanResult:
    return ModelScanResult(where, "unscannable", fmt, (Finding(
        "model/unscannable", "high", "model file could not be scanned", where, reason,
        "re-save it with the framework's own save function (or a safe format), or pass "
        "--allow-unsafe-model if you trust the file"),))


_REFUSE_FIX = "do not load it; re-export the weights in a safe format from a trusted source"


def _verdict(where: str, fmt: str, walk: _Walk) -> ModelScanResult:
    findings: list[Finding] = []
    imports = sorted({f"{m}.{n}" for m, n, _ in walk.imports})
    flagged: dict[tuple[str, str], tuple[str, int]] = {}
    frameworks: set[str] = set()
    for module, name, pos in walk.imports:
        verdict = classify_import(module, name, torchscript=walk.torchscript)
        if verdict == "safe":
            frameworks.add(ALLOWED_IMPORTS.get((module, name), "torch"))
        else:
            flagged.setdefault((module, name), (verdict, pos))
    for (module, name), (verdict, pos) in sorted(flagged.items()):
        dotted = f"{module}.{name}"
        if verdict == "dangerous":
            findings.append(Finding(
                "model/dangerous-import", "critical", f"pickle imports {dotted}", where,
                f"at byte {pos}: loading this file can run code through {dotted}", _REFUSE_FIX))
        else:
            findings.append(Finding(
                "model/import-not-allowed", "high", f"pickle imports {dotted}, which is not on the allow-list", where,
                f"at byte {pos}: only the callables real saved models use may be imported (docs/security.md)",
                "re-save the model in a safe format, or pass --allow-unsafe-model if you trust the file"))
    for severity, title, detail in walk.code:
        findings.append(Finding("model/dangerous-import" if severity == "critical" else "model/import-not-allowed",
                                severity, title, where, detail, _REFUSE_FIX))
    for pos, why in walk.unresolved:
        findings.append(Finding(
            "model/dangerous-import", "high", "pickle builds an import the scanner cannot resolve", where,
            f"at byte {pos}: {why}", _REFUSE_FIX))
    if any(f.severity == "critical" for f in findings):
        status = "malicious"
    else:
        status = "unsafe" if findings else "clean"
    notice = safer_format_notice(where, fmt, frameworks) if status == "clean" else None
    return ModelScanResult(where, status, fmt, tuple(findings) + ((notice,) if notice else ()), tuple(imports),
                           tuple(sorted(frameworks)))


# What to save instead, per framework whose pickles we saw (the gate passes them, but a format
# that carries no code needs no gate at all).
_SAFER = {
    "scikit-learn": "export it to ONNX with skl2onnx (dockyard serves .onnx with no code), or save it with skops",
    "xgboost": "save the booster natively: model.save_model('model.ubj') (dockyard serves .ubj/.json)",
    "lightgbm": "save the booster natively: booster.save_model('model.txt') (dockyard serves .txt/.lgb)",
    "torch": "save the state_dict as safetensors, or load with torch.load(weights_only=True); "
             "TorchScript/ONNX serve with no code",
    "numpy": "save arrays with numpy.save(..., allow_pickle=False) or as safetensors",
    "scipy": "save sparse matrices with scipy.sparse.save_npz",
}
_PRIORITY = ("xgboost", "lightgbm", "scikit-learn", "torch", "scipy", "numpy")


def safer_format_notice(where: str, fmt: str, frameworks: set[str] | tuple[str, ...]) -> Finding | None:
    """An info finding saying which code-free format this pickle-family file could become."""
    if fmt in _NO_CODE or fmt in {"safetensors", "onnx", "keras", "torchscript", "npy", "npz"}:
        return None
    framework = next((f for f in _PRIORITY if f in frameworks), None)
    if framework is None:
        return None
    return Finding("model/safer-format", "info", f"{fmt} model could use a format that runs no code", where,
                   f"loading a {fmt} file unpickles it; it passed the allow-list, but a code-free format "
                   "needs no gate", _SAFER[framework])


def safer_format_advice(path: Path) -> str | None:
    """One line for ``plan``: the code-free format a pickle-family model file could switch to."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    for file in files:
        if file.suffix.lower() not in contract.PICKLE_SUFFIXES:
            continue
        notice = next((f for f in scan_model_file(file).findings if f.rule_id == "model/safer-format"), None)
        if notice:
            return f"{file.name} is a pickle (loading it can run code): {notice.fix}"
    return None


_MAGIC = (b"\x80", b"PK\x03\x04", b"\x93NUMPY", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00", b"\x78",
          b"\x04\x22\x4d\x18")


def is_model_file(path: Path, head: bytes | None = None) -> bool:
    """True for files the scanner should judge: a model suffix from the contract, and for the
    suffixes common outside ML (.json, .txt, .bin, ...) content that looks like a model."""
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        return False
    if suffix not in contract.AMBIGUOUS_SUFFIXES:
        return True
    if head is None:
        try:
            with Path(path).open("rb") as fh:
                head = fh.read(1 << 16)
        except OSError:
            return True  # unreadable: let the scan say so
    if suffix == ".json":
        return b'"learner"' in head  # an XGBoost model
    if suffix == ".txt":
        return head.startswith(b"tree\n")  # a LightGBM model
    # .bin/.npy/.npz: anything a loader could unpickle (pickle, zip, numpy, joblib compression)
    opcodes: dict[str, Any] = pickletools.code2op  # type: ignore[attr-defined]
    return head.startswith(_MAGIC) or (bool(head) and chr(head[0]) in opcodes and _parses_as_pickle(head))


def _parses_as_pickle(head: bytes) -> bool:
    try:
        for op, _, _ in pickletools.genops(io.BytesIO(head)):
            if op.name == "STOP":
                return True
    except Exception:  # noqa: BLE001 (genops raises many types on non-pickles)
        return False
    return True  # ran out of the head without an error: treat as a pickle
