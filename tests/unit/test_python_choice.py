"""Which Python a project gets, as `init` writes it and `plan` explains it (issue 11: other Pythons).

Ranges get dockyard's default Python (3.11) when they admit it, else the admitted one nearest to
it; exact pins keep their minor version; a Pipfile for a Python dockyard cannot build is built on
the nearest supported one from its [packages], never from the lock made for the other Python.
The table of choices and reasons is a golden file: tests/golden/plan/python_choice.txt
(``DOCKYARD_UPDATE_GOLDEN=1`` rewrites it when the wording changes on purpose).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dockyard.detect import DetectError, detect
from dockyard.planning import make_plan
from dockyard.project import init

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "plan" / "python_choice.txt"

PIPFILE_36 = ('[packages]\nnumpy = "*"\npandas = "*"\nmatplotlib = "*"\nseaborn = "*"\nscipy = "*"\n\n'
              '[dev-packages]\n\n[requires]\npython_version = "3.6"\n')
LOCK_36 = json.dumps({
    "_meta": {"requires": {"python_version": "3.6"}},
    "default": {"numpy": {"version": "==1.16.4"}, "pandas": {"version": "==0.24.2"},
                "matplotlib": {"version": "==3.1.0"}, "seaborn": {"version": "==0.9.0"}, "scipy": {"version": "==1.3.0"}},
    "develop": {},
})

CASES: dict[str, dict[str, str]] = {
    "setup.py python_requires >=3.6": {
        "setup.py": "from setuptools import setup\nsetup(name='p', install_requires=['numpy'], python_requires='>=3.6')\n"},
    "requires-python >=3.8": {"pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.8"\ndependencies = ["numpy"]\n'},
    "requires-python >=3.12": {"pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.12"\ndependencies = ["numpy"]\n'},
    "requires-python <3.11": {"pyproject.toml": '[project]\nname = "p"\nrequires-python = "<3.11"\ndependencies = ["numpy"]\n'},
    "requires-python !=3.11.*": {"pyproject.toml": '[project]\nname = "p"\nrequires-python = "!=3.11.*"\ndependencies = ["numpy"]\n'},
    "conda python>=3.8": {"environment.yml": "dependencies:\n  - python>=3.8\n  - numpy\n"},
    "runtime.txt python-3.10": {"runtime.txt": "python-3.10\n", "requirements.txt": "numpy\n"},
    ".python-version 3.12 beside >=3.8": {".python-version": "3.12\n",
                                          "pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.8"\ndependencies = ["numpy"]\n'},
    "Poetry python = 3.10.11": {"pyproject.toml": '[tool.poetry]\nname = "p"\n[tool.poetry.dependencies]\npython = "3.10.11"\nnumpy = "*"\n'},
    "conda python=3.12": {"environment.yml": "dependencies:\n  - python=3.12\n  - numpy\n"},
    "Pipfile 3.6 + Pipfile.lock": {"Pipfile": PIPFILE_36, "Pipfile.lock": LOCK_36},
    "Pipfile 3.6 with a pin, no lock": {"Pipfile": PIPFILE_36.replace('numpy = "*"', 'numpy = "==1.16.4"')},
    "Pipfile 3.15": {"Pipfile": PIPFILE_36.replace('"3.6"', '"3.15"')},
}


def _write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def _line(case: str, root: Path) -> str:
    found = detect(root)
    why = next(r.why for r in found.reasons if r.what == f"python {found.python_version}")
    out = f"{case}\n  python {found.python_version}: {why}\n"
    out += "".join(f"  warning: {w}\n" for w in found.warnings if "Python" in w)
    return out


def test_python_choices_match_the_golden_table(tmp_path: Path) -> None:
    text = "".join(_line(case, _write(tmp_path / f"p{i}", files)) for i, (case, files) in enumerate(CASES.items()))
    if os.environ.get("DOCKYARD_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    assert GOLDEN.is_file(), f"missing {GOLDEN}: run with DOCKYARD_UPDATE_GOLDEN=1 to create it"
    assert text == GOLDEN.read_text()


@pytest.mark.parametrize(("case", "python"), [
    ("setup.py python_requires >=3.6", "3.11"), ("requires-python >=3.8", "3.11"), ("requires-python >=3.12", "3.12"),
    ("requires-python <3.11", "3.10"), ("requires-python !=3.11.*", "3.12"), ("conda python>=3.8", "3.11"),
    ("runtime.txt python-3.10", "3.10"), (".python-version 3.12 beside >=3.8", "3.12"),
    ("Poetry python = 3.10.11", "3.10"), ("conda python=3.12", "3.12"),
    ("Pipfile 3.6 + Pipfile.lock", "3.10"), ("Pipfile 3.6 with a pin, no lock", "3.10"), ("Pipfile 3.15", "3.13"),
])
def test_init_writes_the_chosen_python(tmp_path: Path, case: str, python: str) -> None:
    assert init(_write(tmp_path, CASES[case])).config.python == python


def test_a_pipfile_for_python_3_6_builds_on_3_10_from_its_packages_never_from_the_3_6_lock(tmp_path: Path) -> None:
    root = _write(tmp_path, CASES["Pipfile 3.6 + Pipfile.lock"])
    init(root)
    plan = make_plan(root)
    assert plan.python == "3.10"
    assert set(plan.requirements) == {"numpy", "pandas", "matplotlib", "seaborn", "scipy"}, "the lock's ==pins are out"
    assert not plan.locked
    [warning] = [w for w in plan.warnings if "Python 3.6" in w]
    assert "Pipfile.lock pins releases made for Python 3.6 and is NOT installed" in warning
    assert "`pipenv --python 3.10 lock`" in warning
    found = detect(root)
    assert not [r for r in found.reasons if r.what.startswith("not used")], "the lock is accounted for, with its reason"
    assert any("Pipfile.lock not used: it pins releases for Python that dockyard cannot build" in r.why
               for r in found.reasons)


def test_a_pipfile_lock_for_python_3_6_without_its_pipfile_is_refused_with_how_to_relock(tmp_path: Path) -> None:
    with pytest.raises(DetectError) as caught:
        detect(_write(tmp_path, {"Pipfile.lock": LOCK_36}))
    assert "Pipfile.lock pins releases for Python 3.6, which dockyard cannot build" in caught.value.problem
    assert "no Pipfile" in caught.value.problem and "pipenv --python 3.10 lock" in (caught.value.fix or "")


def test_a_supported_pipfile_lock_is_still_installed_as_locked(tmp_path: Path) -> None:
    lock = LOCK_36.replace('"3.6"', '"3.11"').replace("==1.16.4", "==2.1.3")
    found = detect(_write(tmp_path, {"Pipfile": PIPFILE_36.replace('"3.6"', '"3.11"'), "Pipfile.lock": lock}))
    assert found.python_version == "3.11" and "numpy==2.1.3" in found.requirements
    assert not [w for w in found.warnings if "cannot build" in w]


def test_notebook_tools_are_pinned_to_releases_the_chosen_python_can_install(tmp_path: Path) -> None:
    """ipykernel 7 needs Python>=3.11: a 3.10 notebook project gets ipykernel 6.31.0 instead."""
    from dockyard.planning import notebook_packages
    from dockyard.render import render_dockerfile

    assert "ipykernel==7.4.0" in notebook_packages("runner", "3.11")
    assert notebook_packages("runner", "3.10") == ("nbclient==0.11.0", "ipykernel==6.31.0")
    assert notebook_packages("jupyter", "3.10") == ("jupyterlab==4.6.6", "ipykernel==6.31.0")
    root = _write(tmp_path, {"runtime.txt": "python-3.10\n", "requirements.txt": "numpy\n",
                             "index.ipynb": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})})
    init(root)
    text = render_dockerfile(make_plan(root), dev=True)
    assert "ipykernel==6.31.0" in text and "ipykernel==7" not in text


@pytest.mark.parametrize(("files", "by"), [
    ({"runtime.txt": "python-3.10\n", "requirements.txt": "numpy\n"}, "runtime.txt"),
    ({"Pipfile.lock": LOCK_36.replace('"3.6"', '"3.11"').replace("==1.16.4", "==2.1.3")}, "Pipfile.lock"),
])
def test_a_dockyard_yaml_python_other_than_the_projects_pin_is_a_plan_warning(
        tmp_path: Path, files: dict[str, str], by: str) -> None:
    root = _write(tmp_path, files)
    init(root)
    assert not [w for w in make_plan(root).warnings if "pins Python" in w], "init wrote the pinned one"
    config = root / "dockyard.yaml"
    pinned = detect(root).python_version
    config.write_text(config.read_text().replace(f"python: '{pinned}'", "python: '3.12'"))
    [warning] = [w for w in make_plan(root).warnings if "pins Python" in w]
    assert warning.startswith(f"dockyard.yaml says python 3.12, but {by} pins Python {pinned}")


def test_a_range_or_dockyards_own_fallback_is_no_pin_to_warn_about(tmp_path: Path) -> None:
    for i, case in enumerate(("requires-python >=3.8", "Pipfile 3.6 + Pipfile.lock")):
        root = _write(tmp_path / str(i), CASES[case])
        init(root)
        config = root / "dockyard.yaml"
        config.write_text(config.read_text().replace(f"python: '{detect(root).python_version}'", "python: '3.12'"))
        assert not [w for w in make_plan(root).warnings if "pins Python" in w], case
