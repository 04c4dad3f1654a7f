"""Model files are judged opcode by opcode; nothing in them is ever loaded."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import pytest

from dockyard.scan.models import classify_import, scan_model_file

joblib = pytest.importorskip("joblib")
np = pytest.importorskip("numpy")


class SystemPayload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


class ExecPayload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, ("import os; os.system('echo pwned')",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_os_system_pickle_is_malicious_in_every_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2], "x": SystemPayload()}, protocol=protocol))
    result = scan_model_file(path)
    assert result.status == "malicious"
    assert any(f.title.endswith(("posix.system", "nt.system", "os.system")) for f in result.findings)


def test_exec_payload_is_malicious(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(ExecPayload()))
    result = scan_model_file(path)
    assert result.status == "malicious"
    assert [f.title for f in result.findings] == ["pickle imports builtins.exec"]


@pytest.mark.parametrize("compress", [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_malicious_joblib_is_flagged_compressed_or_not(tmp_path: Path, compress: object) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"coef": np.arange(100.0), "hook": SystemPayload()}, path, compress=compress)
    assert scan_model_file(path).status == "malicious"


def test_payload_after_numpy_array_bytes_is_still_found(tmp_path: Path) -> None:
    # The raw array bytes sit in the middle of the pickle stream; the walker must step over them.
    path = tmp_path / "model.joblib"
    joblib.dump([np.ones((64, 64)), np.array(["a", 1], dtype=object), SystemPayload()], path)
    result = scan_model_file(path)
    assert result.status == "malicious"
    assert result.findings[0].detail.startswith("at byte ")


def test_benign_joblib_with_numpy_arrays_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"w": np.arange(12, dtype="f4").reshape(3, 4), "names": np.array(["ab", "c"]),
                 "objs": np.array([{"a": 1}, None], dtype=object), "empty": np.zeros((0, 3)),
                 "ints": np.arange(5, dtype=">i8")}, path)
    result = scan_model_file(path)
    assert result.status == "clean", result.findings
    assert result.format == "joblib"
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in result.imports


def test_sklearn_model_saved_with_joblib_is_clean(tmp_path: Path) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    model = linear_model.LogisticRegression().fit(np.random.rand(20, 3), np.arange(20) % 2)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path, compress=3)
    assert scan_model_file(path).status == "clean"


def _torch_zip(data_pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/data/0", b"\x00" * 16)
    return buf.getvalue()


def test_torch_zip_with_malicious_data_pkl_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(_torch_zip(pickle.dumps({"state": SystemPayload()}, protocol=2)))
    result = scan_model_file(path)
    assert (result.status, result.format) == ("malicious", "pytorch-zip")


def test_torch_zip_with_plain_state_dict_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_torch_zip(pickle.dumps({"layer.weight": [0.1, 0.2]}, protocol=2)))
    assert scan_model_file(path).status == "clean"


def test_hand_written_stack_global_from_memo_is_resolved(tmp_path: Path) -> None:
    # 'subprocess' and 'call' pushed, memoised, popped, then fetched back with BINGET.
    body = (b"\x80\x04\x8c\nsubprocess\x94\x8c\x04call\x94" b"0" b"0"
            b"h\x00h\x01\x93" b"\x8c\x02id\x85R.")
    path = tmp_path / "model.pkl"
    path.write_bytes(body)
    result = scan_model_file(path)
    assert [f.title for f in result.findings] == ["pickle imports subprocess.call"]


def test_computed_stack_global_is_not_clean(tmp_path: Path) -> None:
    body = b"\x80\x04J\x01\x00\x00\x00J\x02\x00\x00\x00\x93)R."  # module/name are ints: computed
    path = tmp_path / "model.pkl"
    path.write_bytes(body)
    assert scan_model_file(path).status != "clean"


def test_safetensors_passes(tmp_path: Path) -> None:
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    result = scan_model_file(path)
    assert (result.status, result.format) == ("clean", "safetensors")


def test_safetensors_with_offsets_past_the_end_is_unscannable(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 1600]}}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    assert scan_model_file(path).status == "unscannable"


def test_onnx_model_proto_passes(tmp_path: Path) -> None:
    graph = b"\x0a\x00"  # GraphProto with an empty node
    proto = b"\x08\x08" + b"\x12\x04test" + b"\x3a" + bytes([len(graph)]) + graph
    path = tmp_path / "model.onnx"
    path.write_bytes(proto)
    assert scan_model_file(path).status == "clean"


@pytest.mark.parametrize("name", ["model.pkl", "model.onnx", "model.joblib", "model.pt"])
def test_garbage_bytes_are_unscannable_never_clean(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xb7\x13garbage that is not a model" + bytes(range(256)))
    result = scan_model_file(path)
    assert result.status == "unscannable"
    assert result.findings[0].rule_id == "model/unscannable"


def test_truncated_pickle_is_unscannable(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"a": list(range(100))})[:-20])
    assert scan_model_file(path).status == "unscannable"


@pytest.mark.parametrize(
    ("module", "name", "verdict"),
    [
        ("os", "system", "dangerous"), ("posix", "system", "dangerous"), ("nt", "system", "dangerous"),
        ("subprocess", "Popen", "dangerous"), ("builtins", "eval", "dangerous"),
        ("builtins", "getattr", "dangerous"), ("runpy", "run_path", "dangerous"),
        ("socket", "socket", "dangerous"), ("importlib", "import_module", "dangerous"),
        ("numpy.testing._private.utils", "runstring", "dangerous"), ("webbrowser", "open", "dangerous"),
        ("collections", "OrderedDict", "safe"), ("_codecs", "encode", "safe"),
        ("torch._utils", "_rebuild_tensor_v2", "safe"), ("builtins", "set", "safe"),
        ("sklearn.tree._classes", "DecisionTreeClassifier", "safe"),
        ("mypackage.model", "Net", "unknown"), ("collections", "os.system", "dangerous"),
    ],
)
def test_import_policy(module: str, name: str, verdict: str) -> None:
    assert classify_import(module, name) == verdict
