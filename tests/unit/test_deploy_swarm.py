"""Swarm deploy without an engine: the docker flags we send, input checks, error
classification, and parsing recorded `docker service inspect` / task `docker inspect` JSON."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.deploy import DeploySpecError, ShutdownBudget, swarm

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IMAGE_ID = "sha256:55a775aa97084806d122de74eafa0da5bae076f65ce965c00f97fd91fe2f0a45"


def settings(**changes: object) -> swarm.ServiceSettings:
    values: dict[str, object] = {
        "name": "digits", "image_id": IMAGE_ID, "image_ref": "digits:3", "version": "3", "replicas": 3, "cpus": 0.5,
        "memory_bytes": 256 * 2**20, "network": "dockyard", "env": {"LOG_LEVEL": "info"},
        "budget": ShutdownBudget(drain_s=20, margin_s=5),
    }  # fmt: skip
    values.update(changes)
    return swarm.ServiceSettings(**values)  # type: ignore[arg-type]


def flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == flag]


def flag(args: list[str], name: str) -> str:
    values = flag_values(args, name)
    assert len(values) == 1, (name, values)
    return values[0]


# -- the flags ------------------------------------------------------------------------------
def test_create_uses_dnsrr_on_the_overlay_network_and_pins_the_image_id() -> None:
    args = swarm.create_args(settings())

    assert args[:2] == ["create", "--detach"]
    assert flag(args, "--endpoint-mode") == "dnsrr"
    assert flag(args, "--network") == "dockyard"
    assert flag(args, "--replicas") == "3"
    assert args[-1] == IMAGE_ID
    assert "--no-resolve-image" in args
    assert "io.dockyard.image-ref=digits:3" in flag_values(args, "--label")


def test_updates_are_health_gated_start_first_and_roll_back_on_failure() -> None:
    args = swarm.create_args(settings(update_monitor_s=15))

    assert flag(args, "--update-order") == "start-first"
    assert flag(args, "--update-failure-action") == "rollback"
    assert flag(args, "--update-parallelism") == "1"
    assert flag(args, "--update-monitor") == "15s"
    assert flag(args, "--rollback-order") == "start-first"
    assert "/readyz" in flag(args, "--health-cmd")
    assert flag(args, "--restart-condition") == "any"


def test_stop_grace_period_covers_the_runtime_drain_from_the_same_budget() -> None:
    s = settings(budget=ShutdownBudget(drain_s=20, margin_s=5))
    args = swarm.create_args(s)

    assert flag(args, "--stop-grace-period") == "25s"
    assert "DOCKYARD_GRACE_PERIOD_S=20" in flag_values(args, "--env")


def test_replicas_are_limited_and_hardened_with_what_swarm_supports() -> None:
    args = swarm.create_args(settings())

    assert flag(args, "--limit-cpu") == "0.5" and flag(args, "--limit-memory") == str(256 * 2**20)
    # Reservations are a quarter of the limits by default, so several replicas fit a small node.
    assert flag(args, "--reserve-cpu") == "0.12" and flag(args, "--reserve-memory") == str(64 * 2**20)
    explicit = swarm.create_args(settings(reserve_cpus=0.5, reserve_memory=256 * 2**20))
    assert flag(explicit, "--reserve-cpu") == "0.5" and flag(explicit, "--reserve-memory") == str(256 * 2**20)
    assert "--read-only" in args and "--init" in args
    assert flag(args, "--cap-drop") == "ALL"
    assert flag(args, "--user") == "10001:10001"
    assert flag(args, "--mount").startswith("type=tmpfs,destination=/tmp")
    assert "--security-opt" not in args  # docker service create has no such flag
    env = flag_values(args, "--env")
    assert "OMP_NUM_THREADS=1" in env and "LOG_LEVEL=info" in env


def test_update_sends_only_changed_env_so_an_unchanged_deploy_restarts_nothing() -> None:
    s = settings()
    current = [f"{k}={v}" for k, v in s.full_env().items()]

    assert "--env-add" not in swarm.update_args(s, current)
    changed = swarm.update_args(settings(env={"LOG_LEVEL": "debug"}), [*current, "OLD=1"])
    assert flag_values(changed, "--env-add") == ["LOG_LEVEL=debug"]
    assert flag_values(changed, "--env-rm") == ["OLD"]
    assert flag(changed, "--image") == IMAGE_ID and changed[-1] == "digits"
    assert flag(changed, "--endpoint-mode") == "dnsrr"


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("replicas", [0, -1, True, 1.5])
def test_replicas_below_one_are_refused_with_a_fix(replicas: object) -> None:
    with pytest.raises(DeploySpecError) as failure:
        swarm.check_replicas(replicas)  # type: ignore[arg-type]

    assert "replicas must be a whole number >= 1" in failure.value.problem
    assert "--replicas 1" in failure.value.fix
    assert failure.value.exit_code == 1


@pytest.mark.parametrize("name", ["Digits", "digits_v2", "-digits", "a" * 64, ""])
def test_service_names_that_are_not_dns_labels_are_refused(name: str) -> None:
    with pytest.raises(DeploySpecError, match="not a valid service name"):
        swarm.check_name(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("256m", 256 * 2**20), ("2g", 2 * 2**30), ("2G", 2 * 2**30), ("1.5g", 3 * 2**29), ("1073741824", 2**30),
     ("512Mi", 512 * 2**20), (1000, 1000)],
)
def test_memory_accepts_docker_and_kubernetes_spellings(text: str | int, expected: int) -> None:
    assert swarm.parse_memory(text) == expected


@pytest.mark.parametrize("text", ["0m", "lots", "-5m"])
def test_memory_that_is_zero_or_unreadable_is_refused(text: str) -> None:
    with pytest.raises(DeploySpecError):
        swarm.parse_memory(text)


def test_env_that_dockyard_manages_is_refused() -> None:
    with pytest.raises(DeploySpecError, match="DOCKYARD_GRACE_PERIOD_S is set by dockyard"):
        swarm.check_env({"DOCKYARD_GRACE_PERIOD_S": "99"})


# -- classification of docker's stderr -----------------------------------------------------------
def test_not_a_swarm_manager_says_how_to_create_a_swarm() -> None:
    stderr = ("Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\" or "
              "\"docker swarm join\" to connect this node to swarm and try again.")
    error = swarm.classify_swarm_failure(stderr, name="digits")

    assert isinstance(error, swarm.SwarmNotActive) and error.exit_code == 2
    assert "docker swarm init --advertise-addr 127.0.0.1" in error.fix
    assert "dockyard deploy swarm --init" in error.fix


def test_unknown_service_and_missing_previous_spec_are_named() -> None:
    unknown = swarm.classify_swarm_failure("Error: no such service: digits", name="digits")
    no_prev = swarm.classify_swarm_failure(
        "Error response from daemon: rpc error: code = FailedPrecondition desc = service 0x does not have a "
        "previous spec", name="digits")  # fmt: skip

    assert isinstance(unknown, swarm.ServiceNotFound) and "'digits'" in unknown.problem
    assert no_prev is not None and "no previous version" in no_prev.problem and no_prev.exit_code == 1
    assert swarm.classify_swarm_failure("something else entirely") is None


# -- parsing recorded inspect output -----------------------------------------------------------------
SERVICE = {
    "Spec": {
        "Name": "digits",
        "Labels": {"io.dockyard.image-ref": "digits:3", "io.dockyard.version": "3"},
        "Mode": {"Replicated": {"Replicas": 2}},
        "TaskTemplate": {"ContainerSpec": {"Image": IMAGE_ID}, "Networks": [{"Target": "pmx8rdt4samu"}]},
        "EndpointSpec": {"Mode": "dnsrr"},
    },
    "UpdateStatus": {"State": "rollback_completed", "Message": "rollback completed"},
}
TASKS = [
    {"ID": "x32rgxbu036kd0hshp8yckf96", "Slot": 1, "DesiredState": "running",
     "Status": {"State": "running", "Message": "started",
                "ContainerStatus": {"ContainerID": "726224c9467c", "ExitCode": 0}},
     "Spec": {"ContainerSpec": {"Image": IMAGE_ID}}, "NetworksAttachments": [{"Addresses": ["10.0.5.9/24"]}]},
    {"ID": "r7i3oh1at27fq1", "Slot": 2, "DesiredState": "running",
     "Status": {"State": "starting", "Message": "starting", "ContainerStatus": {"ContainerID": "a1"}},
     "Spec": {"ContainerSpec": {"Image": IMAGE_ID}}, "NetworksAttachments": [{"Addresses": ["10.0.5.7/24"]}]},
    {"ID": "qd9gqpidhdj5ab", "Slot": 2, "DesiredState": "shutdown",
     "Status": {"State": "failed", "Message": "started",
                "Err": "task: non-zero exit (143): dockerexec: unhealthy container",
                "ContainerStatus": {"ContainerID": "b2", "ExitCode": 143}},
     "Spec": {"ContainerSpec": {"Image": "sha256:0dc4e6d42c4e"}}, "NetworksAttachments": []},
]  # fmt: skip


def test_status_counts_only_healthy_tasks_of_the_current_image_and_lists_failures() -> None:
    tasks = tuple(swarm._task(t) for t in TASKS)
    st = swarm._status_from(SERVICE, tasks)

    assert (st.name, st.image_ref, st.version, st.replicas, st.endpoint_mode) == ("digits", "digits:3", "3", 2, "dnsrr")
    assert st.running == 1 and not st.converged
    assert [t.addresses for t in st.current] == [("10.0.5.9",), ("10.0.5.7",)]
    assert st.task_errors() == [
        "task qd9gqpidhdj5 (slot 2): failed: task: non-zero exit (143): dockerexec: unhealthy container"
    ]
    assert st.to_dict()["update_state"] == "rollback_completed"


# -- the CLI, without an engine -------------------------------------------------------------------
def dockyard_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    environ.update({"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True,
                          env=environ, timeout=60, check=False)  # fmt: skip


def test_cli_refuses_zero_replicas_before_building_anything(tmp_path: Path) -> None:
    proc = dockyard_cli("deploy", "swarm", str(tmp_path), "--replicas", "0",
                        env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})

    assert proc.returncode == 1, proc.stderr
    assert "error: replicas must be a whole number >= 1, got 0" in proc.stderr
    assert "fix:" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_kubernetes_writes_the_manifests_for_the_digits_project(tmp_path: Path) -> None:
    project = tmp_path / "digits"
    shutil.copytree(EXAMPLES / "digits", project, ignore=shutil.ignore_patterns(".dockyard", "outputs"))
    out = tmp_path / "k8s"

    proc = dockyard_cli("deploy", "kubernetes", str(project), "--out", str(out), "--image",
                        "registry.example.com/digits:3", "--version", "3", "--replicas", "3")

    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} >= {"deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml",
                                               "job.yaml", "inferenceservice.yaml", "all.yaml"}
    assert "image: registry.example.com/digits:3" in (out / "deployment.yaml").read_text()
    assert "minReplicas: 3" in (out / "hpa.yaml").read_text()  # the HPA owns the replica count


def test_cli_kubernetes_apply_with_an_unreachable_kubeconfig_is_an_environment_error(tmp_path: Path) -> None:
    project = tmp_path / "digits"
    shutil.copytree(EXAMPLES / "digits", project, ignore=shutil.ignore_patterns(".dockyard", "outputs"))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n"
    )

    proc = dockyard_cli("deploy", "kubernetes", str(project), "--out", str(tmp_path / "k8s"), "--apply",
                        "--kubeconfig", str(kubeconfig))

    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and "fix:" in proc.stderr and "Traceback" not in proc.stderr


def test_a_pushed_image_is_deployed_by_the_digest_of_the_repository_named() -> None:
    digests = ["mirror.example/digits@sha256:aaa", "registry.example.com:5000/ml/digits@sha256:bbb"]

    assert swarm._same_repo_digest("registry.example.com:5000/ml/digits:3", digests) == digests[1]
    assert swarm._same_repo_digest("elsewhere/digits:3", digests) == digests[0]


@pytest.mark.parametrize(
    ("image", "name", "version"),
    [("digits:3", "digits", "3"), ("registry.example.com:5000/ml/Digits_V2:7", "digits-v2", "7"),
     ("digits", "digits", "")],
)  # fmt: skip
def test_image_flag_names_the_service_and_version_from_the_reference(
    tmp_path: Path, image: str, name: str, version: str
) -> None:
    target = swarm.project_image(tmp_path, None, image=image)  # type: ignore[arg-type]  # no build: no engine

    assert (target.ref, target.name, target.version) == (image, name, version)


def test_image_and_model_together_are_refused(tmp_path: Path) -> None:
    from dockyard.errors import UsageError

    with pytest.raises(UsageError, match="either --image or --model"):
        swarm.project_image(tmp_path, None, image="digits:3", model="digits:3")  # type: ignore[arg-type]
