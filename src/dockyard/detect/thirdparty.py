"""Requirements inferred from imports, for a project with no dependency file.

Without a requirements file the code is the only record of what it needs: ``import pandas``
needs pandas in the image as much as ``import lightgbm`` needs LightGBM. The table in
``import_names.json`` (edit it, not this code) says what each import installs as
(``sklearn`` -> scikit-learn, ``PIL`` -> pillow, ``cv2`` -> opencv-python-headless). Only names in
the table are installed: an import that is not there may be a helper module beside the script,
a typo, or a PyPI name taken by someone else, and installing a guess from a public index is how
dependency confusion happens. Those are named in a plan warning instead, with the fix (a
requirements.txt). Imports that only sit in ``try: ... except ImportError`` are optional: the code
runs without them, so they are not installed.

keras 3 imports its backend on ``import keras``: the value a script gives ``KERAS_BACKEND``
(``os.environ["KERAS_BACKEND"] = "jax"``) or dockyard.yaml's ``env`` chooses it, else keras uses
tensorflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from .imports import ImportScan


#: setuptools 81 removed pkg_resources, which older releases of many packages (mlflow 2.x...) import
#: at module level; builds take a setuptools below it when one of them is installed (render/dockerfile.py)
SETUPTOOLS_WITHOUT_PKG_RESOURCES = "81"
LAST_SETUPTOOLS_WITH_PKG_RESOURCES = "80.9.0"


@dataclass(frozen=True)
class Inferred:
    requirement: str  # a PyPI distribution name
    why: str  # "imported in a.py, b.py" / "KERAS_BACKEND=jax in demo.py"


@dataclass(frozen=True)
class Inference:
    requirements: tuple[Inferred, ...]  # frameworks first (FRAMEWORKS order), then by name
    warnings: tuple[str, ...]
    optional: tuple[str, ...]  # import names only used under try/except ImportError


@cache
def import_table() -> Mapping[str, Any]:
    raw = json.loads(resources.files(__package__).joinpath("import_names.json").read_text("utf-8"))
    return MappingProxyType(raw)


def infer_requirements(scan: ImportScan, *, keras_backend: str | None = None) -> Inference:
    """What to install for a project whose imports are ``scan`` (``keras_backend``: dockyard.yaml's
    env KERAS_BACKEND, which wins over a value set in the code)."""
    table = import_table()
    names: dict[str, str] = table["distributions"]
    refused: dict[str, str] = table["not_installed"]
    frameworks = [Inferred(fw, f"imported in {_files(files)}") for fw, files in scan.frameworks.items()
                  if fw not in scan.optional_frameworks]
    out: list[Inferred] = []
    unknown, skipped = [], []
    for module, files in scan.modules.items():
        if module in scan.optional:
            continue
        if module in names:
            out.append(Inferred(names[module], f"`import {module}` in {_files(files)}"))
        elif module in scan.own_folders:
            continue  # the project's own folder, imported as a namespace package
        elif module in refused:
            skipped.append(f"{module} ({_files(files)}): {refused[module]}")
        else:
            unknown.append(f"{module} ({_files(files)})")
    out = frameworks + sorted(out, key=lambda i: i.requirement)
    if "keras" in scan.frameworks and "keras" not in scan.optional_frameworks:
        out += _keras_backend(scan, keras_backend, table)
    warnings = []
    if unknown:
        warnings.append(
            "not installed: " + "; ".join(unknown) + ". dockyard installs only imports its table maps to a PyPI "
            "distribution (detect/import_names.json), never a guessed name; if these come from PyPI, list them "
            "in a requirements.txt (then that file decides what is installed)")
    warnings += [f"not installed: {s}" for s in skipped]
    optional = sorted({*scan.optional, *scan.optional_frameworks})
    return Inference(tuple(_dedupe(out)), tuple(warnings), tuple(optional))


def _keras_backend(scan: ImportScan, configured: str | None, table: Mapping[str, Any]) -> list[Inferred]:
    backends: dict[str, str] = table["keras_backends"]
    if configured:
        chosen, why = configured.strip().lower(), f"KERAS_BACKEND={configured} in dockyard.yaml env"
    elif scan.keras_backends:
        chosen, files = next(iter(scan.keras_backends.items()))
        why = f"KERAS_BACKEND={chosen} in {_files(files)}"
    else:
        chosen = table["keras_default_backend"]
        why = "keras's default backend (nothing sets KERAS_BACKEND)"
    dist = backends.get(chosen)
    return [Inferred(dist, why)] if dist else []


def _dedupe(items: list[Inferred]) -> list[Inferred]:
    seen: dict[str, Inferred] = {}
    for item in items:
        seen.setdefault(item.requirement, item)
    return list(seen.values())


def _files(files: tuple[str, ...]) -> str:
    more = f" and {len(files) - 3} more" if len(files) > 3 else ""
    return ", ".join(files[:3]) + more


_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '(?P<name>[A-Za-z_][\w.]*)'")


def missing_module_fix(output: str, dependency_file: str | None) -> str | None:
    """The fix for a command that died of ``ModuleNotFoundError`` (the last one in ``output``): which
    distribution to add, and where (``import cv2`` installs as opencv-python-headless). None when
    the output has none."""
    found = list(_NO_MODULE.finditer(output))
    if not found:
        return None
    module = found[-1].group("name").split(".")[0]
    if module == "pkg_resources":  # old releases (mlflow 2.x...) import it; newer setuptools no longer ship it
        where = dependency_file or "a requirements.txt"
        cut = SETUPTOOLS_WITHOUT_PKG_RESOURCES
        return (f"`pkg_resources` is not in the image's setuptools: setuptools removed it in release {cut}, and "
                f"code (or a package it imports) still needs it: add `setuptools<{cut}` to {where}, or upgrade the "
                "package that imports it, then run again")
    table = import_table()
    where = dependency_file or "a requirements.txt (dockyard then installs it, and stops guessing from imports)"
    if module in table["not_installed"]:
        return f"`{module}` is not installed in the image: {table['not_installed'][module]}"
    dist = table["distributions"].get(module)
    what = f"add {dist} (the distribution `import {module}` comes from)" if dist and dist != module else \
        f"add {module}" if dist else f"add the distribution that provides `{module}` (if it is a file of the " \
        "project, check that it is not left out by .dockerignore)"
    return f"`{module}` is not installed in the image: {what} to {where}, then run again"
