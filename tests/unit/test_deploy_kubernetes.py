"""Kubernetes / KServe renderers: content, shutdown agreement, schemas, golden files, bad input."""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from dockyard.deploy import DeploySpec, DeploySpecError, ShutdownBudget
from dockyard.deploy.kubernetes import (
    deployment,
    inference_service,
    inference_service_schema,
    memory_quantity,
    render_kubernetes,
    render_manifests,
    serving_manifests,
    training_job,
    write_manifests,
)
from dockyard.deploy.shutdown import GRACE_ENV, ShutdownBudgetError
from dockyard.errors import DeployError
from dockyard.runtime import contract

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "kubernetes"
DIGEST = "sha256:" + "3f" * 32
# Oldest version the manifests must work on (preStop `sleep` is on by default since 1.30)
# and the newest schema set kubernetes-validate ships.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())


def digits_spec(**overrides: Any) -> DeploySpec:
    values: dict[str, Any] = {
        "name": "digits",
        "image": f"registry.example.com/dockyard/digits@{DIGEST}",
        "version": "1",
        "model": "digits",
        "replicas": 2,
        "cpus": 1.0,
        "memory": "512Mi",
        "train_command": ("python", "train.py"),
        "data_pvc": "digits-data",
        "env": {"LOG_LEVEL": "info"},
    }
    values.update(overrides)
    return DeploySpec(**values)


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    pod = (
        spec["predictor"]
        if manifest["kind"] == "InferenceService"
        else spec["template"]["spec"]
    )
    return pod["containers"][0]


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    if manifest["kind"] == "InferenceService":
        return manifest["spec"]["predictor"]
    return manifest["spec"]["template"]["spec"]


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in c["env"]}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Schema validation must work offline: any socket connect fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"schema validation tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -- Deployment content -----------------------------------------------------------------------
def test_deployment_probes_hit_the_runtime_health_endpoints() -> None:
    c = container(deployment(digits_spec()))
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    port_names = {p["name"] for p in c["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["port"] in port_names


def test_startup_probe_allows_the_configured_model_load_time() -> None:
    probe = container(deployment(digits_spec(startup_timeout_s=301)))["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 301


def test_requests_equal_limits_and_gpus_are_requested_as_nvidia_resources() -> None:
    res = container(deployment(digits_spec(cpus=2.5, memory=3 * 2**30, gpus=1)))[
        "resources"
    ]
    assert res["requests"] == res["limits"]
    assert res["limits"] == {"cpu": "2500m", "memory": "3Gi", "nvidia.com/gpu": "1"}


def test_cpu_only_spec_requests_no_gpu() -> None:
    res = container(deployment(digits_spec()))["resources"]
    assert "nvidia.com/gpu" not in res["limits"]


@pytest.mark.parametrize(
    ("cpus", "threads"), [(0.5, "1"), (1.0, "1"), (2.5, "3"), (4, "4")]
)
def test_thread_counts_follow_the_cpu_limit_rounded_up(
    cpus: float, threads: str
) -> None:
    env = env_of(container(deployment(digits_spec(cpus=cpus))))
    for name in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "DOCKYARD_WORKERS",
    ):
        assert env[name] == threads


def test_user_env_is_passed_through_to_the_container() -> None:
    env = env_of(container(deployment(digits_spec(env={"LOG_LEVEL": "debug"}))))
    assert env["LOG_LEVEL"] == "debug"


def test_pod_is_hardened_non_root_read_only_without_capabilities() -> None:
    manifest = deployment(digits_spec())
    pod, c = pod_spec(manifest), container(manifest)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_read_only_root_gets_a_writable_tmp_emptydir() -> None:
    manifest = deployment(digits_spec())
    volumes = {v["name"]: v for v in pod_spec(manifest)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(manifest)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_labels_and_selectors_line_up_across_deployment_service_and_pdb() -> None:
    items = {m["kind"]: m for m in serving_manifests(digits_spec())}
    pod_labels = items["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/name"] == "digits"
    assert pod_labels["app.kubernetes.io/version"] == "1"
    assert pod_labels["app.kubernetes.io/managed-by"] == "dockyard"
    selectors = [
        items["Deployment"]["spec"]["selector"]["matchLabels"],
        items["Service"]["spec"]["selector"],
        items["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
        assert (
            "app.kubernetes.io/version" not in selector
        )  # rollouts must keep matching


def test_service_maps_port_80_to_the_contracts_container_port() -> None:
    items = {m["kind"]: m for m in serving_manifests(digits_spec())}
    (port,) = items["Service"]["spec"]["ports"]
    c_ports = {
        p["name"]: p["containerPort"] for p in container(items["Deployment"])["ports"]
    }
    assert port["port"] == 80 and port["name"] == "http"
    assert c_ports[port["targetPort"]] == contract.CONTAINER_PORT
    assert items["Service"]["spec"]["type"] == "ClusterIP"


def test_hpa_scales_the_deployment_on_cpu_between_min_and_max() -> None:
    items = {
        m["kind"]: m
        for m in serving_manifests(digits_spec(min_replicas=2, max_replicas=6))
    }
    hpa = items["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "digits",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    # The HPA owns the replica count; a fixed one would be reset by every apply.
    assert "replicas" not in items["Deployment"]["spec"]


def test_without_autoscaling_the_deployment_pins_replicas_and_no_hpa_is_rendered() -> (
    None
):
    spec = digits_spec(autoscale=False, replicas=3)
    kinds = [m["kind"] for m in serving_manifests(spec)]
    assert "HorizontalPodAutoscaler" not in kinds
    assert deployment(spec)["spec"]["replicas"] == 3
    assert "hpa.yaml" not in render_kubernetes(spec)


def test_pdb_allows_one_pod_down_even_with_a_single_replica() -> None:
    items = {m["kind"]: m for m in serving_manifests(digits_spec(replicas=1))}
    assert items["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_rolling_update_never_drops_below_current_capacity() -> None:
    strategy = deployment(digits_spec())["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


# -- graceful shutdown ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "budget", [ShutdownBudget(), ShutdownBudget(drain_s=30, pre_stop_s=10, margin_s=2)]
)
def test_kubernetes_grace_period_covers_prestop_plus_runtime_drain(
    budget: ShutdownBudget,
) -> None:
    for manifest in (
        deployment(digits_spec(shutdown=budget)),
        inference_service(digits_spec(shutdown=budget)),
    ):
        pod, c = pod_spec(manifest), container(manifest)
        pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        drain = int(env_of(c)[GRACE_ENV])  # what the runtime will actually be told
        assert pre_stop == budget.pre_stop_s and drain == budget.drain_s
        assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


def test_swarm_stop_grace_period_covers_the_runtime_drain() -> None:
    budget = ShutdownBudget(drain_s=12, pre_stop_s=5, margin_s=3)
    assert budget.swarm_stop_grace_period_s > budget.drain_s
    assert budget.swarm_stop_grace_period() == "15s"
    assert budget.runtime_args() == ["--grace-period-s", "12"]
    # Swarm has no preStop, so it must not pay for one.
    assert budget.swarm_stop_grace_period_s < budget.termination_grace_period_s


@pytest.mark.parametrize(
    ("field", "value"),
    [("drain_s", 0), ("pre_stop_s", -1), ("margin_s", 0), ("drain_s", 2.5)],
)
def test_bad_shutdown_budget_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(ShutdownBudgetError) as info:
        ShutdownBudget(**{field: value})
    assert field in info.value.problem and info.value.fix


# -- training Job ----------------------------------------------------------------------------------
def test_training_job_mounts_data_read_only_and_never_restarts_in_place() -> None:
    job = training_job(digits_spec(backoff_limit=2, active_deadline_s=900))
    assert job["kind"] == "Job" and job["metadata"]["name"] == "digits-train-1"
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 900
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    c = pod["containers"][0]
    assert c["command"] == ["python", "train.py"]
    assert c["resources"]["requests"] == c["resources"]["limits"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["data"] == {"name": "data", "mountPath": "/data", "readOnly": True}
    assert volumes["data"]["persistentVolumeClaim"] == {
        "claimName": "digits-data",
        "readOnly": True,
    }
    assert "emptyDir" in volumes["outputs"]
    assert mounts["outputs"]["mountPath"] == "/outputs"


def test_training_job_can_read_data_from_a_host_path_and_write_to_a_claim() -> None:
    spec = digits_spec(
        data_pvc=None, data_host_path="/srv/digits", output_pvc="digits-out"
    )
    pod = training_job(spec)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["hostPath"] == {"path": "/srv/digits", "type": "Directory"}
    assert volumes["outputs"]["persistentVolumeClaim"] == {"claimName": "digits-out"}


def test_new_version_gets_a_new_job_because_job_templates_are_immutable() -> None:
    assert (
        training_job(digits_spec(version="2.0.1"))["metadata"]["name"]
        == "digits-train-2-0-1"
    )


def test_no_training_job_without_a_train_command() -> None:
    spec = digits_spec(train_command=())
    assert "Job" not in [m["kind"] for m in render_manifests(spec)]
    assert "job.yaml" not in render_kubernetes(spec)


# -- KServe --------------------------------------------------------------------------------------
def test_inference_service_runs_the_image_as_kserve_container_on_8080() -> None:
    isvc = inference_service(digits_spec(min_replicas=1, max_replicas=4))
    predictor = isvc["spec"]["predictor"]
    assert (
        isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
        == "RawDeployment"
    )
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert predictor["scaleMetric"] == "cpu"
    c = container(isvc)
    assert c["name"] == "kserve-container"
    assert c["image"] == f"registry.example.com/dockyard/digits@{DIGEST}"
    assert c["ports"][0]["containerPort"] == 8080
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}


# -- schema validation (offline) ---------------------------------------------------------------------
@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("gpus", [0, 1])
def test_every_kubernetes_manifest_validates_against_the_schemas(
    version: str, gpus: int, no_network: None
) -> None:
    kube = [
        m
        for m in render_manifests(digits_spec(gpus=gpus))
        if m["kind"] != "InferenceService"
    ]
    assert {m["kind"] for m in kube} == {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job"
    }  # fmt: skip
    for manifest in kube:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_schema_validation_rejects_a_broken_manifest(no_network: None) -> None:
    broken = copy.deepcopy(deployment(digits_spec()))
    container(broken)["securityContext"]["capabilities"]["dropp"] = ["ALL"]  # typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_yaml_files_round_trip_to_the_same_manifests() -> None:
    spec = digits_spec()
    files = render_kubernetes(spec)
    by_kind = {m["kind"]: m for m in render_manifests(spec)}
    for name, text in files.items():
        if name == "all.yaml":
            continue
        (doc,) = list(yaml.safe_load_all(text))
        assert doc == by_kind[doc["kind"]]


def test_all_yaml_holds_the_serving_set_only() -> None:
    docs = list(yaml.safe_load_all(render_kubernetes(digits_spec())["all.yaml"]))
    assert [d["kind"] for d in docs] == [
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"
    ]  # fmt: skip


def test_inference_service_validates_against_the_vendored_kserve_schema(
    no_network: None,
) -> None:
    schema = inference_service_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    (doc,) = list(
        yaml.safe_load_all(render_kubernetes(digits_spec())["inferenceservice.yaml"])
    )
    jsonschema.Draft202012Validator(schema).validate(doc)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_inference_service_pod_fields_validate_as_a_kubernetes_pod(
    version: str, no_network: None
) -> None:
    # KServe's PredictorSpec inlines a core/v1 PodSpec; check those fields with the real schema
    # and make sure every other key is one KServe's component schema knows.
    predictor = inference_service(digits_spec(gpus=1))["spec"]["predictor"]
    kserve_keys = set(inference_service_schema()["$defs"]["component"]["properties"])
    pod_fields = {
        k: v for k, v in predictor.items() if k not in kserve_keys or k == "containers"
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "digits"},
        "spec": pod_fields,
    }
    kubernetes_validate.validate(pod, version, strict=True)


def test_kserve_schema_rejects_an_inference_service_without_a_predictor() -> None:
    doc = inference_service(digits_spec())
    doc["spec"] = {"predicter": doc["spec"]["predictor"]}
    with pytest.raises(jsonschema.ValidationError, match="predictor"):
        jsonschema.validate(doc, inference_service_schema())


# -- golden files ---------------------------------------------------------------------------------------
def test_digits_manifests_match_the_golden_files() -> None:
    files = render_kubernetes(digits_spec())
    if os.environ.get("DOCKYARD_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for stale in GOLDEN.glob("*.yaml"):
            stale.unlink()
        for name, text in files.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
    assert sorted(p.name for p in GOLDEN.glob("*.yaml")) == sorted(files)
    for name, text in files.items():
        assert (GOLDEN / name).read_text(encoding="utf-8") == text, (
            f"{name} differs from tests/golden/kubernetes; if on purpose, rerun with "
            "DOCKYARD_UPDATE_GOLDEN=1 and commit the new files"
        )


def test_write_manifests_writes_one_file_per_kind_plus_all(tmp_path: Path) -> None:
    written = write_manifests(digits_spec(), tmp_path / "k8s")
    assert sorted(p.name for p in written) == sorted(
        ["deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "job.yaml",
         "inferenceservice.yaml", "all.yaml"]
    )  # fmt: skip
    assert not list((tmp_path / "k8s").glob("*.tmp"))
    assert (
        yaml.safe_load((tmp_path / "k8s" / "service.yaml").read_text())["kind"]
        == "Service"
    )


def test_write_manifests_into_a_file_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(DeployError) as info:
        write_manifests(digits_spec(), blocker)
    assert "cannot write manifests" in info.value.problem and "--out" in info.value.fix


# -- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"replicas": 0}, "replicas"),
        ({"replicas": -3}, "replicas"),
        ({"min_replicas": 5, "max_replicas": 2}, "min_replicas"),
        ({"cpus": 0}, "cpus"),
        ({"cpus": -1.5}, "cpus"),
        ({"cpus": float("nan")}, "cpus"),
        ({"memory": 0}, "memory"),
        ({"memory": "0Mi"}, "memory"),
        ({"memory": "lots"}, "memory"),
        ({"memory": -512}, "memory"),
        ({"name": "Digits_Model"}, "name"),
        ({"name": "9digits"}, "name"),
        ({"name": "d" * 41}, "name"),
        ({"name": ""}, "name"),
        ({"namespace": "ML Team"}, "namespace"),
        ({"version": "v 2"}, "version"),
        ({"image": ""}, "image"),
        ({"gpus": -1}, "gpus"),
        ({"target_cpu_utilization": 0}, "target_cpu_utilization"),
        ({"data_host_path": "/srv/x"}, "data_pvc"),  # both data sources at once
        ({"data_pvc": "Data_PVC"}, "data_pvc"),
        ({"data_mount": "data"}, "data_mount"),
        ({"train_command": "python train.py"}, "train_command"),
        ({"active_deadline_s": 0}, "active_deadline_s"),
        ({"backoff_limit": -1}, "backoff_limit"),
        ({"env": {"OMP_NUM_THREADS": "8"}}, "env"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"env": {"N": 3}}, "env"),
    ],
)
def test_bad_spec_is_a_user_error_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(DeploySpecError) as info:
        digits_spec(**overrides)
    err = info.value
    assert f"'{field}'" in err.problem
    assert err.fix
    assert err.exit_code == 1


@pytest.mark.parametrize(("memory", "quantity"), [
    ("2G", "2Gi"), ("2g", "2Gi"), ("2Gi", "2Gi"), ("1.5g", "1536Mi"), ("512m", "512Mi"), (3 * 2**30, "3Gi"),
    ("100k", "100Ki"), (1000, "1000"),
])
def test_memory_becomes_the_exact_kubernetes_quantity_of_dockers_bytes(memory: str | int, quantity: str) -> None:
    # "2G" is 2 GiB to docker; Kubernetes would read "2G" as 2x10^9 bytes, so it must be written "2Gi".
    res = container(deployment(digits_spec(memory=memory)))["resources"]
    assert res["limits"]["memory"] == res["requests"]["memory"] == quantity
    assert memory_quantity(memory) == quantity


def test_probes_target_the_contracts_port_whatever_the_projects_serve_port(tmp_path: Path) -> None:
    from dockyard.cli.deploy import _kubernetes_spec

    (tmp_path / "dockyard.yaml").write_text("name: digits\nserve:\n  port: 9123\nresources:\n  memory: 1.5g\n")
    spec = _kubernetes_spec(tmp_path, image=None, version="1", replicas=1, namespace=None, drain_s=5)
    c = container(deployment(spec))
    (port,) = c["ports"]
    assert port["containerPort"] == contract.CONTAINER_PORT == 8080
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["port"] == port["name"]
    assert c["resources"]["limits"]["memory"] == "1536Mi"


def test_the_training_job_runs_what_the_train_images_cmd_runs(tmp_path: Path) -> None:
    # An MLproject-style command: the Job fills in the parameter defaults as the image's CMD and
    # `dockyard train` do; `{alpha}` must never reach the cluster unfilled.
    from dockyard.cli.deploy import _kubernetes_spec
    from dockyard.planning import image_train_command

    (tmp_path / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters:\n      alpha: {type: float, default: 0.5}\n"
        '    command: "python train.py --alpha {alpha}"\n')
    (tmp_path / "dockyard.yaml").write_text(
        "name: wine\ntrain:\n  command: python train.py --alpha {alpha}\n  model_variable: model\n")
    spec = _kubernetes_spec(tmp_path, image=None, version="1", replicas=1, namespace=None, drain_s=5)
    command = training_job(spec)["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command == ["python", "-m", "dockyard_runtime.keep", "model", "train.py", "--alpha", "0.5"]
    assert " ".join(command) == image_train_command(tmp_path, "python train.py --alpha {alpha}", "model")
