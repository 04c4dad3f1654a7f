"""`dockyard deploy swarm` live, on the local engine's single-node swarm.

One digits service (3 replicas, 0.5 CPU and 256 MiB each) is shared by the tests in this
module. A load client runs INSIDE a container on the service's overlay network: the ingress
routing mesh needs IPVS, so the service uses dnsrr and clients reach replicas by DNS. The
runtime's responses carry no server identity, so the client records which replica IP
answered each request; the tests compare those IPs with the IPs Swarm gave the tasks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import leave_swarm_if_ours
from dockyard import project
from dockyard.deploy import ShutdownBudget, swarm
from dockyard.engine import TEST_LABEL, Engine

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"
CPUS = 0.5
MEMORY = "256m"
REPLICAS = 3
# Health timings. A passing check ends the start period at once, so a good version gets the
# product's own 60 s start period for free: it is only a ceiling. The rolling-update tests used
# 15 s and flaked under load: a replica at 0.5 CPU needs ~1.1 s of CPU to load the model and answer
# /readyz, which took 2.3 s wall at load 3.8 and 4.5-6.6 s at load 8-9 on this 2-core node
# (bench/replica_ready.py, docs/benchmarks.md): wall time scales with the load, so at load 12-16 plus the load client a new v2 replica could still be
# loading at 15 s, be marked unhealthy, and Swarm rolled the update back. Only the version that
# never gets healthy keeps a short start period, so its rollback comes quickly. The 300 s
# waits are the product's default (three replicas roll one after another).
FAST = {"health_interval_s": 2, "health_start_period_s": 60, "update_monitor_s": 5, "timeout_s": 300}
NEVER_READY = {**FAST, "health_start_period_s": 15}

# The load client: every request re-resolves the service name (Docker's DNS answers with the
# current replica IPs), sends POST /predict to the next IP in turn on a fresh connection, and
# retries on connection errors and on 503 (a draining replica says "retry on another
# replica"). It stops on SIGTERM or after MAX_S and prints one RESULT line of counts.
CLIENT = r"""
import http.client, json, signal, socket, sys, threading, time
SERVICE, PORT, MAX_S, THREADS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
BODY = json.dumps({"pixels": [0.0] * 64}).encode()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
lock = threading.Lock()
stats = {"ok": 0, "lost": 0, "bad": 0, "conn_retries": 0, "drain_retries": 0, "by_ip": {}, "errors": []}
turn = [0]

