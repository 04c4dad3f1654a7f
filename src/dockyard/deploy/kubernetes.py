"""Render Kubernetes and KServe manifests from a :class:`DeploySpec` (pure), and apply them.

Files written by :func:`write_manifests`:

* ``deployment.yaml``, ``service.yaml``, ``hpa.yaml``, ``pdb.yaml`` - the serving set;
* ``all.yaml`` - the serving set in one file (what :func:`apply` sends by default);
* ``job.yaml`` - the training Job (only when the spec has a ``train_command``);
* ``inferenceservice.yaml`` - the KServe variant, an *alternative* to the serving set.

``all.yaml`` holds neither the Job nor the InferenceService on purpose: training is a
separate step, and the InferenceService needs the KServe CRDs and would serve the model a
second time beside the Deployment.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import yaml

from dockyard.deploy import DeploySpec, KubernetesUnavailable
from dockyard.errors import DeployError
from dockyard.runtime import contract
from dockyard.runtime.contract import USER_GID, USER_UID
from dockyard.fsio import atomic_write_bytes

log = logging.getLogger(__name__)

Manifest = dict[str, Any]

LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
SERVICE_PORT = 80
TMP_VOLUME = "tmp"
TMP_SIZE_LIMIT = "1Gi"
CLUSTER_TIMEOUT_S = 10



# -- small shared fragments -------------------------------------------------------------
def labels(spec: DeploySpec, component: str) -> dict[str, str]:
    """Recommended ``app.kubernetes.io/*`` labels for one component."""
    return {
        **selector_labels(spec, component),
        "app.kubernetes.io/version": spec.version,
        "app.kubernetes.io/part-of": spec.name,
        "app.kubernetes.io/managed-by": "dockyard",
    }


def selector_labels(spec: DeploySpec, component: str) -> dict[str, str]:
    # No version here: selectors are immutable, and a rollout must keep matching old pods.
    return {
        "app.kubernetes.io/name": spec.name,
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/component": component,
    }


def _metadata(spec: DeploySpec, name: str, component: str) -> Manifest:
    meta: Manifest = {"name": name}
    if spec.namespace:
        meta["namespace"] = spec.namespace
    meta["labels"] = labels(spec, component)
    return meta


def cpu_quantity(cpus: float) -> str:
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(memory: int | str) -> str:
    """The exact Kubernetes quantity of a docker-style amount: "2G" (2 GiB to docker) -> "2Gi",
    "1.5g" -> "1536Mi". Never "2G", which Kubernetes would read as 2x10^9 bytes."""
    amount = contract.parse_memory(memory)
    for suffix, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if amount % size == 0:
            return f"{amount // size}{suffix}"
    return str(amount)


def resources(spec: DeploySpec) -> Manifest:
    """Requests == limits: Guaranteed QoS, and thread counts can trust the limit."""
    amounts = {"cpu": cpu_quantity(spec.cpus), "memory": memory_quantity(spec.memory)}
    if spec.gpus:
        amounts["nvidia.com/gpu"] = str(spec.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def thread_env(spec: DeploySpec) -> dict[str, str]:
    """BLAS/OpenMP pools sized to the CPU limit, not the node's core count (oversubscription)."""
    threads = str(spec.threads)
    return {
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "DOCKYARD_WORKERS": threads,
    }


def _env_list(values: dict[str, str]) -> list[Manifest]:
    return [{"name": key, "value": value} for key, value in values.items()]


def serving_env(spec: DeploySpec) -> dict[str, str]:
    return {
        "DOCKYARD_MODEL": spec.model,
        **spec.shutdown.runtime_env(),
        **thread_env(spec),
        **dict(sorted(spec.env.items())),
    }


def pod_security_context() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": USER_UID,
        "runAsGroup": USER_GID,
        "fsGroup": USER_GID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": USER_UID,
        "runAsGroup": USER_GID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def probes(spec: DeploySpec, port_name: str) -> Manifest:
    """Startup gates liveness while the model loads; readiness gates traffic."""
    startup_period = 2
    return {
        "startupProbe": {
            "httpGet": {"path": LIVE_PATH, "port": port_name},
            "periodSeconds": startup_period,
            "timeoutSeconds": 2,
            "failureThreshold": max(1, -(-spec.startup_timeout_s // startup_period)),
        },
        "readinessProbe": {
            "httpGet": {"path": READY_PATH, "port": port_name},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": LIVE_PATH, "port": port_name},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
    }


def lifecycle(spec: DeploySpec) -> Manifest:
    # The built-in sleep action (on by default since Kubernetes 1.30) needs no shell or
    # /bin/sleep in the image; it holds SIGTERM back until endpoints stop routing here.
    return {"preStop": {"sleep": {"seconds": spec.shutdown.pre_stop_s}}}


def _tmp_volume() -> Manifest:
    return {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}


def _tmp_mount() -> Manifest:
    return {"name": TMP_VOLUME, "mountPath": "/tmp"}


def _gpu_tolerations(spec: DeploySpec) -> list[Manifest]:
    if not spec.gpus:
        return []
    return [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def serving_container(spec: DeploySpec, *, name: str, port_name: str) -> Manifest:
    return {
        "name": name,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent" if spec.image_is_pinned else "Always",
        "ports": [{"name": port_name, "containerPort": contract.CONTAINER_PORT, "protocol": "TCP"}],
        "env": _env_list(serving_env(spec)),
        "resources": resources(spec),
        **probes(spec, port_name),
        "lifecycle": lifecycle(spec),
        "securityContext": container_security_context(),
        "volumeMounts": [_tmp_mount()],
    }


def _serving_pod_fields(spec: DeploySpec) -> Manifest:
    """Pod-level fields shared by the Deployment and the KServe predictor."""
    fields: Manifest = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": spec.shutdown.termination_grace_period_s,
        "securityContext": pod_security_context(),
        "volumes": [_tmp_volume()],
    }
    if spec.gpus:
        fields["tolerations"] = _gpu_tolerations(spec)
    return fields


# -- one function per kind ----------------------------------------------------------------
def deployment(spec: DeploySpec) -> Manifest:
    pod_labels = labels(spec, "predictor")
    deploy_spec: Manifest = {}
    if not spec.autoscale:
        # With an HPA the replica count belongs to it: a fixed value here would be reset
        # on every `kubectl apply`, scaling a busy service down for a moment.
        deploy_spec["replicas"] = spec.replicas
    deploy_spec |= {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector_labels(spec, "predictor")},
        # maxUnavailable 0: a rollout never drops below the current capacity.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "template": {
            "metadata": {"labels": pod_labels},
            "spec": {
                **_serving_pod_fields(spec),
                "containers": [serving_container(spec, name="model", port_name="http")],
            },
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, spec.name, "predictor"),
        "spec": deploy_spec,
    }


def service(spec: DeploySpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, spec.name, "predictor"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(spec, "predictor"),
            "ports": [
                {
                    "name": "http",
                    "port": SERVICE_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def horizontal_pod_autoscaler(spec: DeploySpec) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec, spec.name, "predictor"),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": spec.name,
            },
            "minReplicas": spec.effective_min_replicas,
            "maxReplicas": spec.effective_max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": spec.target_cpu_utilization,
                        },
                    },
                }
            ],
        },
    }


def pod_disruption_budget(spec: DeploySpec) -> Manifest:
    # maxUnavailable (not minAvailable): a single replica can still be drained off a node.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(spec, spec.name, "predictor"),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(spec, "predictor")},
        },
    }


def job_name(spec: DeploySpec) -> str:
    # A Job's pod template is immutable: a new version needs a new Job, so the name
    # carries the version.
    slug = re.sub(r"[^a-z0-9-]+", "-", spec.version.lower()).strip("-") or "v"
    return f"{spec.name}-train-{slug}"[:63].rstrip("-")


def _data_volume(spec: DeploySpec) -> Manifest | None:
    if spec.data_pvc:
        return {
            "name": "data",
            "persistentVolumeClaim": {"claimName": spec.data_pvc, "readOnly": True},
        }
    if spec.data_host_path:
        return {
            "name": "data",
            "hostPath": {"path": spec.data_host_path, "type": "Directory"},
        }
    return None


def _output_volume(spec: DeploySpec) -> Manifest:
    if spec.output_pvc:
        return {
            "name": "outputs",
            "persistentVolumeClaim": {"claimName": spec.output_pvc},
        }
    return {"name": "outputs", "emptyDir": {}}


def training_job(spec: DeploySpec) -> Manifest:
    data = _data_volume(spec)
    volumes = [v for v in (data, _output_volume(spec), _tmp_volume()) if v is not None]
    mounts = [{"name": "outputs", "mountPath": spec.output_mount}, _tmp_mount()]
    if data is not None:
        mounts.insert(
            0, {"name": "data", "mountPath": spec.data_mount, "readOnly": True}
        )
    env = {**thread_env(spec), **dict(sorted(spec.env.items()))}
    container: Manifest = {
        "name": "train",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent" if spec.image_is_pinned else "Always",
        "command": list(spec.train_command),
        "env": _env_list(env),
        "resources": resources(spec),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
    pod: Manifest = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": volumes,
    }
    if spec.gpus:
        pod["tolerations"] = _gpu_tolerations(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(spec, job_name(spec), "training"),
        "spec": {
            "backoffLimit": spec.backoff_limit,
            "activeDeadlineSeconds": spec.active_deadline_s,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": labels(spec, "training")}, "spec": pod},
        },
    }


def inference_service(spec: DeploySpec) -> Manifest:
    """KServe v1beta1 InferenceService with dockyard's image as a custom predictor container.

    RawDeployment mode gives a plain Deployment + HPA (CPU) without Knative. KServe has no
    protocolVersion field for custom containers: the V2 protocol comes from the runtime itself.
    """
    meta = _metadata(spec, spec.name, "predictor")
    meta["annotations"] = {
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "serving.kserve.io/autoscalerClass": "hpa",
    }
    predictor: Manifest = {
        "minReplicas": spec.effective_min_replicas,
        "maxReplicas": spec.effective_max_replicas
        if spec.autoscale
        else spec.effective_min_replicas,
        "scaleMetric": "cpu",
        "scaleTarget": spec.target_cpu_utilization,
        **_serving_pod_fields(spec),
        # KServe looks for its container by this exact name.
        "containers": [
            serving_container(spec, name="kserve-container", port_name="http1")
        ],
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor},
    }


KSERVE_SCHEMA = "schemas/inferenceservice-v1beta1.schema.json"


def inference_service_schema() -> dict[str, Any]:
    """The trimmed KServe InferenceService JSON schema vendored with dockyard (see its $comment)."""
    text = (
        importlib_resources.files("dockyard.deploy")
        .joinpath(KSERVE_SCHEMA)
        .read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


# -- text ----------------------------------------------------------------------------------
KSERVE_NOTE = (
    "# KServe variant: use INSTEAD of all.yaml, on a cluster with KServe installed.\n"
    "# The predictor is dockyard's own image, which speaks the Open Inference (V2) protocol\n"
    "# (/v2/health/*, /v2/models/<model>/infer). KServe has no protocolVersion field for\n"
    "# custom containers, so none is set here.\n"
)


def serving_manifests(spec: DeploySpec) -> list[Manifest]:
    """The plain-Kubernetes serving set, in apply order."""
    items = [deployment(spec), service(spec)]
    if spec.autoscale:
        items.append(horizontal_pod_autoscaler(spec))
    items.append(pod_disruption_budget(spec))
    return items


def render_manifests(spec: DeploySpec) -> list[Manifest]:
    """Every manifest the spec asks for: serving set, training Job, InferenceService."""
    items = serving_manifests(spec)
    if spec.train_command:
        items.append(training_job(spec))
    items.append(inference_service(spec))
    return items


_FILE_FOR_KIND = {
    "Deployment": "deployment.yaml",
    "Service": "service.yaml",
    "HorizontalPodAutoscaler": "hpa.yaml",
    "PodDisruptionBudget": "pdb.yaml",
    "Job": "job.yaml",
    "InferenceService": "inferenceservice.yaml",
}


def to_yaml(manifests: Iterable[Manifest]) -> str:
    text: str = yaml.safe_dump_all(
        list(manifests), sort_keys=False, default_flow_style=False, width=100
    )
    return text


def _header(spec: DeploySpec) -> str:
    return f"# Generated by dockyard for {spec.name}:{spec.version}; edit the spec, not this file.\n"


def render_kubernetes(spec: DeploySpec) -> dict[str, str]:
    """File name -> YAML text: one file per kind, plus ``all.yaml`` (the serving set)."""
    files: dict[str, str] = {}
    for manifest in render_manifests(spec):
        note = KSERVE_NOTE if manifest["kind"] == "InferenceService" else ""
        files[_FILE_FOR_KIND[manifest["kind"]]] = (
            _header(spec) + note + to_yaml([manifest])
        )
    files["all.yaml"] = _header(spec) + to_yaml(serving_manifests(spec))
    return files


def write_manifests(spec: DeploySpec, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write :func:`render_kubernetes` output into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for filename, text in render_kubernetes(spec).items():
            path = out / filename
            atomic_write_bytes(path, text.encode(), mode=None)  # no half-written manifest if interrupted
            written.append(path)
    except OSError as exc:
        raise DeployError(
            f"cannot write manifests to {out}: {exc.strerror or exc}",
            "pass --out with a writable directory",
        ) from exc
    return written


# -- apply (the only side effect on a cluster) -------------------------------------------
def _kubectl(kubeconfig: str | os.PathLike[str] | None) -> list[str]:
    exe = shutil.which("kubectl")
    if exe is None:
        raise KubernetesUnavailable(
            "kubectl is not installed (needed for --apply)",
            "install kubectl (https://kubernetes.io/docs/tasks/tools/), or drop --apply and "
            "apply the written YAML yourself",
        )
    argv = [exe]
    if kubeconfig is not None:
        if not Path(kubeconfig).is_file():
            raise KubernetesUnavailable(
                f"kubeconfig {kubeconfig} does not exist",
                "pass --kubeconfig with the path of an existing kubeconfig file",
            )
        argv += ["--kubeconfig", str(kubeconfig)]
    return argv


def _run(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    log.info("running %s", shlex.join(argv))
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def check_cluster(
    kubeconfig: str | os.PathLike[str] | None = None,
    *,
    timeout_s: int = CLUSTER_TIMEOUT_S,
) -> None:
    """Raise :class:`KubernetesUnavailable` unless kubectl can reach the API server quickly."""
    base = _kubectl(kubeconfig)
    argv = [*base, f"--request-timeout={timeout_s}s", "cluster-info"]
    where = f"kubeconfig {kubeconfig}" if kubeconfig else "the current kubeconfig"
    try:
        result = _run(argv, timeout_s + 5)
    except subprocess.TimeoutExpired:
        raise KubernetesUnavailable(
            f"the Kubernetes API server in {where} did not answer within {timeout_s}s",
            "check the cluster is up and `kubectl cluster-info` works, or drop --apply",
        ) from None
    if result.returncode != 0:
        reason = _last_line(result.stderr) or f"kubectl exited {result.returncode}"
        raise KubernetesUnavailable(
            f"cannot reach the Kubernetes cluster in {where}: {reason}",
            "check the cluster is up and `kubectl cluster-info` works, or drop --apply",
            details=result.stderr,
        )


def apply(
    out_dir: str | os.PathLike[str],
    kubeconfig: str | os.PathLike[str] | None = None,
    *,
    files: Sequence[str] = ("all.yaml",),
    timeout_s: int = CLUSTER_TIMEOUT_S,
) -> str:
    """``kubectl apply`` the named files from ``out_dir`` after checking the cluster answers.

    Returns kubectl's output. Raises :class:`KubernetesUnavailable` (exit 2) without kubectl
    or a reachable cluster, :class:`DeployError` (exit 3) when the apply itself fails.
    """
    paths = [Path(out_dir) / name for name in files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DeployError(
            f"no manifest to apply at {', '.join(missing)}",
            "run `dockyard deploy kubernetes --out DIR` first, then apply that DIR",
        )
    check_cluster(kubeconfig, timeout_s=timeout_s)
    argv = [*_kubectl(kubeconfig), f"--request-timeout={timeout_s}s", "apply"]
    for path in paths:
        argv += ["-f", str(path)]
    try:
        result = _run(argv, timeout_s * 6)
    except subprocess.TimeoutExpired:
        raise DeployError(
            "kubectl apply did not finish in time",
            "check the cluster's health and apply again",
        ) from None
    if result.returncode != 0:
        raise DeployError(
            f"kubectl apply failed: {_last_line(result.stderr) or f'exit {result.returncode}'}",
            "read the error above; fix the spec or the cluster, then apply again",
            details=result.stderr,
        )
    return result.stdout


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
