"""Real saved models (benign corpus) and hand-built attacks (malicious corpus) for the pickle gate.

Used by the tests and by ``scripts/derive_pickle_allowlist.py``: the allow-list is derived from
exactly the files the tests then check, so the two cannot drift apart. Every benign file is made
by the framework's own save function; every malicious file is written here opcode by opcode.
"""

from __future__ import annotations

import io
import pickle
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# -- benign -----------------------------------------------------------------------------------


def _data(n: int = 40, features: int = 4, seed: int = 0) -> tuple[Any, Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    y_class = (x[:, 0] + x[:, 1] > 0).astype(int)
    y_reg = x @ np.arange(1, features + 1) + rng.normal(scale=0.1, size=n)
    return x, y_class, y_reg


def _representative_sklearn() -> list[tuple[str, Any, str]]:
    """(name, unfitted estimator, 'classifier'|'regressor'|'transformer'|'cluster')."""
    import numpy as np
    from sklearn import (
        calibration,
        cluster,
        compose,
        decomposition,
        discriminant_analysis,
        ensemble,
        feature_extraction,
        impute,
        kernel_approximation,
        linear_model,
        model_selection,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )

    pipe = pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    cols = compose.ColumnTransformer([("num", preprocessing.StandardScaler(), [0, 1]),
                                      ("log", preprocessing.FunctionTransformer(np.tanh), [2]),
                                      ("bins", preprocessing.KBinsDiscretizer(n_bins=3, quantile_method="averaged_inverted_cdf"), [3])])
    return [
        ("logistic_regression", linear_model.LogisticRegression(), "classifier"),
        ("sgd_classifier", linear_model.SGDClassifier(), "classifier"),
        ("ridge", linear_model.Ridge(), "regressor"),
        ("lasso", linear_model.Lasso(), "regressor"),
        ("linear_regression", linear_model.LinearRegression(), "regressor"),
        ("random_forest", ensemble.RandomForestClassifier(n_estimators=5), "classifier"),
        ("extra_trees_regressor", ensemble.ExtraTreesRegressor(n_estimators=5), "regressor"),
        ("gradient_boosting", ensemble.GradientBoostingClassifier(n_estimators=5), "classifier"),
        ("gradient_boosting_regressor", ensemble.GradientBoostingRegressor(n_estimators=5), "regressor"),
        ("hist_gradient_boosting", ensemble.HistGradientBoostingClassifier(max_iter=5), "classifier"),
        ("hist_gradient_boosting_regressor", ensemble.HistGradientBoostingRegressor(max_iter=5), "regressor"),
        ("adaboost", ensemble.AdaBoostClassifier(n_estimators=5), "classifier"),
        ("isolation_forest", ensemble.IsolationForest(n_estimators=5), "cluster"),
        ("voting", ensemble.VotingClassifier([("lr", linear_model.LogisticRegression()),
                                              ("nb", naive_bayes.GaussianNB())]), "classifier"),
        ("stacking", ensemble.StackingRegressor([("r", linear_model.Ridge())], final_estimator=linear_model.Ridge()),
         "regressor"),
        ("decision_tree", tree.DecisionTreeClassifier(), "classifier"),
        ("svc", svm.SVC(probability=True), "classifier"),
        ("svr", svm.SVR(), "regressor"),
        ("knn", neighbors.KNeighborsClassifier(n_neighbors=3), "classifier"),
        ("gaussian_nb", naive_bayes.GaussianNB(), "classifier"),
        ("mlp", neural_network.MLPClassifier(max_iter=20), "classifier"),
        ("lda", discriminant_analysis.LinearDiscriminantAnalysis(), "classifier"),
        ("kmeans", cluster.KMeans(n_clusters=2, n_init=1), "cluster"),
        ("pca", decomposition.PCA(n_components=2), "transformer"),
        ("nystroem", kernel_approximation.Nystroem(n_components=5), "transformer"),
        ("imputer", impute.SimpleImputer(), "transformer"),
        ("onehot", preprocessing.OneHotEncoder(), "transformer"),
        ("polynomial", preprocessing.PolynomialFeatures(), "transformer"),
        ("pipeline", pipe, "classifier"),
        ("column_transformer", pipeline.make_pipeline(cols, linear_model.LogisticRegression()), "classifier"),
        ("calibrated", calibration.CalibratedClassifierCV(linear_model.LogisticRegression(), cv=2), "classifier"),
        ("grid_search", model_selection.GridSearchCV(linear_model.Ridge(), {"alpha": [0.1, 1.0]}, cv=2), "regressor"),
        ("dict_vectorizer", feature_extraction.DictVectorizer(), "dicts"),
        ("tfidf", feature_extraction.text.TfidfVectorizer(), "text"),
    ]


def _all_sklearn() -> list[tuple[str, Any, str]]:
    """Every estimator sklearn lists, default-constructed (the derivation script's wide net)."""
    from sklearn.utils import all_estimators

    out = []
    for kind, label in (("classifier", "classifier"), ("regressor", "regressor"),
                        ("transformer", "transformer"), ("cluster", "cluster")):
        for name, cls in all_estimators(type_filter=kind):
            try:
                out.append((f"all_{name}", cls(), label))
            except TypeError:  # meta-estimators that need an inner estimator
                continue
    return out


def _fit(estimator: Any, kind: str) -> Any:
    import numpy as np

    x, y_class, y_reg = _data()
    if kind == "classifier":
        return estimator.fit(x, y_class)
    if kind == "regressor":
        return estimator.fit(x, y_reg)
    if kind == "dicts":
        return estimator.fit([{"a": 1, "b": 2}, {"a": 3, "c": 1}])
    if kind == "text":
        return estimator.fit(["the cat sat", "the dog ran", "a cat ran"])
    if kind == "transformer" and type(estimator).__name__ in {"OneHotEncoder"}:
        return estimator.fit(np.round(x))
    return estimator.fit(x) if kind in {"transformer", "cluster"} else estimator.fit(x, y_class)


def sklearn_models(dest: Path, *, wide: bool = False) -> Iterator[Path]:
    """Fitted scikit-learn estimators saved with pickle, joblib and compressed joblib."""
    import joblib

    models = _representative_sklearn() + (_all_sklearn() if wide else [])
    for i, (name, estimator, kind) in enumerate(models):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fitted = _fit(estimator, kind)
            except Exception:
                if name.startswith("all_"):
                    continue  # the wide net skips estimators that need special data
                raise
        pkl = dest / f"sklearn_{name}.pkl"
        pkl.write_bytes(pickle.dumps(fitted, protocol=(2, 4, 5)[i % 3]))
        yield pkl
        yield Path(joblib.dump(fitted, dest / f"sklearn_{name}.joblib")[0])
        if i % 4 == 0:
            codec = ("zlib", "gzip", "bz2", "xz", "lzma")[(i // 4) % 5]
            yield Path(joblib.dump(fitted, dest / f"sklearn_{name}_{codec}.joblib", compress=(codec, 3))[0])


def xgboost_models(dest: Path) -> Iterator[Path]:
    import joblib
    import xgboost as xgb

    x, y_class, y_reg = _data()
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(x, y_class)
    reg = xgb.XGBRegressor(n_estimators=3, max_depth=2).fit(x, y_reg)
    (dest / "xgboost_classifier.pkl").write_bytes(pickle.dumps(clf))
    yield dest / "xgboost_classifier.pkl"
    yield Path(joblib.dump(reg, dest / "xgboost_regressor.joblib")[0])
    (dest / "xgboost_booster.pkl").write_bytes(pickle.dumps(clf.get_booster()))
    yield dest / "xgboost_booster.pkl"
    clf.save_model(dest / "xgboost_native.ubj")
    yield dest / "xgboost_native.ubj"
    clf.save_model(dest / "xgboost_native.json")
    yield dest / "xgboost_native.json"


def lightgbm_models(dest: Path) -> Iterator[Path]:
    import joblib
    import lightgbm as lgb

    x, y_class, y_reg = _data(n=60)
    clf = lgb.LGBMClassifier(n_estimators=3, verbose=-1, min_child_samples=2).fit(x, y_class)
    reg = lgb.LGBMRegressor(n_estimators=3, verbose=-1, min_child_samples=2).fit(x, y_reg)
    (dest / "lightgbm_classifier.pkl").write_bytes(pickle.dumps(clf))
    yield dest / "lightgbm_classifier.pkl"
    yield Path(joblib.dump(reg, dest / "lightgbm_regressor.joblib")[0])
    (dest / "lightgbm_booster.pkl").write_bytes(pickle.dumps(clf.booster_))
    yield dest / "lightgbm_booster.pkl"
    clf.booster_.save_model(str(dest / "lightgbm_native.txt"))
    yield dest / "lightgbm_native.txt"


def numpy_scipy_models(dest: Path) -> Iterator[Path]:
    import joblib
    import numpy as np
    from scipy import sparse, stats

    arrays = {
        "float": np.arange(12.0).reshape(3, 4), "int": np.arange(5, dtype=np.int32), "bool": np.ones(3, bool),
        "half": np.ones(2, np.float16), "complex": np.ones(2, complex), "str": np.array(["a", "bc"]),
        "bytes": np.array([b"a"]), "object": np.array(["a", 1, None], dtype=object),
        "datetime": np.array(["2024-01-01"], dtype="datetime64[D]"),
        "timedelta": np.array([1], dtype="timedelta64[s]"),
        "structured": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
        "scalar": np.float64(1.5), "int_scalar": np.int64(3), "masked": np.ma.masked_array([1, 2], mask=[0, 1]),
        "random_state": np.random.RandomState(0), "generator": np.random.default_rng(0),
        "pcg": np.random.Generator(np.random.PCG64DXSM(1)), "philox": np.random.Generator(np.random.Philox(1)),
        "sfc": np.random.Generator(np.random.SFC64(1)), "mt": np.random.Generator(np.random.MT19937(1)),
    }
    mat = np.eye(4)
    matrices = {f"sparse_{fmt}": sparse.csr_matrix(mat).asformat(fmt)
                for fmt in ("csr", "csc", "coo", "lil", "dok", "bsr", "dia")}
    matrices.update({f"sparse_array_{fmt}": sparse.csr_array(mat).asformat(fmt) for fmt in ("csr", "csc", "coo")})
    distributions = {"norm": stats.norm(0, 1), "uniform": stats.uniform(0, 1), "loguniform": stats.loguniform(1e-3, 1),
                     "expon": stats.expon()}  # randint is left out: it pickles builtins.getattr (refused)
    for group, items in (("numpy", arrays), ("scipy", {**matrices, **distributions})):
        path = dest / f"{group}_objects.pkl"
        path.write_bytes(pickle.dumps(items))
        yield path
        yield Path(joblib.dump(items, dest / f"{group}_objects.joblib")[0])
    np.save(dest / "numpy_array.npy", arrays["float"])
    yield dest / "numpy_array.npy"
    np.savez(dest / "numpy_arrays.npz", a=arrays["float"], b=arrays["int"])
    yield dest / "numpy_arrays.npz"


def torch_models(dest: Path) -> Iterator[Path]:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    torch.save(net.state_dict(), dest / "torch_state_dict.pt")
    yield dest / "torch_state_dict.pt"
    torch.save(net.state_dict(), dest / "torch_legacy.pth", _use_new_zipfile_serialization=False)
    yield dest / "torch_legacy.pth"
    optim = torch.optim.Adam(net.parameters())
    net(torch.randn(3, 4)).sum().backward()
    optim.step()
    checkpoint = {"model": net.state_dict(), "optimizer": optim.state_dict(), "epoch": 3,
                  "tensors": [torch.zeros(2, dtype=t) for t in (torch.float16, torch.bfloat16, torch.int64,
                                                                 torch.int8, torch.uint8, torch.bool,
                                                                 torch.float64, torch.int32, torch.int16,
                                                                 torch.complex64, torch.complex128)],
                  "param": torch.nn.Parameter(torch.ones(2)), "size": torch.Size([2, 3])}
    torch.save(checkpoint, dest / "torch_checkpoint.ckpt")
    yield dest / "torch_checkpoint.ckpt"
    torch.save(net.state_dict(), dest / "pytorch_model.bin")
    yield dest / "pytorch_model.bin"
    torch.jit.save(torch.jit.script(net.eval()), str(dest / "torch_script.pt"))
    yield dest / "torch_script.pt"
    torch.jit.save(torch.jit.trace(net.eval(), torch.randn(2, 4)), str(dest / "torch_traced.pt"))
    yield dest / "torch_traced.pt"


def no_code_models(dest: Path) -> Iterator[Path]:
    """ONNX, safetensors and Keras files: formats that carry no code."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y_class, _ = _data()
    onnx_model = to_onnx(LogisticRegression().fit(x, y_class), x[:1].astype(np.float32))
    (dest / "model.onnx").write_bytes(onnx_model.SerializeToString())
    yield dest / "model.onnx"
    try:
        import torch
        from safetensors.torch import save_file

        save_file({"w": torch.ones(2, 2)}, str(dest / "model.safetensors"))
        yield dest / "model.safetensors"
    except ImportError:
        pass
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    net = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    net.save(dest / "model.keras")
    yield dest / "model.keras"


BENIGN: dict[str, Callable[[Path], Iterator[Path]]] = {
    "scikit-learn": sklearn_models, "xgboost": xgboost_models, "lightgbm": lightgbm_models,
    "numpy+scipy": numpy_scipy_models, "torch": torch_models, "no-code": no_code_models,
}


# -- malicious ----------------------------------------------------------------------------------
# Raw opcodes, so each file is exactly the attack it names (pickle.dumps would normalise them).

PROTO = b"\x80\x04"


def _u(text: str) -> bytes:  # SHORT_BINUNICODE
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _global(module: str, name: str) -> bytes:  # protocol-0 GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _stack_global(module: str, name: str) -> bytes:
    return _u(module) + _u(name) + b"\x93"


CMD = "touch /tmp/dockyard-pwned"

MALICIOUS: dict[str, bytes] = {
    # the published bypasses of deny lists (picklescan GHSA-vvpj-8cmc-gx39, picklescan issue 66)
    "uuid_get_command_stdout": PROTO + _global("uuid", "_get_command_stdout") + _u("sh") + _u("-c") + _u(CMD)
    + b"\x87R.",
    "pkgutil_resolve_name": PROTO + _global("pkgutil", "resolve_name") + _u("os:system") + b"\x85R" + _u(CMD)
    + b"\x85R.",
    "operator_methodcaller": PROTO + _global("_operator", "methodcaller") + _u("system") + _u(CMD) + b"\x86R"
    + _global("pkgutil", "resolve_name") + _u("os") + b"\x85R" + b"\x85R.",
    # our own variants
    "stack_global_os_system": PROTO + _stack_global("os", "system") + _u(CMD) + b"\x85R.",
    "memo_stack_global": PROTO + _u("subprocess") + b"\x94" + _u("getoutput") + b"\x94" + b"00"
    + b"h\x00h\x01\x93" + _u(CMD) + b"\x85R.",
    "inst_opcode": b"(" + b"S'" + CMD.encode() + b"'\n" + b"ios\nsystem\n.",
    "obj_opcode": PROTO + b"(" + _global("subprocess", "check_output") + _u(CMD) + b"o.",
    "builtins_getattr_chain": PROTO + _global("builtins", "getattr") + _global("builtins", "__import__") + _u("os")
    + b"\x85R" + _u("system") + b"\x86R" + _u(CMD) + b"\x85R.",
    "dotted_name_in_allowed_module": PROTO + _stack_global("collections", "os.system") + _u(CMD) + b"\x85R.",
    "not_on_allow_list": PROTO + _global("webbrowser", "open") + _u("http://127.0.0.1:9/") + b"\x85R.",
    "lesser_known_callable": PROTO + _global("timeit", "timeit") + _u("__import__('os').system('true')")
    + b"\x85R.",
    "sklearn_lookalike": PROTO + _global("sklearn.utils", "_testing") + b".",
    "numpy_testing_runstring": PROTO + _global("numpy.testing._private.utils", "runstring") + _u("1") + b"}\x86R.",
    "computed_stack_global": PROTO + b"J\x01\x00\x00\x00J\x02\x00\x00\x00\x93)R.",
    "stack_global_from_reduce": PROTO + _global("builtins", "str") + _u("os") + b"\x85R" + _u("system") + b"\x93"
    + _u(CMD) + b"\x85R.",
    "ext_opcode": PROTO + b"\x82\x01" + _u(CMD) + b"\x85R.",
    "second_stream_after_stop": PROTO + b"K\x01." + PROTO + _global("os", "system") + _u(CMD) + b"\x85R.",
}


def _nested_object_array_joblib() -> bytes:
    """A joblib file whose object array holds the payload: joblib unpickles it with plain pickle."""
    import joblib
    import numpy as np

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return (os.system, (CMD,))

    buf = io.BytesIO()
    joblib.dump({"coef": np.ones(3), "objects": np.array([Payload(), 1], dtype=object)}, buf)
    return buf.getvalue()


def _torch_zip(data_pkl: bytes, *, script: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/data/0", b"\x00" * 16)
        if script:
            zf.writestr("archive/constants.pkl", PROTO + b").")
            zf.writestr("archive/code/__torch__/m.py", "def forward(self):\n    pass\n")
    return buf.getvalue()


def _npy_object_array(payload: bytes) -> bytes:
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def _torch_legacy(payload: bytes) -> bytes:
    """torch.save's legacy layout (magic, protocol, sys info, data, keys) with a protocol-0 payload
    as the data pickle: torch.load unpickles it whatever its protocol."""
    head = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    head += pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    return head + payload + pickle.dumps([], protocol=2)


def malicious_models(dest: Path) -> Iterator[Path]:
    """Every attack as .pkl, the bypasses also inside joblib-compressed, torch-zip and .npy containers."""
    import zlib

    for name, body in MALICIOUS.items():
        path = dest / f"{name}.pkl"
        path.write_bytes(body)
        yield path
    for name in ("uuid_get_command_stdout", "pkgutil_resolve_name", "operator_methodcaller", "memo_stack_global"):
        body = MALICIOUS[name]
        (dest / f"{name}_zlib.joblib").write_bytes(zlib.compress(body))
        yield dest / f"{name}_zlib.joblib"
        (dest / f"{name}_torch.pt").write_bytes(_torch_zip(body))
        yield dest / f"{name}_torch.pt"
        (dest / f"{name}_torchscript.pt").write_bytes(_torch_zip(body, script=True))
        yield dest / f"{name}_torchscript.pt"
        (dest / f"{name}_pytorch_model.bin").write_bytes(_torch_zip(body))
        yield dest / f"{name}_pytorch_model.bin"
        (dest / f"{name}.npy").write_bytes(_npy_object_array(body))
        yield dest / f"{name}.npy"
    (dest / "torch_legacy_protocol0_payload.pth").write_bytes(_torch_legacy(MALICIOUS["inst_opcode"]))
    yield dest / "torch_legacy_protocol0_payload.pth"
    (dest / "joblib_object_array.joblib").write_bytes(_nested_object_array_joblib())
    yield dest / "joblib_object_array.joblib"
    (dest / "torchscript_with_python_import.pt").write_bytes(
        _torch_zip(PROTO + _global("__torch__.os", "system") + b".", script=False))
    yield dest / "torchscript_with_python_import.pt"
