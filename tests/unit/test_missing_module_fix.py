"""A command that dies of ModuleNotFoundError gets a fix that names the distribution to add (the
import name is often not the PyPI name) and the file to add it to."""

from __future__ import annotations

from dockyard.detect.thirdparty import missing_module_fix

TRACEBACK = """Traceback (most recent call last):
  File "/app/train.py", line 3, in <module>
    import cv2.data
ModuleNotFoundError: No module named 'cv2'
"""


def test_the_import_name_is_mapped_to_its_distribution_and_the_file_is_named() -> None:
    assert missing_module_fix(TRACEBACK, "requirements.txt") == (
        "`cv2` is not installed in the image: add opencv-python-headless (the distribution `import cv2` "
        "comes from) to requirements.txt, then run again")
    assert missing_module_fix("ModuleNotFoundError: No module named 'pandas'", "pyproject.toml") == (
        "`pandas` is not installed in the image: add pandas to pyproject.toml, then run again")
    assert missing_module_fix("ModuleNotFoundError: No module named 'sklearn.ensemble'", None).startswith(
        "`sklearn` is not installed in the image: add scikit-learn (the distribution `import sklearn` comes from) "
        "to a requirements.txt")


def test_unknown_and_refused_names_and_other_errors() -> None:
    helper = missing_module_fix("ModuleNotFoundError: No module named 'myhelpers'", "requirements.txt")
    assert helper is not None and "the distribution that provides `myhelpers`" in helper and ".dockerignore" in helper
    assert "namespace shared by many distributions" in (missing_module_fix(
        "ModuleNotFoundError: No module named 'google.cloud'", "requirements.txt") or "")
    assert missing_module_fix("ValueError: bad input", "requirements.txt") is None
    # the last one wins: the first may have been caught and survived
    both = "ModuleNotFoundError: No module named 'orjson'\n...\nModuleNotFoundError: No module named 'yaml'\n"
    assert (missing_module_fix(both, "requirements.txt") or "").startswith("`yaml` is not installed in the image: add pyyaml")


def test_pkg_resources_names_the_setuptools_release_that_removed_it() -> None:
    # mlflow 2.7 imports pkg_resources; a python_env.yaml's unpinned setuptools build dependency now
    # installs 84.x, which has none: "add setuptools" would not help, the pin does
    tail = ("    import pkg_resources  # noqa: TID251\n"
            "ModuleNotFoundError: No module named 'pkg_resources'\n")
    fix = missing_module_fix(tail, "requirements.txt") or ""
    assert "setuptools<81" in fix and "requirements.txt" in fix and "release 81" in fix
