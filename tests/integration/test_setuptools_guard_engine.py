"""setuptools 81 removed pkg_resources, which older packages import at module level (mlflow 2.x;
fs 2.4, here, small and quick): a project pinning such a release used to fail at its first import
with ModuleNotFoundError. The build now installs a setuptools below 81 when an installed package
imports pkg_resources and the venv has none, and says which package needed it; a project that
asks for setuptools>=81 keeps it."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from dockyard.engine import Engine
from dockyardcli import dockyard_cli
from projectfiles import write

CHECK = "import fs, setuptools\nprint('fs', fs.__version__, 'setuptools', setuptools.__version__)\n"


def test_a_package_that_imports_pkg_resources_gets_a_setuptools_that_has_it(engine: Engine, tmp_path: Path) -> None:
    names = []

    def project(requirements: str) -> Path:
        name = f"pkgres-{uuid.uuid4().hex[:8]}"
        names.append(name)
        return write(tmp_path / name, {"requirements.txt": requirements, "check.py": CHECK,
                                       "dockyard.yaml": f"name: {name}\npython: '3.11'\n"
                                                        "dependencies: {file: requirements.txt, kind: requirements}\n"})

    def dockyard(*args: str) -> subprocess.CompletedProcess[str]:
        return dockyard_cli(*args, home=tmp_path / "home", env={"CI": "true"}, timeout=900)

    def run(proj: Path) -> subprocess.CompletedProcess[str]:
        return dockyard("run", str(proj), "--", "python", "check.py")

    try:
        proj = project("fs==2.4.16\n")  # fs requires setuptools, unpinned: the newest has no pkg_resources
        built = dockyard("build", str(proj), "--target", "train", "--no-cache")  # the install step's own output
        assert built.returncode == 0, built.stderr[-3000:]
        assert ("dockyard: fs/__init__.py, fs/opener/__init__.py, fs/opener/registry.py import pkg_resources, "
                "which setuptools 81 removed: installing setuptools<81") in built.stderr
        guarded = run(proj)
        assert guarded.returncode == 0, guarded.stderr[-3000:]
        line = next(ln for ln in guarded.stdout.splitlines() if ln.startswith("fs "))  # setuptools 80 warns first
        fs_version, setuptools_version = line.split()[1], line.split()[3]
        assert fs_version == "2.4.16" and int(setuptools_version.split(".")[0]) < 81
        kept = run(project("fs==2.4.16\nsetuptools>=81\n"))  # the project's own choice wins: it fails as asked
        assert kept.returncode == 1 and "No module named 'pkg_resources'" in kept.stdout + kept.stderr
        assert "installing setuptools<81" not in kept.stderr
    finally:
        for name in names:
            for ref in (f"{name}:train", f"{name}:latest"):
                if engine.image_exists(ref):
                    engine.remove_image(ref, force=True)
