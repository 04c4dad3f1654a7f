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
