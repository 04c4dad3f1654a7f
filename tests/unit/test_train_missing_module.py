"""A training run that fails on a missing module says which one and what to do."""

from __future__ import annotations

from dockyard.train import missing_module_hint

MLFLOW_27 = """\
[   1.5s]   File "/opt/venv/lib/python3.10/site-packages/mlflow/utils/requirements_utils.py", line 20, in <module>
[   1.5s]     import pkg_resources  # noqa: TID251
[   1.5s] ModuleNotFoundError: No module named 'pkg_resources'
"""


def test_pkg_resources_names_the_setuptools_release_that_removed_it() -> None:
    hint = missing_module_hint(MLFLOW_27)
    assert "setuptools<81" in hint and "pkg_resources" in hint


def test_another_missing_module_is_named_with_where_to_add_it() -> None:
    hint = missing_module_hint("Traceback ...\nModuleNotFoundError: No module named 'bentoml.models'\n")
    assert "'bentoml.models'" in hint and "dependency file" in hint and "dockyard plan" in hint


def test_the_last_missing_module_is_the_one_named() -> None:
    tail = "ModuleNotFoundError: No module named 'a'\n...\nModuleNotFoundError: No module named 'b'\n"
    assert "'b'" in missing_module_hint(tail)


def test_other_failures_get_no_hint() -> None:
    assert missing_module_hint("ValueError: could not convert string to float: 'x'\n") == ""
    assert missing_module_hint("ImportError: cannot import name 'x' from 'y'\n") == ""
