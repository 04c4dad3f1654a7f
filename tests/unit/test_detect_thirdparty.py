"""Requirements inferred from imports when a project has no dependency file (issue 11, bug 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from dockyard.detect import detect
from dockyard.detect.imports import scan_imports
from dockyard.detect.thirdparty import import_table, infer_requirements
from dockyard.planning import make_plan
from projectfiles import write


def test_non_framework_imports_are_installed_with_the_file_that_imports_them(tmp_path: Path) -> None:
    write(tmp_path, {
        "examples/simple.py": "import pandas as pd\nfrom sklearn.metrics import r2_score\nimport lightgbm as lgb\n",
        "examples/plot.py": "import matplotlib.pyplot as plt\nfrom PIL import Image\nimport yaml, cv2\n",
    })
    found = detect(tmp_path)
    assert found.inferred_requirements
    assert found.requirements == ("scikit-learn", "lightgbm", "matplotlib", "opencv-python-headless", "pandas",
                                  "pillow", "pyyaml")
    why = dict(found.inferred_from)
    assert why["pandas"] == "`import pandas` in examples/simple.py"
    assert why["pillow"] == "`import PIL` in examples/plot.py"


def test_stdlib_relative_and_own_modules_are_not_requirements(tmp_path: Path) -> None:
    write(tmp_path, {
        "train.py": ("import os, json, sys, pathlib, __future__\nfrom . import sibling\nimport helpers\n"
                     "from mypkg.core import f\nimport numpy\n"),
        "helpers.py": "",
        "mypkg/__init__.py": "",
        "mypkg/core.py": "from .util import g\n",
        "src/srcpkg/__init__.py": "",
        "tools/run.py": "import srcpkg\n",
    })
    scan = scan_imports(tmp_path)
    assert set(scan.modules) == {"numpy"}
    assert detect(tmp_path).requirements == ("numpy",)


def test_a_folder_of_scripts_does_not_hide_the_package_it_is_named_after(tmp_path: Path) -> None:
    """LightGBM's examples keep their dask demos in python-guide/dask/: `import dask` is still dask."""
    write(tmp_path, {"python-guide/dask/regression.py": "import dask.array as da\nimport distributed\n"})
    assert detect(tmp_path).requirements == ("dask", "distributed")


def test_unknown_and_refused_imports_are_named_in_warnings_not_installed(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.py": "import numpy\nimport some_private_helper_lib\n",
        "gpu.py": "import cupy as cp\n",
    })
    found = detect(tmp_path)
    assert found.requirements == ("numpy",)
    unknown = [w for w in found.warnings if "some_private_helper_lib (a.py)" in w]
    assert unknown and "requirements.txt" in unknown[0]
    refused = [w for w in found.warnings if w.startswith("not installed: cupy (gpu.py)")]
    assert refused and "cupy-cuda12x" in refused[0]


def test_imports_guarded_by_import_error_are_optional(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": ("import numpy\ntry:\n    import ubjson\nexcept ImportError:\n    ubjson = None\n"
                              "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pandas\n")})
    found = detect(tmp_path)
    assert found.requirements == ("numpy",)
    assert any(r.what == "optional imports not installed: pandas, ubjson" for r in found.reasons)


def test_an_import_that_is_required_somewhere_is_installed_even_if_optional_elsewhere(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "try:\n    import pandas\nexcept ImportError:\n    pass\n", "b.py": "import pandas\n"})
    assert detect(tmp_path).requirements == ("pandas",)


@pytest.mark.parametrize(("code", "backend"), [
    ('import os\nos.environ["KERAS_BACKEND"] = "jax"\nimport keras\n', "jax"),
    ('import os\nos.environ.setdefault("KERAS_BACKEND", "torch")\nimport keras\n', "torch"),
    ("import keras\n", "tensorflow"),  # keras 3's default backend
])
def test_keras_backend_set_in_the_code_is_installed(tmp_path: Path, code: str, backend: str) -> None:
    write(tmp_path, {"demo.py": code})
    found = detect(tmp_path)
    assert found.requirements == ("keras", backend)
    assert "KERAS_BACKEND" in dict(found.inferred_from)[backend]


