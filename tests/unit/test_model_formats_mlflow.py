"""An MLflow model folder is a model format: its MLmodel file marks it (contract.py), and the
runtime's zero-code loader is picked from the same registry."""

from __future__ import annotations

from pathlib import Path

from dockyard.runtime import contract
from dockyard.runtime.loaders import framework_for


def test_mlmodel_file_names_the_mlflow_format_by_its_exact_name() -> None:
    fmt = contract.model_format("mlruns/0/models/m-1/artifacts/MLmodel")
    assert fmt is not None and fmt.name == "mlflow" and fmt.loader == "mlflow" and not fmt.pickle_family
    assert contract.MODEL_FILENAMES == ("MLmodel",)
    assert contract.model_format("notes/MLmodel.md") is None  # a name, not a suffix
    assert contract.model_format("mlmodel") is None


def test_an_mlflow_folder_counts_as_a_model_and_ranks_before_the_pickle_inside_it(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  sklearn:\n    pickled_model: model.pkl\n")
    (folder / "model.pkl").write_bytes(b"\x80\x04N.")
    (folder / "requirements.txt").write_text("mlflow\n")
    found = sorted(p.name for p in folder.iterdir() if contract.looks_like_model(str(p)))
    assert found == ["MLmodel", "model.pkl"]  # sorted(): MLmodel first, so planning serves the folder
    assert [f.name for f in contract.MODEL_FORMATS].index("mlflow") == 0
    assert framework_for(folder / "MLmodel") == "mlflow"


def test_an_xgboost_text_dump_is_not_a_model_but_the_booster_json_is(tmp_path: Path) -> None:
    """xgboost's basic walkthrough leaves dump.raw.txt (dump_model) beside model-0.json; only the
    JSON can be loaded, so serving a stored version of it must not pick the dump (sorted first)."""
    (tmp_path / "dump.raw.txt").write_text("booster[0]:\n0:[f29<2.00001] yes=1,no=2,missing=2\n\t1:leaf=1.8\n")
    (tmp_path / "model-0.json").write_text('{"learner": {"attributes": {}}, "version": [3, 1, 0]}')
    (tmp_path / "model.txt").write_text("tree\nversion=v4\nnum_class=1\n")
    found = sorted(p.name for p in tmp_path.iterdir() if contract.looks_like_model(str(p)))
    assert found == ["model-0.json", "model.txt"]