def attempt(ip):
    conn = http.client.HTTPConnection(ip, PORT, timeout=10)
    try:
        conn.sock = socket.create_connection((ip, PORT), timeout=1)
        conn.sock.settimeout(10)
        conn.request("POST", "/predict", BODY, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()

def one_request():
    for _ in range(100):
        try:
            ips = sorted(socket.gethostbyname_ex(SERVICE)[2])
            with lock:
                turn[0] += 1
                ip = ips[turn[0] % len(ips)]
            status, body = attempt(ip)
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                stats["conn_retries"] += 1
                if len(stats["errors"]) < 10:
                    stats["errors"].append(type(exc).__name__ + ": " + str(exc)[:80])
            time.sleep(0.1)
            continue
        if status == 503:
            with lock:
                stats["drain_retries"] += 1
            time.sleep(0.1)
            continue
        with lock:
            if status == 200 and isinstance(json.loads(body).get("output"), int):
                stats["ok"] += 1
                stats["by_ip"][ip] = stats["by_ip"].get(ip, 0) + 1
            else:
                stats["bad"] += 1
                stats["errors"].append("HTTP %d: %r" % (status, body[:80]))
        return
    with lock:
        stats["lost"] += 1

def worker():
    while not stop.is_set():
        one_request()
        time.sleep(0.01)

started = time.monotonic()
threads = [threading.Thread(target=worker) for _ in range(THREADS)]
for t in threads:
    t.start()
stop.wait(MAX_S)
stop.set()
for t in threads:
    t.join()
stats["seconds"] = round(time.monotonic() - started, 1)
print("RESULT " + json.dumps(stats), flush=True)
"""


@dataclass(frozen=True)
class Images:
    v1: str
    v2: str
    never_ready: str
    project: Path  # the digits project, renamed to `name` so no real tag is overwritten
    name: str
    model_file: Path


@dataclass(frozen=True)
class Load:
    ok: int
    lost: int
    bad: int
    conn_retries: int
    drain_retries: int
    by_ip: dict[str, int]
    errors: list[str]
    seconds: float


class LoadClient:
    """A detached client container on the overlay network; stop() returns its counts."""

    def __init__(self, engine: Engine, image: str, network: str, service: str, *, max_s: float = 120) -> None:
        self.engine = engine
        self.name = f"dockyard-test-load-{uuid.uuid4().hex[:8]}"
        engine.docker(
            "run", "--detach", "--name", self.name, "--network", network, "--label", f"{TEST_LABEL}=1",
            "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--cpus", "0.5", "--memory", "128m", "--entrypoint", "python", image,
            "-c", CLIENT, service, "8080", str(max_s), "2",
        )  # fmt: skip

    def stop(self) -> Load:
        try:
            self.engine.docker("stop", "--time", "30", self.name, timeout=60)
            logs = self.engine.logs(self.name)
        finally:
            self.engine.remove_container(self.name)
        line = next((x for x in logs.splitlines() if x.startswith("RESULT ")), None)
        assert line is not None, f"the load client printed no result:\n{logs[-2000:]}"
        load = Load(**json.loads(line.removeprefix("RESULT ")))
        print(f"\nload: {load}", file=sys.stderr)
        return load


def serving_ips(engine: Engine, name: str) -> set[str]:
    st = swarm.status(engine, name)
    return {ip for t in st.current if t.running for ip in t.addresses}


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def swarm_manager(engine: Engine) -> Iterator[Engine]:
    """A swarm to deploy on; one we created is left again at the end."""
    created = swarm.init_swarm(engine)
    yield engine
    leave_swarm_if_ours(engine, created)


@pytest.fixture(scope="module")
def images(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    """v1 and v2 (a code edit) of the digits serving image, and a v1 whose server never starts."""
    root = tmp_path_factory.mktemp("swarm")
    name = f"dockyard-test-swarm-{uuid.uuid4().hex[:8]}"
    digits = root / "digits"
    shutil.copytree(EXAMPLE, digits, ignore=shutil.ignore_patterns(".dockyard", "outputs", "__pycache__"))
    config = digits / "dockyard.yaml"
    config.write_text(config.read_text().replace("name: digits", f"name: {name}"))
    outputs = root / "outputs"
    outputs.mkdir()
    outputs.chmod(0o777)  # the training container runs as uid 10001
    assert project.run(digits, engine, ["python", "train.py"], volumes=[f"{outputs}:/app/outputs"]) == 0
    model = project.stage_model(digits, outputs / "model.joblib")
    made = Images(v1=f"{name}:1", v2=f"{name}:2", never_ready=f"{name}:never-ready", project=digits, name=name,
                  model_file=outputs / "model.joblib")
    project.build(digits, engine, target="serve", model_file=model, tag=made.v1)
    with (digits / "predict.py").open("a") as f:
        f.write("\n# v2: a code change, so a new image\n")
    project.build(digits, engine, target="serve", model_file=model, tag=made.v2)
    # A version that starts but never answers /readyz: its health check fails.
    # FROM the tag, not `sha256:<id>`: BuildKit (DOCKER_BUILDKIT=1) reads the latter as an image
    # named "sha256" and tries to pull it from Docker Hub.
    dockerfile = f'FROM {made.v1}\nCMD ["python", "-c", "import time; time.sleep(3600)"]\n'
    engine.docker("build", "--quiet", "--label", f"{TEST_LABEL}=1", "-t", made.never_ready, "-", input=dockerfile)
    yield made
    for ref in (made.v1, made.v2, made.never_ready, f"{name}:train", f"{name}:latest"):
        engine.remove_image(ref, force=True)
    shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class Service:
    name: str
    network: str


@pytest.fixture(scope="module")
def service(swarm_manager: Engine, images: Images) -> Iterator[Service]:
    engine = swarm_manager
    suffix = uuid.uuid4().hex[:8]
    svc = Service(name=f"dockyard-test-{suffix}", network=f"dockyard-test-{suffix}")
    yield svc
    engine.docker("service", "rm", svc.name, check=False)
    # The network can only go once the task containers have stopped.
    for _ in range(60):
        if engine.docker("network", "rm", svc.network, check=False).returncode == 0:
            break
        time.sleep(1)


def deploy(engine: Engine, svc: Service, image: str, timings: dict[str, int] = FAST) -> swarm.ServiceStatus:
    return swarm.deploy(
        engine, image, name=svc.name, replicas=REPLICAS, cpus=CPUS, memory=MEMORY, network=svc.network,
        budget=ShutdownBudget(drain_s=5, margin_s=3), labels={TEST_LABEL: "1"}, **timings,  # type: ignore[arg-type]
    )


# -- tests (file order is the story: serve, survive a crash, refuse a bad version, upgrade) ----
def test_three_replicas_are_healthy_and_the_load_spreads_across_all_of_them(
    swarm_manager: Engine, images: Images, service: Service
) -> None:
    engine = swarm_manager
    st = deploy(engine, service, images.v1)

    assert st.running == REPLICAS and st.converged
    assert st.image == engine.image_id(images.v1) and st.image_ref == images.v1
    assert st.endpoint_mode == "dnsrr" and st.network == service.network
    ips = serving_ips(engine, service.name)
    assert len(ips) == REPLICAS
    client = LoadClient(engine, images.v1, service.network, service.name)
    time.sleep(6)
    load = client.stop()
    assert load.lost == 0 and load.bad == 0
    assert set(load.by_ip) == ips, "every replica answered"
    assert min(load.by_ip.values()) >= load.ok // (REPLICAS * 2)


def test_replica_spec_is_hardened_and_stop_grace_matches_the_drain(swarm_manager: Engine, images: Images,
                                                                   service: Service) -> None:
    engine = swarm_manager
    deploy(engine, service, images.v1)
    spec = engine.inspect(service.name, kind="service")["Spec"]
    task = spec["TaskTemplate"]  # type: ignore[index]
    container = task["ContainerSpec"]
    assert container["ReadOnly"] is True
    assert container["User"] == "10001:10001"
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["StopGracePeriod"] == 8 * 10**9  # drain 5 s + margin 3 s
    assert "DOCKYARD_GRACE_PERIOD_S=5" in container["Env"]
    assert task["Resources"]["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * 2**20, "Pids": 512}
    assert spec["UpdateConfig"]["Order"] == "start-first"  # type: ignore[index]
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"  # type: ignore[index]
    a_task = swarm.status(engine, service.name).current[0]
    health = engine.docker("inspect", "--format", "{{.State.Health.Status}}", a_task.container_id).stdout.strip()
    assert health == "healthy"


def test_redeploying_the_same_version_restarts_no_replica(swarm_manager: Engine, images: Images,
                                                         service: Service) -> None:
    engine = swarm_manager
    before = {t.id for t in deploy(engine, service, images.v1).current}

    after = deploy(engine, service, images.v1)

    assert {t.id for t in after.current} == before and after.running == REPLICAS


def test_killing_a_replica_mid_load_loses_no_request(swarm_manager: Engine, images: Images, service: Service) -> None:
    engine = swarm_manager
    deploy(engine, service, images.v1)
    victim = swarm.status(engine, service.name).current[0]
    client = LoadClient(engine, images.v1, service.network, service.name)
    time.sleep(3)
    engine.docker("kill", victim.container_id)
    # Wait until Swarm has noticed (a fixed sleep raced a loaded dockerd: the old status still
    # looked converged), then for the replacement to pass its health check.
    for _ in range(120):
        if any(t.slot == victim.slot and t.id != victim.id for t in swarm.status(engine, service.name).current):
            break
        time.sleep(0.5)
    st = swarm.wait_converged(engine, service.name, timeout_s=300)
    time.sleep(3)  # keep the load on the replaced set for a moment
    load = client.stop()

    replaced = [t for t in st.current if t.slot == victim.slot]
    assert replaced and replaced[0].id != victim.id and replaced[0].running
    assert st.running == REPLICAS
    assert load.ok > 0 and load.lost == 0 and load.bad == 0
    print(f"kill: ok={load.ok} lost={load.lost} connection retries={load.conn_retries} "
          f"drain retries={load.drain_retries}", file=sys.stderr)


def test_a_version_that_never_gets_healthy_is_rolled_back_and_v1_keeps_serving(
    swarm_manager: Engine, images: Images, service: Service
) -> None:
    engine = swarm_manager
    deploy(engine, service, images.v1)
    client = LoadClient(engine, images.v1, service.network, service.name)
    with pytest.raises(swarm.RolledBack) as failure:
        deploy(engine, service, images.never_ready, NEVER_READY)
    load = client.stop()

    assert "rolled back to " + images.v1 in failure.value.problem
    assert "unhealthy" in failure.value.details
    st = swarm.status(engine, service.name)
    assert st.image == engine.image_id(images.v1) and st.image_ref == images.v1
    assert st.update_state == "rollback_completed"
    assert load.ok > 0 and load.lost == 0 and load.bad == 0
    after = LoadClient(engine, images.v1, service.network, service.name)
    time.sleep(3)
    again = after.stop()
    assert again.ok > 0 and again.lost == 0 and set(again.by_ip) == serving_ips(engine, service.name)


def test_rolling_update_to_v2_under_load_fails_no_request(swarm_manager: Engine, images: Images,
                                                         service: Service) -> None:
    engine = swarm_manager
    deploy(engine, service, images.v1)
    old_tasks = {t.id for t in swarm.status(engine, service.name).current}
    client = LoadClient(engine, images.v1, service.network, service.name)
    time.sleep(2)
    st = deploy(engine, service, images.v2)
    time.sleep(2)
    load = client.stop()

    assert st.image == engine.image_id(images.v2) and st.update_state == "completed"
    assert st.running == REPLICAS and not old_tasks & {t.id for t in st.current}
    assert load.ok > 0 and load.lost == 0 and load.bad == 0
    print(f"rolling update: ok={load.ok} lost={load.lost} connection retries={load.conn_retries} "
          f"drain retries={load.drain_retries}", file=sys.stderr)


def test_cli_status_and_rollback_return_to_the_previous_version(swarm_manager: Engine, images: Images,
                                                               service: Service) -> None:
    engine = swarm_manager
    deploy(engine, service, images.v1)
    deploy(engine, service, images.v2)
    cli = [sys.executable, "-m", "dockyard", "deploy"]

    rolled = subprocess.run([*cli, "rollback", service.name, "--json"], check=False, capture_output=True, text=True, timeout=300)
    status = subprocess.run([*cli, "status", service.name, "--json"], check=False, capture_output=True, text=True, timeout=60)

    assert rolled.returncode == 0, rolled.stderr
    data = json.loads(status.stdout)
    assert data["image_ref"] == images.v1 and data["running"] == REPLICAS
    assert data["endpoint_mode"] == "dnsrr"


def test_missing_image_is_refused_naming_the_image_and_the_build_command(swarm_manager: Engine,
                                                                         service: Service) -> None:
    with pytest.raises(swarm.ImageNotFound) as failure:
        swarm.deploy(swarm_manager, "dockyard-test-missing:9", name=service.name, replicas=1, network=service.network)

    assert "dockyard-test-missing:9" in failure.value.problem
    assert "dockyard build" in failure.value.fix


def test_cli_builds_the_project_deploys_it_and_rm_removes_the_service(swarm_manager: Engine,
                                                                     images: Images) -> None:
    engine = swarm_manager
    name = images.name  # the service is named after the project
    cli = [sys.executable, "-m", "dockyard", "deploy"]
    try:
        made = subprocess.run([*cli, "swarm", str(images.project), "--model", str(images.model_file),
                               "--replicas", "1", "--cpus", "0.5", "--memory", "256m", "--network", name,
                               "--timeout", "120", "-q"], check=False, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert f"deployed {name}: 1/1 replicas healthy on network {name}" in made.stdout
        st = swarm.status(engine, name)
        assert st.image_ref == f"{name}:latest" and st.image == engine.image_id(f"{name}:latest")

        removed = subprocess.run([*cli, "rm", name], check=False, capture_output=True, text=True, timeout=120)
        again = subprocess.run([*cli, "rm", name], check=False, capture_output=True, text=True, timeout=120)

        assert removed.returncode == 0, removed.stderr
        with pytest.raises(swarm.ServiceNotFound):
            swarm.status(engine, name)
        assert again.returncode == 1 and f"no Swarm service named '{name}'" in again.stderr
    finally:
        engine.docker("service", "rm", name, check=False)
        for _ in range(60):
            if engine.docker("network", "rm", name, check=False).returncode == 0:
                break
            time.sleep(1)
