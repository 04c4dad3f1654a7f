"""A dependency file that leaves out a framework the code imports is named in the warnings."""

from __future__ import annotations

from pathlib import Path

from dockyard.detect import detect
from projectfiles import write

SAVE_MODEL = "import joblib\nimport pandas as pd\nfrom xgboost import XGBClassifier\n" \
             "joblib.dump(XGBClassifier().fit(pd.DataFrame({'x': [0, 1]}), [0, 1]), 'models/m.pkl')\n"


def test_an_imported_framework_missing_from_requirements_txt_is_named(tmp_path: Path) -> None:
    # the Kaggle-style pattern: requirements.txt lists streamlit, pandas, scikit-learn; save_model.py imports xgboost
    write(tmp_path, {"requirements.txt": "streamlit==1.26.0\npandas==1.5.3\nscikit-learn>=1.4.2\n",
                     "save_model.py": SAVE_MODEL, "app/streamlit_app.py": "import sklearn\n"})
    warnings = detect(tmp_path).warnings
    hits = [w for w in warnings if "does not list" in w]
    assert hits == ["requirements.txt does not list xgboost (imported in save_model.py): it is installed only if "
                    "another requirement depends on it, else that code fails with ModuleNotFoundError; add it to "
                    "requirements.txt"]


def test_listed_optional_or_inferred_frameworks_are_not_named(tmp_path: Path) -> None:
    write(tmp_path / "listed", {"requirements.txt": "xgboost>=2\npandas\njoblib\n", "save_model.py": SAVE_MODEL})
    assert not [w for w in detect(tmp_path / "listed").warnings if "does not list" in w]
    write(tmp_path / "optional", {"requirements.txt": "pandas\n",
                                  "fit.py": "try:\n    import xgboost\nexcept ImportError:\n    xgboost = None\n"})
    assert not [w for w in detect(tmp_path / "optional").warnings if "does not list" in w]
    write(tmp_path / "nofile", {"save_model.py": SAVE_MODEL})  # no file: the imports are installed
    assert not [w for w in detect(tmp_path / "nofile").warnings if "does not list" in w]


# A pickle that builds an xgboost.sklearn.XGBClassifier (opcodes only: nothing here imports xgboost).
XGB_PICKLE = b"\x80\x02cxgboost.sklearn\nXGBClassifier\nq\x00)\x81q\x01}q\x02b."


def test_a_pickled_xgboost_model_makes_xgboost_the_primary_framework(tmp_path: Path) -> None:
    # the Kaggle-style repository's models/churn_model.pkl (joblib of an XGBClassifier) was called a
    # scikit-learn model from its .pkl suffix
    write(tmp_path, {"requirements.txt": "scikit-learn\nxgboost\n", "save_model.py": SAVE_MODEL,
                     "nb.py": "import sklearn\n"})
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "churn_model.pkl").write_bytes(XGB_PICKLE)
    found = detect(tmp_path)
    assert found.serve_entry == "models/churn_model.pkl"
    assert found.primary_framework == "xgboost"
    assert any(r.what == "primary framework: xgboost" and "is a xgboost model" in r.why for r in found.reasons)


def test_a_pickled_sklearn_model_stays_scikit_learn(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "scikit-learn\nxgboost\n", "fit.py": "import sklearn, xgboost\n"})
    (tmp_path / "model.pkl").write_bytes(b"\x80\x02csklearn.linear_model._base\nLinearRegression\nq\x00)\x81q\x01}q\x02b.")
    assert detect(tmp_path).primary_framework == "scikit-learn"
