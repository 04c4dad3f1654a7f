"""`dockyard ps`, `logs`, `stop` and serve's port claim, on the real engine.

A tiny predictor project (no dependencies, so its image builds in seconds) is served with a
NON-default serve.port, which must be the host port serve publishes on, while the probes inside
use the contract's port. Everything created carries io.dockyard.test=1 and is removed by id.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import lifecycle, serving
from dockyard.engine import TEST_LABEL, Engine
from dockyard.errors import UsageError
from dockyard.preflight import fit_local, host_capacity
from dockyard.runtime import contract

TEST = {TEST_LABEL: "1"}
PREDICTOR = '''
class Predictor:
    def setup(self) -> None:
        print("tiny predictor loaded", flush=True)

    def predict(self, x: float) -> float:
        return x * 2
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tiny(tmp_path: Path, engine: Engine) -> Iterator[tuple[Path, str, int]]:
    """A predictor project named uniquely, with serve.port set to a free, non-default port."""
    name = f"dockyard-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    root = tmp_path / name
    root.mkdir()
    (root / "dockyard.yaml").write_text(
        f'name: {name}\npython: "3.11"\nserve:\n  predictor: predict.py:Predictor\n  port: {port}\n')
    (root / "predict.py").write_text(PREDICTOR)
    yield root, name, port
    for c in engine.containers([f"label={contract.LABEL_NAME}={name}"]):
        engine.remove_container(c["ID"])
    for ref in (f"{name}:latest", f"{name}:train"):
        engine.remove_image(ref, force=True)


def ours(engine: Engine, name: str) -> list[lifecycle.Managed]:
    return [m for m in lifecycle.ps(engine, all_=True) if m.project == name]


def test_ps_logs_stop_and_replace_a_server_on_its_serve_port(engine: Engine, tiny: tuple[Path, str, int]) -> None:
    root, name, port = tiny
    res = serving.serve(root, engine, labels=TEST)  # no --port: serve.port from dockyard.yaml
    assert res.url == f"http://127.0.0.1:{port}" and port != contract.CONTAINER_PORT
    assert serving.predict(res.url, {"x": 2.5}) == {"output": 5.0}

    (row,) = ours(engine, name)
    assert (row.name, row.role, row.kind, row.url, row.state) == (res.name, "serve", "container", res.url, "running")
    assert row.health in ("starting", "healthy") and row.uptime_s is not None and row.uptime_s < 120
    for _ in range(20):  # docker stats has no sample for a container started a moment ago
        if row.memory_bytes:
            break
        time.sleep(0.5)
        (row,) = ours(engine, name)
    assert row.cpu_percent is not None and row.memory_bytes and row.memory_bytes > 1 << 20  # docker stats

    lines: list[str] = []
    assert lifecycle.logs(engine, res.name, on_line=lines.append) == 0
    assert "tiny predictor loaded" in lines and any('"event": "ready"' in ln for ln in lines)

    # A second server on the same port is refused before anything is built, naming the holder.
    with pytest.raises(UsageError) as info:
        serving.serve(root, engine, labels=TEST)
    assert f"port {port} is in use by {res.name}" in info.value.problem and "--replace" in info.value.fix
    assert engine.inspect(res.container, "container")["State"]["Running"], "the refusal left the old one alone"

    replaced = serving.serve(root, engine, replace=True, labels=TEST)
    assert replaced.container != res.container
    assert engine.docker("inspect", res.container, check=False).returncode != 0, "the old server was removed"

    # logs -f follows until the container stops; stop (by project name) removes the server.
    followed: list[str] = []
    follower = threading.Thread(target=lambda: lifecycle.logs(engine, replaced.name, follow=True,
                                                              on_line=followed.append))
    follower.start()
    time.sleep(1.0)
    stopped = lifecycle.stop(engine, name)
    follower.join(timeout=60)
    assert not follower.is_alive(), "logs -f ends when the container stops"
    assert "tiny predictor loaded" in followed and any('"event": "draining"' in ln or "stop" in ln for ln in followed)
    assert [s.name for s in stopped] == [replaced.name]
    assert ours(engine, name) == []
    with pytest.raises(UsageError, match=f"nothing dockyard started is called '{name}'"):
        lifecycle.stop(engine, name)


def test_the_cli_lists_follows_and_stops_a_detached_server(engine: Engine, tiny: tuple[Path, str, int]) -> None:
    root, name, port = tiny
    dockyard = [sys.executable, "-m", "dockyard"]
    served = subprocess.run([*dockyard, "serve", str(root), "-d", "-q"], capture_output=True, text=True, timeout=600)
    assert served.returncode == 0, served.stderr
    container = f"dockyard-serve-{name}-{port}"
    assert f"`dockyard stop {container}`" in served.stderr

    ps = subprocess.run([*dockyard, "ps", "--json"], capture_output=True, text=True, timeout=120)
    (row,) = [r for r in json.loads(ps.stdout) if r["project"] == name]
    assert row["name"] == container and row["url"] == f"http://127.0.0.1:{port}"
    table = subprocess.run([*dockyard, "ps"], capture_output=True, text=True, timeout=120).stdout
    assert "NAME" in table and "HEALTH" in table and container in table and f"http://127.0.0.1:{port}" in table

    busy = subprocess.run([*dockyard, "serve", str(root), "-d", "-q"], capture_output=True, text=True, timeout=600)
    assert busy.returncode == 1 and f"port {port} is in use" in busy.stderr and "fix:" in busy.stderr

    logs = subprocess.run([*dockyard, "logs", container, "--tail", "50"], capture_output=True, text=True, timeout=120)
    assert logs.returncode == 0 and "tiny predictor loaded" in logs.stdout

    stop = subprocess.run([*dockyard, "stop", container], capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0 and f"stopped {container} (serve)" in stop.stdout
    assert engine.docker("inspect", container, check=False).returncode != 0
    neither = subprocess.run([*dockyard, "stop"], capture_output=True, text=True, timeout=120)
    assert neither.returncode == 1 and "give a NAME or --all" in neither.stderr


def test_a_port_held_by_a_container_dockyard_did_not_start_is_never_replaced(engine: Engine) -> None:
    port = free_port()
    cid = engine.docker("run", "--detach", "--label", f"{TEST_LABEL}=1", "--publish", f"127.0.0.1:{port}:8080",
                        "--entrypoint", "sleep", "dockyard/python:3.11-slim", "120").stdout.strip()
    try:
        with pytest.raises(UsageError) as info:
            lifecycle.claim_port(engine, port, replace=True)
        assert "which dockyard did not start" in info.value.problem and "docker stop" in info.value.fix
        assert engine.inspect(cid, "container")["State"]["Running"]
    finally:
        engine.remove_container(cid)


def test_a_port_held_by_a_program_on_the_host_is_refused() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        from dockyard.engine import Engine as RealEngine

        with pytest.raises(UsageError, match=f"port {port} is in use by a program on this host"):
            lifecycle.claim_port(RealEngine.connect(), port)


def test_local_runs_beyond_the_host_are_refused_with_the_numbers(engine: Engine) -> None:
    cap = host_capacity(engine)
    assert cap.cpus >= 1 and cap.memory > 1 << 30
    too_many = cap.cpus * 4
    with pytest.raises(UsageError) as info:
        fit_local(engine, too_many, "1g", explicit=("cpus",), what="serve")
    assert f"{too_many:g} CPUs" in info.value.problem and f"this host has {cap.cpus:g}" in info.value.problem
    assert f"--cpus {cap.cpus:g}" in info.value.fix
    with pytest.raises(UsageError, match="of memory .* but this host has"):
        fit_local(engine, 1, "64t", explicit=("memory",), what="train")
    # A default that does not fit is fitted instead of refused.
    cpus, memory = fit_local(engine, too_many, "64t", explicit=(), what="serve")
    assert cpus == cap.cpus and contract.parse_memory(memory) <= cap.memory


@pytest.mark.parametrize("amount", ["1.5g", "2G", "2g", "2Gi", "512Mi", "512m", "10240k", "1073741824", "0.75G"])
def test_memory_amounts_mean_what_docker_means(engine: Engine, amount: str) -> None:
    # Differential: the docker CLI itself is the reference for --memory.
    cid = engine.docker("create", "--label", f"{TEST_LABEL}=1", "--memory", amount,
                        "dockyard/python:3.11-slim", "true").stdout.strip()
    try:
        assert engine.inspect(cid, "container")["HostConfig"]["Memory"] == contract.parse_memory(amount)
    finally:
        engine.remove_container(cid)


def test_a_training_run_is_listed_followed_and_stopped(engine: Engine, tiny: tuple[Path, str, int],
                                                       tmp_path: Path) -> None:
    from dockyard.errors import RunError
    from dockyard.store import Store
    from dockyard.train import train

    root, name, _ = tiny
    config = root / "dockyard.yaml"
    config.write_text(config.read_text() + "train:\n  command: python -u -c \"import time; print('epoch 1', "
                      "flush=True); time.sleep(120)\"\n")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            train(root, engine, store=Store(tmp_path / "store"), labels=TEST)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        row = None
        for _ in range(240):
            rows = [m for m in ours(engine, name) if m.role == "train" and m.state == "running"]
            if rows:
                row = rows[0]
                break
            time.sleep(0.5)
        assert row is not None, "the training container shows up in ps"
        assert row.name.startswith("dockyard-train-") and row.version in row.name and row.url == "-"
        lines: list[str] = []
        for _ in range(40):
            lifecycle.logs(engine, row.name, on_line=lines.append)
            if "epoch 1" in lines:
                break
            time.sleep(0.5)
        assert "epoch 1" in lines
        assert [s.name for s in lifecycle.stop(engine, row.name, grace_s=2)] == [row.name]
        runner.join(timeout=120)
        assert not runner.is_alive(), "the training run ends when its container is stopped"
    finally:
        if runner.is_alive():
            for c in engine.containers([f"label={contract.LABEL_NAME}={name}"]):
                engine.remove_container(c["ID"])
            runner.join(timeout=60)
    assert outcome and isinstance(outcome[0], RunError), outcome
    assert [m for m in ours(engine, name) if m.role == "train"] == [], "train removed its own container"


def test_stop_all_stops_every_server_dockyard_started_and_nothing_else(engine: Engine,
                                                                       tiny: tuple[Path, str, int]) -> None:
    # `stop --all` acts on the whole engine; on a machine where other dockyard work runs it
    # would stop that too, so the test runs only where nothing else dockyard started is up.
    others = [m.name for m in lifecycle.ps(engine) if m.project != tiny[1]]
    if others:
        pytest.skip(f"dockyard containers not started by this test are running: {', '.join(others)}")
    root, name, port = tiny
    first = serving.serve(root, engine, labels=TEST)
    second = serving.serve(root, engine, port=free_port(), labels=TEST)
    bystander = engine.docker("run", "--detach", "--label", f"{TEST_LABEL}=1", "--entrypoint", "sleep",
                              "dockyard/python:3.11-slim", "300").stdout.strip()
    try:
        assert sorted(m.name for m in ours(engine, name)) == sorted([first.name, second.name])
        stop = subprocess.run([sys.executable, "-m", "dockyard", "stop", "--all"], capture_output=True, text=True,
                              timeout=300)
        assert stop.returncode == 0, stop.stderr
        for server in (first, second):
            assert f"stopped {server.name} (serve)" in stop.stdout
            assert engine.docker("inspect", server.container, check=False).returncode != 0, "removed"
        assert ours(engine, name) == [] and lifecycle.ps(engine) == [], "nothing dockyard started runs"
        assert engine.inspect(bystander, "container")["State"]["Running"], "a container dockyard did not start"
        again = subprocess.run([sys.executable, "-m", "dockyard", "stop", "--all"], capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0, again.stderr
    finally:
        engine.remove_container(bystander)
