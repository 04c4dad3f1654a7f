"""The pickle gate is an allow-list: real models from every framework pass, every attack is refused.

The benign corpus is saved by the frameworks themselves (tests/unit/model_corpus.py, the same
files scripts/derive_pickle_allowlist.py derives the list from); the malicious corpus is written
opcode by opcode and holds the published deny-list bypasses plus our own variants, in pickle,
compressed joblib, torch zip, TorchScript and .npy containers. picklescan and fickling serve as
reference implementations: we are never "clean" where either calls a file dangerous.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import model_corpus
import pytest

from dockyard.scan.models import ALLOWED_IMPORTS, scan_model_file

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for framework, maker in model_corpus.BENIGN.items():
            dest = tmp_path_factory.mktemp(framework)
            try:
                out[framework] = list(maker(dest))
            except ImportError as exc:  # a framework missing from this environment
                out[framework] = []
                print(f"benign corpus: {framework} skipped ({exc})")
    return out


@pytest.fixture(scope="module")
def malicious(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return list(model_corpus.malicious_models(tmp_path_factory.mktemp("malicious")))


@pytest.mark.parametrize("framework", sorted(model_corpus.BENIGN))
def test_real_models_from_every_framework_pass_the_gate(benign: dict[str, list[Path]], framework: str) -> None:
    files = benign[framework]
    if not files:
        pytest.skip(f"{framework} is not installed")
    verdicts = {p.name: scan_model_file(p) for p in files}
    refused = {name: [f.title for f in r.findings if f.severity != "info"]
               for name, r in verdicts.items() if r.status != "clean"}
    assert refused == {}


def test_benign_corpus_covers_every_container(benign: dict[str, list[Path]]) -> None:
    formats = {scan_model_file(p).format for files in benign.values() for p in files}
    assert {"pickle", "joblib", "joblib+zlib", "pytorch-zip", "torchscript", "onnx", "keras"} <= formats


@pytest.mark.parametrize("name", sorted(model_corpus.MALICIOUS))
def test_every_hand_built_attack_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(model_corpus.MALICIOUS[name])
    result = scan_model_file(path)
    assert result.status in {"malicious", "unsafe"}, result
    assert any(f.severity in {"critical", "high"} for f in result.findings)


@pytest.mark.parametrize("name, gadget", [
    ("uuid_get_command_stdout", "uuid._get_command_stdout"),
    ("pkgutil_resolve_name", "pkgutil.resolve_name"),
    ("operator_methodcaller", "_operator.methodcaller"),
])
def test_published_deny_list_bypasses_are_critical(tmp_path: Path, name: str, gadget: str) -> None:
    # picklescan GHSA-vvpj-8cmc-gx39 and issue 66: a deny list does not know these callables.
    path = tmp_path / "model.pkl"
    path.write_bytes(model_corpus.MALICIOUS[name])
    result = scan_model_file(path)
    assert result.status == "malicious"
    assert f"pickle imports {gadget}" in [f.title for f in result.findings if f.severity == "critical"]


def test_attacks_in_every_container_are_refused(malicious: list[Path]) -> None:
    missed = {p.name: scan_model_file(p).status for p in malicious if scan_model_file(p).status == "clean"}
    assert missed == {}
    formats = {scan_model_file(p).format for p in malicious}
    assert {"pickle", "pickle+zlib", "joblib", "pytorch-zip", "torchscript", "npy"} <= formats


def test_an_unknown_class_is_refused_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(model_corpus.PROTO + model_corpus._global("mypackage.model", "Net") + b")\x81.")
    result = scan_model_file(path)
    assert result.status == "unsafe"
    assert [f.rule_id for f in result.findings] == ["model/import-not-allowed"]
    assert "mypackage.model.Net" in result.findings[0].title


def test_dotted_names_never_ride_on_an_allowed_module(tmp_path: Path) -> None:
    # find_class("collections", "os.system") walks attributes: collections.os.system.
    path = tmp_path / "model.pkl"
    path.write_bytes(model_corpus.MALICIOUS["dotted_name_in_allowed_module"])
    assert scan_model_file(path).status == "malicious"


def test_torchscript_class_names_are_allowed_only_inside_torchscript_archives(tmp_path: Path) -> None:
    body = model_corpus.PROTO + model_corpus._global("__torch__.torch.nn.modules.linear", "Linear") + b")\x81."
    script = tmp_path / "script.pt"
    script.write_bytes(model_corpus._torch_zip(body, script=True))
    plain = tmp_path / "plain.pt"
    plain.write_bytes(model_corpus._torch_zip(body))
    assert (scan_model_file(script).status, scan_model_file(plain).status) == ("clean", "unsafe")


def test_scipy_discrete_distribution_is_refused_because_it_pickles_getattr(tmp_path: Path) -> None:
    # A documented limit: frozen discrete distributions pickle builtins.getattr (a bound method),
    # which could fetch any method of any object; the allow-list refuses getattr outright.
    stats = pytest.importorskip("scipy.stats")
    path = tmp_path / "search_space.pkl"
    path.write_bytes(pickle.dumps({"n_estimators": stats.randint(1, 10)}))
    result = scan_model_file(path)
    assert result.status == "malicious"
    assert "pickle imports builtins.getattr" in [f.title for f in result.findings]


def test_clean_sklearn_pickle_gets_a_safer_format_notice(benign: dict[str, list[Path]]) -> None:
    path = next(p for p in benign["scikit-learn"] if p.name == "sklearn_random_forest.joblib")
    notices = [f for f in scan_model_file(path).findings if f.rule_id == "model/safer-format"]
    assert [n.severity for n in notices] == ["info"]
    assert "skl2onnx" in notices[0].fix and "skops" in notices[0].fix


def test_allow_list_holds_no_known_gadget() -> None:
    from dockyard.scan.models import classify_import

    gadgets = [("builtins", "getattr"), ("builtins", "eval"), ("os", "system"), ("pkgutil", "resolve_name"),
               ("uuid", "_get_command_stdout"), ("_operator", "methodcaller"), ("functools", "partial"),
               ("numpy", "load"), ("joblib", "load"), ("torch", "load")]
    assert [g for g in gadgets if g in ALLOWED_IMPORTS] == []
    assert {classify_import(*g) for g in gadgets} == {"dangerous"}
    assert not [pair for pair in ALLOWED_IMPORTS if "." in pair[1]]


# -- differential: picklescan and fickling -------------------------------------------------------

# fickling rates imports whose name starts with "__" as likely overtly malicious; numpy pickles
# every RandomState/Generator (sklearn keeps them in fitted models) through these constructors,
# which build only the bit generator class they are given (itself allow-listed).
FICKLING_NAME_HEURISTIC = {"__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor"}


def _picklescan_dangerous(path: Path) -> bool:
    scanner = pytest.importorskip("picklescan.scanner")
    return scanner.scan_file_path(str(path)).infected_files > 0


def _fickling_dangerous(path: Path) -> bool:
    fickling = pytest.importorskip("fickling")
    from fickling.analysis import Severity

    try:
        result = fickling.scan_file(str(path))
    except Exception:  # noqa: BLE001 (fickling cannot parse joblib/zip files: no verdict)
        return False
    if result.severity < Severity.LIKELY_OVERTLY_MALICIOUS:
        return False
    messages = [str(a.message) for r in result.results for a in getattr(r, "results", [r])
                if getattr(a, "severity", Severity.LIKELY_SAFE) >= Severity.LIKELY_OVERTLY_MALICIOUS]
    return not all(any(name in m for name in FICKLING_NAME_HEURISTIC) for m in messages)


def test_never_clean_where_picklescan_or_fickling_says_dangerous(benign: dict[str, list[Path]],
                                                                 malicious: list[Path]) -> None:
    files = [p for group in benign.values() for p in group] + malicious
    disagreements = []
    for path in files:
        ours = scan_model_file(path).status
        if ours == "clean" and (_picklescan_dangerous(path) or _fickling_dangerous(path)):
            disagreements.append(path.name)
    assert disagreements == []


def test_we_refuse_what_the_references_miss(malicious: list[Path]) -> None:
    # Not a requirement on them, a record of why the gate is ours: these pass picklescan.
    missed_by_picklescan = [p.name for p in malicious if not _picklescan_dangerous(p)]
    assert "dotted_name_in_allowed_module.pkl" in missed_by_picklescan
    assert all(scan_model_file(Path(p)).status != "clean" for p in malicious)


# -- the serve gate ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["uuid_get_command_stdout", "pkgutil_resolve_name", "operator_methodcaller",
                                  "memo_stack_global", "joblib_object_array"])
def test_serve_gate_refuses_each_attack_in_each_container(malicious: list[Path], name: str) -> None:
    from dockyard.errors import UsageError
    from dockyard.serving import check_model_safety

    files = [p for p in malicious if p.name.startswith(name)]
    assert files
    for path in files:
        with pytest.raises(UsageError, match=f"refusing to serve {path.name}") as info:
            check_model_safety(path.parent, path.name, allow_unsafe=False)
        assert "--allow-unsafe-model" in info.value.fix
        check_model_safety(path.parent, path.name, allow_unsafe=True)  # the explicit override


def test_serve_gate_passes_every_benign_model(benign: dict[str, list[Path]]) -> None:
    from dockyard.serving import check_model_safety

    for files in benign.values():
        for path in files:
            check_model_safety(path.parent, path.name, allow_unsafe=False)


def test_serve_gate_scans_every_pickle_suffix_of_the_contract(tmp_path: Path) -> None:
    from dockyard.errors import UsageError
    from dockyard.runtime.contract import PICKLE_SUFFIXES
    from dockyard.serving import check_model_safety

    (tmp_path / "models").mkdir()
    for suffix in PICKLE_SUFFIXES:
        (tmp_path / "models" / f"m{suffix.upper()}").write_bytes(model_corpus.MALICIOUS["pkgutil_resolve_name"])
        with pytest.raises(UsageError):
            check_model_safety(tmp_path, "models", allow_unsafe=False)
        (tmp_path / "models" / f"m{suffix.upper()}").unlink()


def test_plan_says_when_the_served_pickle_could_switch_format(benign: dict[str, list[Path]], tmp_path: Path) -> None:
    from dockyard.planning import _safer_format

    sklearn_file = next(p for p in benign["scikit-learn"] if p.name == "sklearn_pipeline.joblib")
    (tmp_path / "model.joblib").write_bytes(sklearn_file.read_bytes())
    xgb_files = [p for p in benign["xgboost"] if p.suffix == ".pkl"]
    advice = _safer_format(tmp_path, "model.joblib")
    assert len(advice) == 1 and "skl2onnx" in advice[0]
    if xgb_files:
        (tmp_path / "booster.pkl").write_bytes(xgb_files[0].read_bytes())
        assert "save_model('model.ubj')" in _safer_format(tmp_path, "booster.pkl")[0]
    onnx = next(p for p in benign["no-code"] if p.suffix == ".onnx")
    (tmp_path / "model.onnx").write_bytes(onnx.read_bytes())
    assert _safer_format(tmp_path, "model.onnx") == ()


def test_image_scan_judges_models_baked_into_the_image(benign: dict[str, list[Path]], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import test_scan_image

    from dockyard.scan import scan_image_archive

    good = next(p for p in benign["scikit-learn"] if p.name == "sklearn_pipeline.joblib").read_bytes()
    monkeypatch.setattr(test_scan_image, "LAYERS", [*test_scan_image.LAYERS, [
        ("opt/dockyard/model/model.joblib", good, 0o644),
        ("app/outputs/evil.pkl", model_corpus.MALICIOUS["pkgutil_resolve_name"], 0o644),
        ("app/outputs/opaque.pt", b"\x80\x05" + bytes(range(256)), 0o644),
        ("opt/venv/lib/python3.11/site-packages/pkg/tests/data.pkl", b"not judged: library test data", 0o644),
    ]])
    report = scan_image_archive(test_scan_image.legacy_archive(tmp_path / "image.tar"), offline=True)
    models = {(f.location, f.severity) for f in report.findings if f.rule_id.startswith("model/")}
    assert ("/app/outputs/evil.pkl", "critical") in models
    assert ("/opt/dockyard/model/model.joblib", "info") in models  # clean, with a safer-format notice
    assert not any(loc.startswith("/opt/venv") for loc, _ in models)
    assert [n for n in report.not_checked if n.startswith("model file /app/outputs/opaque.pt")]
    assert "model files in the image: 3 (pickle allow-list)" in report.checks


def test_function_transformer_with_any_numpy_ufunc_passes(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    for func in (np.log1p, np.sqrt, np.exp, np.abs):
        path = tmp_path / f"{func.__name__}.pkl"
        path.write_bytes(pickle.dumps(preprocessing.FunctionTransformer(func).fit(np.ones((3, 2)))))
        assert scan_model_file(path).status == "clean", func
    path = tmp_path / "frompyfunc.pkl"  # not a ufunc by name: a builder of callables stays refused
    path.write_bytes(model_corpus.PROTO + model_corpus._global("numpy", "frompyfunc") + b".")
    assert scan_model_file(path).status != "clean"


@pytest.mark.parametrize("verb", [["serve", "--local", "--port", "0"], ["predict", "--input", "{}"]])
def test_local_serving_on_the_host_is_gated_too(tmp_path: Path, verb: list[str]) -> None:
    # serve --local and predict PROJECT load the model in this process's Python, with no container.
    from test_cli_errors import assert_user_error, dockyard_cli

    (tmp_path / "dockyard.yaml").write_text("name: demo\npython: '3.11'\nserve:\n  model: model.pkl\n")
    (tmp_path / "model.pkl").write_bytes(model_corpus.MALICIOUS["uuid_get_command_stdout"])
    args = [verb[0], *([str(tmp_path)] if verb[0] == "predict" else [str(tmp_path), *verb[1:]]),
            *(verb[1:] if verb[0] == "predict" else [])]
    proc = dockyard_cli(*args)
    assert_user_error(proc)
    assert "refusing to serve model.pkl" in proc.stderr and "uuid._get_command_stdout" in proc.stderr
    assert not Path("/tmp/dockyard-pwned").exists()


def test_legacy_torch_file_with_a_protocol_0_payload_in_its_data_pickle_is_refused(tmp_path: Path) -> None:
    # The data pickle of a legacy torch file need not start with PROTO; torch.load still runs it.
    path = tmp_path / "model.pth"
    path.write_bytes(model_corpus._torch_legacy(model_corpus.MALICIOUS["inst_opcode"]))
    result = scan_model_file(path)
    assert result.status == "malicious"
    assert "pickle imports os.system" in [f.title for f in result.findings]
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(model_corpus._torch_legacy(b"")[:-len(pickle.dumps([], protocol=2))])
    assert scan_model_file(truncated).status == "unscannable"


def test_duplicate_zip_entries_are_each_judged(tmp_path: Path) -> None:
    # Python's zipfile returns the last entry of a name, other readers the first: judge both.
    import io
    import warnings as _warnings
    import zipfile

    buf = io.BytesIO()
    with _warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        _warnings.simplefilter("ignore")  # "Duplicate name"
        zf.writestr("archive/data.pkl", model_corpus.MALICIOUS["pkgutil_resolve_name"])
        zf.writestr("archive/data.pkl", pickle.dumps({"w": [1.0]}, protocol=2))
        zf.writestr("archive/version", "3\n")
    path = tmp_path / "model.pt"
    path.write_bytes(buf.getvalue())
    assert scan_model_file(path).status == "malicious"


def test_npz_members_are_judged_by_content_not_name(tmp_path: Path) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("weights", model_corpus._npy_object_array(model_corpus.MALICIOUS["operator_methodcaller"]))
    path = tmp_path / "arrays.npz"
    path.write_bytes(buf.getvalue())
    assert scan_model_file(path).status == "malicious"


@pytest.mark.parametrize("descr", ["'object'", "'|O'", "'O8'", "[('a', '<i4'), ('b', 'object')]"])
def test_npy_object_dtype_spelled_any_way_is_walked(tmp_path: Path, descr: str) -> None:
    # numpy accepts np.dtype('object') in a .npy header; np.load(allow_pickle=True) then unpickles.
    import struct

    header = ("{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }").encode()
    header += b" " * (63 - len(header) % 64) + b"\n"
    path = tmp_path / "array.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
                     + model_corpus.MALICIOUS["pkgutil_resolve_name"])
    assert scan_model_file(path).status == "malicious"


def test_plain_npy_arrays_of_every_numeric_dtype_are_clean(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    for dtype in ("<f8", "<i4", "|b1", "<U3", "|S2", "<c16", "<M8[D]", "<m8[s]", "|u1", "<f2"):
        path = tmp_path / "a.npy"
        np.save(path, np.zeros(2, dtype=dtype))
        assert scan_model_file(path).status == "clean", dtype
    path = tmp_path / "s.npy"
    np.save(path, np.zeros(2, dtype=[("a", "<i4"), ("b", [("c", "<f8")])]))
    assert scan_model_file(path).status == "clean"


@pytest.mark.parametrize("dtype", [[("a", "O")], [("a", "<i4"), ("b", [("c", "O")])], ("O", (2,))])
def test_joblib_arrays_with_objects_inside_structured_dtypes_are_walked(tmp_path: Path, dtype: object) -> None:
    # joblib unpickles any array whose dtype.hasobject, not only dtype('O'): the payload hides there.
    np = pytest.importorskip("numpy")

    class Payload:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, ("true",))

    array = np.zeros(2, dtype=dtype)
    field = array.dtype.names[0] if array.dtype.names else None
    if field and array.dtype[field].hasobject and array.dtype[field].names is None:
        array[field][0] = Payload()
    elif field:
        array[array.dtype.names[1]]["c"][0] = Payload()
    else:
        array[0][0] = Payload()
    path = tmp_path / "model.joblib"
    joblib = pytest.importorskip("joblib")
    joblib.dump({"arr": array}, path)
    assert scan_model_file(path).status == "malicious"


def test_joblib_structured_arrays_without_objects_stay_clean(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump({"a": np.zeros(3, dtype=[("x", "<i4"), ("y", [("z", "<f8")])]), "b": np.zeros((2, 2), "U4")}, path)
    assert scan_model_file(path).status == "clean"


def test_keras_archives_with_a_lambda_or_a_foreign_module_are_refused(benign: dict[str, list[Path]],
                                                                      tmp_path: Path) -> None:
    import io
    import json as _json
    import zipfile

    good = next((p for p in benign["no-code"] if p.suffix == ".keras"), None)
    if good is None:
        pytest.skip("keras is not installed")
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    config = _json.loads(members["config.json"])

    def rewrite(name: str, layer: dict) -> Path:  # type: ignore[type-arg]
        changed = _json.loads(_json.dumps(config))
        changed["config"]["layers"].append(layer)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for member, data in members.items():
                zf.writestr(member, _json.dumps(changed) if member == "config.json" else data)
        path = tmp_path / f"{name}.keras"
        path.write_bytes(buf.getvalue())
        return path

    lam = rewrite("lambda", {"module": "keras.layers", "class_name": "Lambda", "config": {
        "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAA=", "defaults": None}}}})
    foreign = rewrite("foreign", {"module": "os", "class_name": "system", "config": {}})
    assert scan_model_file(lam).status == "malicious"
    result = scan_model_file(foreign)
    assert result.status == "unsafe" and "os.system" in result.findings[0].title
    assert scan_model_file(good).status == "clean"