def test_keras_backend_in_dockyard_yaml_env_wins(tmp_path: Path) -> None:
    write(tmp_path, {"demo.py": 'import os\nos.environ["KERAS_BACKEND"] = "tensorflow"\nimport keras\n',
                     "dockyard.yaml": "name: demo\nenv:\n  KERAS_BACKEND: jax\n"})
    plan = make_plan(tmp_path)
    assert [r.split("==")[0] for r in plan.requirements] == ["keras", "jax"]


def test_a_requirements_file_stays_authoritative(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "scikit-learn\n", "a.py": "import pandas\nimport sklearn\n"})
    found = detect(tmp_path)
    assert found.requirements == ("scikit-learn",) and not found.inferred_requirements


def test_plan_shows_each_inferred_requirement_its_version_and_its_file(tmp_path: Path) -> None:
    write(tmp_path, {"dockyard.yaml": "name: demo\npython: '3.11'\nframework: lightgbm\n",
                     "guide/simple.py": "import pandas\nimport lightgbm\n"})
    plan = make_plan(tmp_path)
    lines = {c.value: c.why for c in plan.choices if c.what == "inferred requirement"}
    lightgbm = next(v for v in lines if v.startswith("lightgbm=="))
    assert lines[lightgbm] == "imported in guide/simple.py"
    assert lines["pandas (unpinned: the newest release for Python 3.11 when the image is built; `dockyard lock` pins it)"] == \
        "`import pandas` in guide/simple.py"
    assert "pandas" in plan.requirements


def test_notebook_imports_count(tmp_path: Path) -> None:
    nb = {"cells": [{"cell_type": "code", "source": ["%matplotlib inline\n", "import seaborn as sns\n"]}]}
    write(tmp_path, {"explore.ipynb": json.dumps(nb)})
    assert detect(tmp_path).requirements == ("seaborn",)


def test_the_import_table_is_well_formed() -> None:
    table = import_table()
    names = table["distributions"]
    assert list(names) == sorted(names), "keep import_names.json sorted"
    assert all(canonicalize_name(d) == d for d in names.values()), "distribution names are canonical"
    assert not set(names) & set(table["not_installed"])
    assert table["keras_default_backend"] in table["keras_backends"]


def test_no_imports_no_inference(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "import os\n"})
    scan = scan_imports(tmp_path)
    assert infer_requirements(scan).requirements == ()
    assert detect(tmp_path).dependency_kind == "none" and not detect(tmp_path).inferred_requirements


def test_a_lock_pins_the_inferred_requirements_and_plan_shows_its_versions(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "import pandas\nimport yaml\n",
                     "requirements.lock": "pandas==3.1.1 \\\n    --hash=sha256:00\nPyYAML==6.0.4 \\\n    --hash=sha256:11\n",
                     "dockyard.yaml": "name: demo\ndependencies:\n  lock: requirements.lock\n"})
    plan = make_plan(tmp_path)
    lines = {c.value: c.why for c in plan.choices if c.what == "inferred requirement"}
    assert lines == {"pandas==3.1.1 (from requirements.lock)": "`import pandas` in a.py",
                     "pyyaml==6.0.4 (from requirements.lock)": "`import yaml` in a.py"}
    assert plan.locked


def test_a_framework_only_imported_under_try_except_import_error_is_not_installed(tmp_path: Path) -> None:
    write(tmp_path, {"a.py": "import numpy\ntry:\n    import torch\nexcept ImportError:\n    torch = None\n"})
    found = detect(tmp_path)
    assert found.requirements == ("numpy",)
    assert any(r.what == "optional imports not installed: torch" for r in found.reasons)


def test_a_top_folder_without_init_is_own_unless_it_names_a_known_distribution(tmp_path: Path) -> None:
    """`utils/` (no __init__.py) imported as a namespace package is the project's; a folder of
    scripts called `transformers/` does not stop `import transformers` from meaning the library
    (an installed regular package wins over a namespace folder)."""
    write(tmp_path, {"utils/io.py": "X = 1\n", "run.py": "import utils.io\n",
                     "transformers/finetune.py": "import transformers\n"})
    found = detect(tmp_path)
    assert found.requirements == ("transformers",)
    assert not any("utils" in w for w in found.warnings)
