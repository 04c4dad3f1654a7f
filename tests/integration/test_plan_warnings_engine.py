"""Plan's warnings reach users of build, run and train, not only of `plan`: a user who goes
straight to `dockyard train` must still learn that the image's Python is not the one the project
pins (or that a lock file was left out). Printed once, before the build's own lines."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from dockyard.engine import Engine
from dockyardcli import dockyard_cli
from projectfiles import write

WARNING = "warning: dockyard.yaml says python 3.11, but runtime.txt pins Python 3.10"


def test_build_and_run_print_the_plans_warnings_once(engine: Engine, tmp_path: Path) -> None:
    name = f"warned-{uuid.uuid4().hex[:8]}"
    proj = write(tmp_path / name, {"runtime.txt": "python-3.10\n", "hello.py": "print('hello from', __name__)\n",
                                   "dockyard.yaml": f"name: {name}\npython: '3.11'\n"})

    def dockyard(*args: str) -> subprocess.CompletedProcess[str]:
        return dockyard_cli(*args, env={"CI": "true"}, timeout=900)

    try:
        plan = dockyard("plan", str(proj))
        assert plan.returncode == 0 and WARNING in plan.stdout, plan.stderr
        built = dockyard("build", str(proj), "--target", "train")
        assert built.returncode == 0, built.stderr[-2000:]
        assert built.stderr.count(WARNING) == 1, built.stderr[:2000]
        ran = dockyard("run", str(proj), "--", "python", "hello.py")
        assert ran.returncode == 0 and "hello from __main__" in ran.stdout, ran.stderr[-2000:]
        assert ran.stderr.count(WARNING) == 1
        quiet = dockyard("build", str(proj), "--target", "train", "-q")  # -q prints only the image id
        assert quiet.returncode == 0 and WARNING not in quiet.stderr + quiet.stdout
    finally:
        for ref in (f"{name}:train", f"{name}:latest"):
            if engine.image_exists(ref):
                engine.remove_image(ref, force=True)
