"""`dockyard stop --all` on the real engine: it stops a detached server and a running training
run, both started by dockyard, and leaves alone a container dockyard did not start (a plain
`docker run` of a dockyard base image, whose image labels the container inherits).

`stop --all` acts on everything dockyard started on the engine. On an engine shared with other
work the test would stop that too, so it runs only when nothing else dockyard started is there,
checked just before it starts and again just before `stop --all` (CI's engine is its own).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import lifecycle
from dockyard.engine import TEST_LABEL, Engine
from dockyard.runtime import contract

BASE_IMAGE = "dockyard/python:3.11-slim"
PREDICTOR = '''
class Predictor:
    def predict(self, x: float) -> float:
        return x * 2
'''
TRAIN = "python -u -c \"import time; print('epoch 1', flush=True); time.sleep(300)\""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def others(engine: Engine, name: str) -> list[str]:
    """What dockyard started on this engine that is not this test's."""
    return [f"{m.name} ({m.role})" for m in lifecycle.ps(engine, all_=True) if m.project != name]


def dockyard(*args: str, home: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, env={**os.environ, "DOCKYARD_HOME": str(home)})


@pytest.fixture
def project(tmp_path: Path, engine: Engine) -> Iterator[tuple[Path, str]]:
    name = f"dockyard-test-stopall-{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    root.mkdir()
    (root / "dockyard.yaml").write_text(f'name: {name}\npython: "3.11"\nserve:\n  predictor: predict.py:Predictor\n'
                                        f"train:\n  command: {json.dumps(TRAIN)}\n")
    (root / "predict.py").write_text(PREDICTOR)
    yield root, name
    for c in engine.containers([f"label={contract.LABEL_NAME}={name}"]):
        engine.remove_container(c["ID"])
    for ref in (f"{name}:latest", f"{name}:train"):
        engine.remove_image(ref, force=True)


def test_stop_all_stops_a_server_and_a_training_run_and_nothing_dockyard_did_not_start(
    engine: Engine, project: tuple[Path, str], tmp_path: Path
) -> None:
    root, name = project
    if busy := others(engine, name):
        pytest.skip(f"stop --all would also stop other work on this engine: {', '.join(busy[:5])}")
    home = tmp_path / "home"
    foreign = engine.docker("run", "--detach", "--label", f"{TEST_LABEL}=1", "--entrypoint", "python", BASE_IMAGE,
                            "-c", "import time; time.sleep(600)").stdout.strip()
    trainer = None
    try:
        served = dockyard("serve", str(root), "--port", str(free_port()), "--detach", "-q", home=home)
        assert served.returncode == 0, served.stderr
        trainer = subprocess.Popen([sys.executable, "-m", "dockyard", "train", str(root), "-q"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "DOCKYARD_HOME": str(home)})
        mine: dict[str, str] = {}
        for _ in range(600):
            mine = {m.role: m.name for m in lifecycle.ps(engine) if m.project == name and m.state == "running"}
            if set(mine) == {"serve", "train"} or trainer.poll() is not None:
                break
            time.sleep(0.5)
        assert set(mine) == {"serve", "train"}, (mine, trainer.poll())
        if busy := others(engine, name):
            pytest.skip(f"other work started on this engine meanwhile: {', '.join(busy[:5])}")

        stopped = dockyard("stop", "--all", "--json", home=home, timeout=180)

        assert stopped.returncode == 0, stopped.stderr
        assert sorted(r["name"] for r in json.loads(stopped.stdout)) == sorted(mine.values())
        assert trainer.wait(timeout=180) != 0  # the run ends: stopped, recorded as failed
        assert "error:" in (trainer.stderr.read() if trainer.stderr else "")
        assert [m for m in lifecycle.ps(engine, all_=True) if m.project == name] == [], "both are gone"
        assert engine.containers([f"label={contract.LABEL_NAME}={name}"]) == []  # removed, not just stopped
        state = engine.inspect(foreign, "container")["State"]
        assert state["Running"] is True, "a container dockyard did not start keeps running"
    finally:
        if trainer is not None and trainer.poll() is None:
            trainer.kill()
            trainer.wait(timeout=60)
        engine.remove_container(foreign)
