"""A CPU torch project on a host that cannot reach download.pytorch.org but whose pip is
configured with a local wheelhouse (PIP_FIND_LINKS): the build takes torch from there
(dockyard.wheelhouse), the image runs it, and the wheel is in no layer. The corpus's
pytorch/examples project failed to build here before (docs/realworld.md)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dockyard.engine import Engine
from projectfiles import write

#: the machine's own CPU build of torch for Python 3.11 (a fact of this kind of host)
HOST_WHEELS = sorted(glob.glob("/opt/wheels/torch-*+cpu-cp311-cp311-manylinux*_x86_64.whl"))

SCRIPT = """\
import glob, sys, torch
x = torch.linspace(-1, 1, 64).unsqueeze(1)
w = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([w], lr=0.5)
for _ in range(50):
    opt.zero_grad(); loss = ((x * w - 3 * x) ** 2).mean(); loss.backward(); opt.step()
cuda = glob.glob("/opt/venv/lib/python3.11/site-packages/nvidia*")
print("torch", torch.__version__, "w", round(w.item(), 2), "cuda libs", len(cuda))
"""


@pytest.mark.skipif(not HOST_WHEELS, reason="this host has no CPU torch wheel for Python 3.11 in /opt/wheels")
def test_cpu_torch_comes_from_the_hosts_wheelhouse(engine: Engine, tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    house.mkdir()
    wheel = Path(HOST_WHEELS[-1])
    os.link(wheel, house / wheel.name) if os.stat(wheel).st_dev == os.stat(house).st_dev else \
        subprocess.run(["cp", str(wheel), str(house)], check=True)
    name = f"wheels-{uuid.uuid4().hex[:8]}"
    proj = write(tmp_path / name, {"requirements.txt": "torch\n", "fit.py": SCRIPT})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKYARD_", "PIP_"))}
    # Only this folder: the host's own pip configuration files are not read in this test.
    env.update({"PIP_FIND_LINKS": str(house), "PIP_CONFIG_FILE": os.devnull, "XDG_CONFIG_DIRS": str(tmp_path / "no"),
                "HOME": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "200"})

    def dockyard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True,
                              env=env, timeout=1500, check=False)

    assert dockyard("init", str(proj)).returncode == 0
    plan = dockyard("plan", str(proj))
    assert plan.returncode == 0, plan.stderr
    version = wheel.name.split("-")[1]
    assert f"framework: torch {version}" in plan.stdout
    assert f"PIP_FIND_LINKS names {house}" in plan.stdout and "download.pytorch.org/whl/cpu (" in plan.stdout
    try:
        run = dockyard("run", str(proj), "--", "python", "fit.py")
        assert run.returncode == 0, run.stderr[-3000:]
        assert f"torch {version} w 3.0 cuda libs 0" in run.stdout
        image = f"{name}:train"
        history = engine.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
        assert "dockyard-wheels" not in history.replace("target=/tmp/dockyard-wheels", "")  # bound, never copied
        listing = engine.docker("run", "--rm", "--label", "io.dockyard.test=1", "--entrypoint", "sh", image, "-c",
                                "ls /tmp/dockyard-wheels /app/.dockyard 2>&1; true").stdout
        assert wheel.name not in listing
    finally:
        for ref in (f"{name}:train", f"{name}:latest"):
            if engine.image_exists(ref):
                engine.remove_image(ref, force=True)
