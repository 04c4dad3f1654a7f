"""Swarm resource pre-flight and default reservations, on this host's single-node swarm.

The defaults (dockyard.yaml's 2 CPUs and 2g per replica) must reach 3/3 replicas on a 2-core
node, and a request the node can never hold must fail before anything is created, naming the
numbers. The project also sets a NON-default serve.port: the Swarm health check must still
reach the server on the contract's port.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import leave_swarm_if_ours
from dockyard import lifecycle
from dockyard.deploy import swarm
from dockyard.engine import Engine
from dockyard.errors import UsageError
from dockyard.preflight import swarm_nodes
from dockyard.runtime import contract

pytestmark = pytest.mark.slow

PREDICTOR = '''
class Predictor:
    def setup(self) -> None:
        pass

    def predict(self, x: float) -> float:
        return x * 2
'''


@pytest.fixture(scope="module")
def swarm_manager(engine: Engine) -> Iterator[Engine]:
    """A swarm to deploy on; one we created is left again at the end."""
    created = swarm.init_swarm(engine)
    yield engine
    leave_swarm_if_ours(engine, created)


@pytest.fixture
def names(swarm_manager: Engine) -> Iterator[tuple[str, str]]:
    """A unique service and network name; both removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    service, network = f"dockyard-test-{tag}", f"dockyard-test-net-{tag}"
    yield service, network
    swarm_manager.docker("service", "rm", service, check=False, timeout=120)
    for _ in range(30):  # the network can be removed once the tasks are gone
        if swarm_manager.docker("network", "rm", network, check=False, timeout=60).returncode != 0:
            break
    swarm_manager.remove_image(f"{service}:latest", force=True)
    swarm_manager.remove_image(f"{service}:train", force=True)


def test_a_request_the_node_cannot_hold_fails_before_anything_is_created(
    swarm_manager: Engine, names: tuple[str, str]
) -> None:
    service, network = names
    (node,) = swarm_nodes(swarm_manager)
    with pytest.raises(UsageError) as info:
        swarm.deploy(swarm_manager, "dockyard/python:3.11-slim", name=service, replicas=3, cpus=node.cpus,
                     memory="1g", reserve_cpus=node.cpus / 2 + 0.01, network=network)
    wanted = 3 * (node.cpus / 2 + 0.01)
    assert f"3 tasks x {node.cpus / 2 + 0.01:g} reserved CPUs = {wanted:g} CPUs" in info.value.problem
    assert f"{node.cpus:g} on 1 node(s)" in info.value.problem and "at most" in info.value.fix

    with pytest.raises(UsageError) as info:
        swarm.deploy(swarm_manager, "dockyard/python:3.11-slim", name=service, replicas=1, cpus=node.cpus * 2,
                     memory="1g", network=network)
    assert f"the largest node has {node.cpus:g}" in info.value.problem
    assert info.value.fix == f"pass --cpus {node.cpus:g} or less"

    # Nothing was created: no service, no network.
    assert swarm_manager.docker("service", "inspect", service, check=False).returncode != 0
    assert swarm_manager.docker("network", "inspect", network, check=False).returncode != 0


def test_three_replicas_with_default_resources_reach_3_of_3_and_are_managed(
    swarm_manager: Engine, names: tuple[str, str], tmp_path: Path
) -> None:
    service, network = names
    project = tmp_path / service
    project.mkdir()
    # No resources section: dockyard.yaml's defaults (2 CPUs, 2g per replica). serve.port is not the
    # contract's port, so this also shows the health check probes the contract's port.
    (project / "dockyard.yaml").write_text(
        f'name: {service}\npython: "3.11"\nserve:\n  predictor: predict.py:Predictor\n  port: 9123\n')
    (project / "predict.py").write_text(PREDICTOR)
    (node,) = swarm_nodes(swarm_manager)
    assert node.cpus < 3 * 2.0, "the point: 3 replicas x 2 CPUs used to over-reserve this node"

    proc = subprocess.run(
        [sys.executable, "-m", "dockyard", "deploy", "swarm", str(project), "--replicas", "3", "--network", network,
         "--timeout", "240", "--json"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads(proc.stdout)
    assert status["running"] == status["replicas"] == 3

    spec = json.loads(swarm_manager.docker("service", "inspect", service).stdout)[0]["Spec"]
    resources = spec["TaskTemplate"]["Resources"]
    assert resources["Limits"]["NanoCPUs"] == 2 * 10**9 and resources["Limits"]["MemoryBytes"] == 2 << 30
    assert resources["Reservations"]["NanoCPUs"] == 5 * 10**8 and resources["Reservations"]["MemoryBytes"] == 512 << 20
    assert spec["Labels"][contract.LABEL_MANAGED] == "true"
    health = spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"]
    assert f"127.0.0.1:{contract.CONTAINER_PORT}/readyz" in " ".join(health) and "9123" not in " ".join(health)

    (row,) = [m for m in lifecycle.ps(swarm_manager) if m.name == service]
    assert (row.kind, row.state, row.health) == ("service", "3/3", "healthy")
    assert row.url == f"http://{service}:{contract.CONTAINER_PORT} (network {network})"
    assert row.memory_bytes and row.memory_bytes > 0  # summed over the replicas' docker stats

    lines: list[str] = []
    assert lifecycle.logs(swarm_manager, service, tail=50, on_line=lines.append) == 0  # docker service logs
    ready = {line.split("|", 1)[0].strip() for line in lines if '"event": "ready"' in line}
    assert len(ready) == 3, f"each replica's task logged that it is ready: {ready}"  # "NAME.SLOT.TASK@node"

    assert [s.name for s in lifecycle.stop(swarm_manager, service)] == [service]
    assert swarm_manager.docker("service", "inspect", service, check=False).returncode != 0
