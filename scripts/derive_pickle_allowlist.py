"""Regenerate src/dockyard/scan/pickle_allowlist.json from real saved models.

Saves fitted models with the installed scikit-learn, xgboost, lightgbm, numpy, scipy, joblib and
torch (the benign corpus in tests/unit/model_corpus.py, plus every estimator
``sklearn.utils.all_estimators`` lists), walks each file's pickles without loading them, and
records every (module, name) they import, grouped by framework. The hand-written "python" section
(stdlib types pickle itself needs) is kept as it is. Run it after a framework release:

    .venv/bin/python scripts/derive_pickle_allowlist.py

and review the diff: every new pair is a callable a model file may now call while loading.
"""

from __future__ import annotations

import json
import warnings
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "unit"))
sys.path.insert(0, str(ROOT / "src"))

import model_corpus  # noqa: E402

from dockyard.scan.models import pickle_imports  # noqa: E402

OUT = ROOT / "src" / "dockyard" / "scan" / "pickle_allowlist.json"
FRAMEWORK_OF_ROOT = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm", "numpy": "numpy",
                     "scipy": "scipy", "joblib": "joblib", "torch": "torch", "__torch__": "torch"}
DISTRIBUTIONS = ("scikit-learn", "xgboost", "lightgbm", "numpy", "scipy", "joblib", "torch")


def main() -> int:
    warnings.simplefilter("ignore")
    current = json.loads(OUT.read_text())
    python = {tuple(p) for p in current["frameworks"]["python"]}
    found: dict[str, set[tuple[str, str]]] = {}
    strays: set[tuple[str, str, str]] = set()
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp)
        makers = dict(model_corpus.BENIGN)
        makers["scikit-learn"] = lambda d: model_corpus.sklearn_models(d, wide=True)
        makers.pop("no-code")
        for maker in makers.values():
            for path in maker(dest):
                try:
                    _, imports = pickle_imports(path)
                except Exception as exc:  # noqa: BLE001 (no-code formats have no pickle: skip)
                    print(f"skip {path.name}: {exc}", file=sys.stderr)
                    continue
                for module, name in imports:
                    if module.startswith("__torch__"):
                        continue  # TorchScript class names: allowed by rule inside TorchScript archives
                    framework = FRAMEWORK_OF_ROOT.get(module.split(".")[0])
                    if framework is None:
                        if (module, name) not in python:
                            strays.add((module, name, path.name))
                        continue
                    found.setdefault(framework, set()).add((module, name))
                    if module.startswith("numpy._core"):  # numpy 1.x wrote the same objects as numpy.core
                        found[framework].add(("numpy.core" + module[len("numpy._core"):], name))
    # FunctionTransformer(np.log1p) and friends pickle the ufunc by name: every numpy ufunc is
    # elementwise math with no side effects, so the whole family is allowed, not just the corpus'.
    import numpy

    found.setdefault("numpy", set()).update(
        ("numpy", name) for name in dir(numpy) if isinstance(getattr(numpy, name, None), numpy.ufunc))
    if strays:
        print("imports outside every framework and not in the python section (review, then add by hand):")
        for module, name, where in sorted(strays):
            print(f"  {module}.{name}  (in {where})")
    frameworks = {"python": sorted(python)}
    for framework in sorted(found):
        frameworks[framework] = sorted(found[framework])
    doc = {
        "_about": current["_about"],
        "generated_with": {d: metadata.version(d if d != "xgboost" else "xgboost-cpu") if _has(d) else None
                           for d in DISTRIBUTIONS},
        "frameworks": frameworks,
    }
    OUT.write_text(_dump(doc))
    print(f"wrote {OUT.relative_to(ROOT)}: " + ", ".join(f"{k} {len(v)}" for k, v in frameworks.items()))
    return 1 if strays else 0


def _dump(doc: dict[str, object]) -> str:
    """JSON with one allow-listed pair per line, so a review diff shows each new callable."""
    lines = ["{", f' "_about": {json.dumps(doc["_about"])},',
             f' "generated_with": {json.dumps(doc["generated_with"])},', ' "frameworks": {']
    sections = list(doc["frameworks"].items())  # type: ignore[attr-defined]
    for i, (framework, pairs) in enumerate(sections):
        lines.append(f"  {json.dumps(framework)}: [")
        lines.extend(f"   {json.dumps(list(p))}" + ("," if j < len(pairs) - 1 else "") for j, p in enumerate(pairs))
        lines.append("  ]" + ("," if i < len(sections) - 1 else ""))
    return "\n".join(lines + [" }", "}"]) + "\n"


def _has(dist: str) -> bool:
    try:
        metadata.version(dist if dist != "xgboost" else "xgboost-cpu")
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
