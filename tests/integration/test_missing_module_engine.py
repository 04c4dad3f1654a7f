"""A requirements.txt that forgot a package: `dockyard run` and `dockyard train` fail with the
command's own ModuleNotFoundError, and dockyard's fix names the distribution (not the import name)
and the file to add it to."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from dockyard.engine import Engine
from dockyardcli import dockyard_cli
from projectfiles import write


def test_run_and_train_name_the_distribution_a_requirements_file_forgot(engine: Engine, tmp_path: Path) -> None:
    name = f"forgot-{uuid.uuid4().hex[:8]}"
    proj = write(tmp_path / name, {
        "requirements.txt": "numpy\n",  # train.py also imports yaml (PyYAML), which is not listed
        "train.py": "import numpy\nimport yaml\nprint('never here')\n",
        "dockyard.yaml": f"name: {name}\npython: '3.11'\ntrain: {{command: python train.py}}\n"
                         "dependencies: {file: requirements.txt, kind: requirements}\n",
    })

    def dockyard(*args: str) -> subprocess.CompletedProcess[str]:
        return dockyard_cli(*args, home=tmp_path / "home", timeout=900)

    fix = "`yaml` is not installed in the image: add pyyaml (the distribution `import yaml` comes from) to requirements.txt"
    try:
        ran = dockyard("run", str(proj), "--", "python", "train.py")
        assert ran.returncode == 1 and "ModuleNotFoundError: No module named 'yaml'" in ran.stdout + ran.stderr
        assert f"hint: {fix}" in " ".join(ran.stderr.split()), ran.stderr[-2000:]
        trained = dockyard("train", str(proj), "--store", str(tmp_path / "store"))
        assert trained.returncode == 1, trained.stderr[-2000:]
        assert fix in " ".join(trained.stderr.split()) and "Traceback (most recent" in trained.stderr
        ok = dockyard("run", str(proj), "--", "python", "-c", "import sys; sys.exit(3)")
        assert ok.returncode == 3 and "hint:" not in ok.stderr  # another failure gets no such hint
    finally:
        for ref in (f"{name}:train", f"{name}:latest"):
            if engine.image_exists(ref):
                engine.remove_image(ref, force=True)
