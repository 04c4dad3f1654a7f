"""A training script that trains a model in place and saves nothing, shaped like pytorch/examples'
regression main.py (the corpus's pytorch-regression, docs/realworld.md): init finds the variable
that holds the trained model and writes train.model_variable; `dockyard train` runs the script
unchanged and keeps that variable as TorchScript; the version then serves with no code and
answers predict."""

from __future__ import annotations

import glob
import json
import uuid
from pathlib import Path

import pytest
import yaml

from dockyard.engine import Engine
from dockyardcli import dockyard_cli, free_port
from projectfiles import write

#: the machine's own CPU build of torch for Python 3.11 (as in test_wheelhouse_engine.py)
HOST_WHEELS = sorted(glob.glob("/opt/wheels/torch-*+cpu-cp311-cp311-manylinux*_x86_64.whl"))

MAIN = """\
import sys
import torch
import torch.nn.functional as F

torch.manual_seed(0)
W = torch.tensor([[2.0], [-1.0], [0.5]])


def batch(n=64):
    x = torch.randn(n, 3)
    return x, x.mm(W) + 1.0


fc = torch.nn.Linear(3, 1)
for step in range(2000):
    x, y = batch()
    fc.zero_grad()
    loss = F.mse_loss(fc(x), y)
    loss.backward()
    for p in fc.parameters():
        p.data.add_(-0.05 * p.grad)
    if loss.item() < 1e-6:
        break
print("args", sys.argv[1:], "name", __name__, "loss %.6f" % loss.item())
"""


@pytest.mark.skipif(not HOST_WHEELS, reason="this host has no CPU torch wheel for Python 3.11 in /opt/wheels")
def test_a_model_trained_in_place_and_never_saved_is_kept_served_and_answers(engine: Engine,
                                                                             tmp_path: Path) -> None:
    name = f"keep-{uuid.uuid4().hex[:8]}"
    proj = write(tmp_path / name, {"requirements.txt": "torch\n", "main.py": MAIN})
    home = tmp_path / "home"
    init = dockyard_cli("init", str(proj), home=home)
    assert init.returncode == 0, init.stderr
    cfg = yaml.safe_load((proj / "dockyard.yaml").read_text())
    assert cfg["train"] == {"command": "python main.py", "model_variable": "fc"}
    assert "main.py (torch) trains fc in place and saves nothing" in init.stdout + init.stderr
    container = ""
    try:
        trained = dockyard_cli("train", str(proj), home=home)
        assert trained.returncode == 0, trained.stderr[-3000:]
        logs = trained.stdout + trained.stderr
        assert "args [] name __main__ loss" in logs  # the script ran as `python main.py` runs it
        assert "dockyard: kept fc (torch.nn.modules.linear.Linear, TorchScript) as /outputs/model.pt" in logs
        assert not (proj / "outputs").exists() and not (proj / "model.pt").exists()  # the user's folder is untouched

        port = free_port()
        served = dockyard_cli("serve", str(proj), "--model", f"{name}:1", "--port", str(port), "--detach",
                              home=home, timeout=900)
        assert served.returncode == 0, served.stderr[-3000:]
        container = served.stdout.rsplit("container ", 1)[1].strip(" )\n")
        answer = dockyard_cli("predict", f"http://127.0.0.1:{port}", "--input", json.dumps({"input": [[1.0, 1.0, 1.0]]}),
                              home=home)
        assert answer.returncode == 0, answer.stderr
        output = json.loads(answer.stdout)["output"]
        assert abs(output[0][0] - 2.5) < 0.05, output  # 2 - 1 + 0.5 + 1: the trained weights, not the initial ones
    finally:
        if container:
            engine.remove_container(container)
        for line in engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", name).stdout.split():
            engine.remove_image(line, force=True)
