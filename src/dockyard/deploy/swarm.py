"""Deploy a serving image as a Docker Swarm service, and inspect, roll back or remove it.

Choices, and why:

* **Overlay network, ``endpoint_mode: dnsrr``.** Swarm's default VIP mode and the ingress
  routing mesh need IPVS in the kernel, which some hosts (minimal VMs, gVisor, some WSL
  kernels) lack; there the VIP silently drops traffic. With DNS round robin, ``NAME`` (and
  ``tasks.NAME``) resolves straight to the replica IPs on the overlay network, so clients
  on that network (``--attachable``, so plain ``docker run --network`` works too) reach
  replicas without IPVS. Publish to the outside with a proxy on the network, or with
  host-mode ports (one replica per port).
* **Health-gated rolling updates.** ``start-first`` starts the new task and waits for its
  health check before stopping an old one; a task that fails within ``update-monitor``
  makes Swarm roll the whole service back (``update-failure-action rollback``).
* **Reservations are a fraction of the limits** (``preflight.RESERVE_FRACTION``), so three
  replicas with 2-CPU limits fit a 2-core node; a request the swarm can never schedule is
  refused before anything is created, naming the numbers (``preflight.check_swarm``).
* **Graceful stop.** ``stop_grace_period`` comes from :class:`ShutdownBudget` (drain +
  margin) and the runtime is told the drain time through ``DOCKYARD_GRACE_PERIOD_S``, so
  Swarm never SIGKILLs a replica that is still finishing requests.
* **Hardening Swarm supports** (docker 20.10, API 1.41): read-only root filesystem, a
  tmpfs ``/tmp``, ``--cap-drop ALL``, non-root ``--user 10001:10001``, a pids limit, an
  init process. Swarm services have **no** ``--security-opt`` (so no
  ``no-new-privileges`` and no custom seccomp profile; the engine's default seccomp
  profile still applies) - that needs a plain ``docker run`` or Kubernetes.
* **Images are pinned by id.** The service runs ``sha256:<id>`` of the local image, not a
  movable tag, so re-tagging cannot change a running version and a rollback really
  returns to the old bits. The reference the user gave is kept in the
  ``io.dockyard.image-ref`` service label.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockyard import preflight
from dockyard.deploy import MANAGED_ENV, DeploySpecError
from dockyard.deploy.shutdown import ShutdownBudget
from dockyard.engine import Engine, Printer
from dockyard.errors import DeployError, DockyardError, EnvironmentProblem, UsageError
from dockyard.runtime import contract
from dockyard.runtime.contract import (
    CONTAINER_PORT,
    LABEL_IMAGE_REF,
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_SERVICE,
    LABEL_VERSION,
)

CONTAINER_USER = f"{contract.USER_UID}:{contract.USER_GID}"  # the `dockyard` user baked into every image
DEFAULT_NETWORK = "dockyard"
INIT_FIX = "run `docker swarm init --advertise-addr 127.0.0.1` (or `dockyard deploy swarm --init`)"
# Service names become DNS names (NAME, tasks.NAME) on the overlay network.
_SERVICE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Update states after which Swarm does nothing more on its own.
_UPDATE_DONE = {"completed", "rollback_completed", "paused", "rollback_paused"}
POLL_S = 1.0


class SwarmNotActive(EnvironmentProblem):
    """The engine is not a Swarm manager (exit 2)."""


class ServiceNotFound(DeployError):
    """No service by that name (a user error, exit 1)."""

    exit_code = 1


class ImageNotFound(DeployError):
    """The image is not on this node (a user error, exit 1)."""

    exit_code = 1


class RolledBack(DeployError):
    """The new version failed its health check and Swarm rolled back (exit 3)."""


@dataclass(frozen=True)
class TaskStatus:
    """One Swarm task (a replica attempt) as ``docker inspect`` reports it."""

    id: str
    slot: int
    state: str  # new, pending, starting, running, failed, shutdown, rejected, ...
    desired_state: str
    error: str
    message: str
    image: str
    container_id: str
    addresses: tuple[str, ...]  # overlay IPs, without the /prefix

    @property
    def running(self) -> bool:
        # With a health check, Swarm keeps a task in "starting" until the check passes,
        # so "running" here means running AND healthy.
        return self.state == "running" and self.desired_state == "running"


@dataclass(frozen=True)
class ServiceStatus:
    """A service's spec and its tasks, after a deploy, a rollback or for ``deploy status``."""

    name: str
    image: str  # what the tasks run (sha256:<id> when deployed by dockyard)
    image_ref: str  # the reference the user deployed (label), or the image
    version: str
    replicas: int
    network: str
    endpoint_mode: str
    update_state: str  # "" before the first update
    update_message: str
    tasks: tuple[TaskStatus, ...]

    @property
    def current(self) -> tuple[TaskStatus, ...]:
        return tuple(t for t in self.tasks if t.desired_state == "running")

    @property
    def running(self) -> int:
        return sum(1 for t in self.current if t.running and t.image == self.image)

    @property
    def converged(self) -> bool:
        return self.running == self.replicas and self.update_state not in {"updating", "rollback_started"}

    def task_errors(self) -> list[str]:
        """Recent task failures, newest first, one line each."""
        seen: list[str] = []
        for t in self.tasks:
            if t.error or t.state in {"failed", "rejected"}:
                line = f"task {t.id[:12]} (slot {t.slot}): {t.state}: {t.error or t.message}"
                if line not in seen:
                    seen.append(line)
        return seen

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "image": self.image, "image_ref": self.image_ref, "version": self.version,
            "replicas": self.replicas, "running": self.running, "network": self.network,
            "endpoint_mode": self.endpoint_mode, "update_state": self.update_state,
            "update_message": self.update_message,
            "tasks": [t.__dict__ for t in self.current], "errors": self.task_errors(),
        }  # fmt: skip


# -- the swarm itself ----------------------------------------------------------------------
def swarm_state(engine: Engine) -> tuple[str, bool]:
    """(LocalNodeState, is a manager) from ``docker info``."""
    proc = engine.docker("info", "--format", "{{json .Swarm}}", timeout=30)
    info = json.loads(proc.stdout or "{}")
    return str(info.get("LocalNodeState", "")), bool(info.get("ControlAvailable"))


def require_manager(engine: Engine) -> None:
    state, manager = swarm_state(engine)
    if state != "active":
        raise SwarmNotActive(f"this Docker Engine is not part of a swarm (state: {state or 'unknown'})", INIT_FIX)
    if not manager:
        raise SwarmNotActive(
            "this Docker Engine is a swarm worker; services can only be managed from a manager",
            "run dockyard against a manager node (set DOCKER_HOST), or promote this node",
        )


def init_swarm(engine: Engine, advertise_addr: str = "127.0.0.1") -> bool:
    """Make the engine a single-node swarm manager; False when it already was one."""
    state, _ = swarm_state(engine)
    if state == "active":
        return False
    proc = engine.docker("swarm", "init", "--advertise-addr", advertise_addr, check=False, timeout=60)
    if proc.returncode != 0 and "already part of a swarm" in proc.stderr:
        return False  # someone else initialised it a moment ago
    if proc.returncode != 0:
        raise SwarmNotActive(f"`docker swarm init` failed: {_last_line(proc.stderr)}",
                             "check the advertise address, or run `docker swarm init` yourself")
    return True


def classify_swarm_failure(stderr: str, *, name: str = "") -> DockyardError | None:
    """Map a failed ``docker service ...`` stderr to our error, or None if unknown."""
    if "not a swarm manager" in stderr or "This node is not part of a swarm" in stderr:
        return SwarmNotActive("this Docker Engine is not a swarm manager", INIT_FIX)
    if re.search(r"service .* not found|no such service", stderr, re.IGNORECASE):
        return ServiceNotFound(f"no Swarm service named {name!r}", "list services with `docker service ls`")
    if "does not have a previous spec" in stderr:
        return UsageError(f"service {name!r} has no previous version to roll back to",
                          "deploy a new version with `dockyard deploy swarm` instead", details=stderr.strip())
    return None


def _service_cmd(engine: Engine, *args: str, name: str, what: str, timeout: float = 120) -> str:
    proc = engine.docker("service", *args, check=False, timeout=timeout)
    if proc.returncode != 0:
        known = classify_swarm_failure(proc.stderr, name=name)
        if known is not None:
            raise known
        raise DeployError(f"{what} failed: {_last_line(proc.stderr)}",
                          "see the docker message above; `dockyard --debug` shows the command",
                          details=proc.stderr.strip())
    return proc.stdout


# -- inputs --------------------------------------------------------------------------------
def check_name(name: str) -> None:
    if not isinstance(name, str) or not _SERVICE_NAME.match(name):
        raise DeploySpecError(
            f"{name!r} is not a valid service name (it becomes a DNS name on the overlay network)",
            'use lower-case letters, digits and "-", at most 63 characters, e.g. "digits"',
        )


def check_replicas(replicas: int) -> None:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise DeploySpecError(f"replicas must be a whole number >= 1, got {replicas!r}",
                              "pass --replicas 1 or more (use `dockyard deploy rm NAME` to remove a service)")


def parse_memory(memory: int | str) -> int:
    """Bytes in a memory amount, as docker reads it (the contract's one parser)."""
    try:
        return contract.parse_memory(memory)
    except contract.AmountError as exc:
        raise DeploySpecError(str(exc), 'pass e.g. --memory 512m or --memory 1.5g') from None


def check_cpus(cpus: float) -> None:
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not math.isfinite(cpus) or cpus < 0.01:
        raise DeploySpecError(f"cpus must be a number >= 0.01, got {cpus!r}", "pass e.g. --cpus 0.5")


def _reserve_cpus(value: float | None) -> float:
    if value is None:
        return 0.0  # the default: a fraction of the limit
    check_cpus(value)
    return float(value)


def check_env(env: Mapping[str, str]) -> None:
    for key in env:
        if key in MANAGED_ENV:
            raise DeploySpecError(f"{key} is set by dockyard from the deploy settings",
                                  f"drop {key}; change cpus or the shutdown budget instead")


def resolve_image(engine: Engine, image: str) -> str:
    """The pinned reference every node can run for ``image``; a clear error when they cannot.

    A pushed image (it has a registry digest) is deployed as ``repo@sha256:<digest>``: every
    node pulls the same bits. An image that exists only here is deployed by its local id,
    which works on a single-node swarm only - other nodes could never get it.
    """
    if not image or any(c.isspace() for c in image):
        raise DeploySpecError(f"{image!r} is not an image reference", "pass e.g. --image digits:3")
    proc = engine.docker("image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}}", image,
                         check=False, timeout=60)  # fmt: skip
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ImageNotFound(
            f"image {image} is not on this node, so the swarm cannot start it",
            f"build it first (`dockyard build -t {image}`), or pull/push it so every node can get it",
        )
    image_id, _, digests_json = proc.stdout.strip().partition(" ")
    digests = [str(d) for d in json.loads(digests_json or "[]") or []]
    if digests:
        return _same_repo_digest(image, digests)
    if swarm_nodes(engine) > 1:
        raise ImageNotFound(
            f"image {image} exists only on this node; the other nodes of the swarm cannot get it",
            "push it to a registry every node can reach (`dockyard push`), then deploy the pushed reference",
        )
    return image_id


def _same_repo_digest(image: str, digests: Sequence[str]) -> str:
    """Prefer the digest from the repository the user named (an image can be in several)."""
    repo = image.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return next((d for d in digests if d.split("@", 1)[0] == repo), digests[0])


def swarm_nodes(engine: Engine) -> int:
    proc = engine.docker("info", "--format", "{{.Swarm.Nodes}}", check=False, timeout=30)
    text = proc.stdout.strip()
    return int(text) if text.isdigit() else 1


def runtime_env(cpus: float, budget: ShutdownBudget) -> dict[str, str]:
    """Env every replica gets: drain time (agrees with stop_grace_period) and thread pools
    sized to the CPU limit, as in the Kubernetes renderer."""
    threads = str(max(1, math.ceil(cpus)))
    return {
        **budget.runtime_env(),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "DOCKYARD_WORKERS": threads,
    }


def health_cmd() -> str:
    # The same probe as the image's HEALTHCHECK, on the contract's port; -I keeps the app dir off sys.path.
    return ("python3 -I -c \"import urllib.request; "
            f"urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}{contract.READY_PATH}', timeout=2)\"")


@dataclass(frozen=True)
class ServiceSettings:
    """Everything ``deploy`` turns into ``docker service create/update`` flags."""

    name: str
    image_id: str
    image_ref: str
    version: str
    replicas: int
    cpus: float
    memory_bytes: int
    network: str
    env: Mapping[str, str]
    budget: ShutdownBudget
    reserve_cpus: float = 0.0  # 0: preflight.default_reservation (a fraction of the limit)
    reserve_memory: int = 0
    health_interval_s: int = 5
    health_start_period_s: int = 60
    health_retries: int = 3
    update_monitor_s: int = 15
    pids: int = 512
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    def shared_flags(self) -> list[str]:
        """Flags whose spelling is the same for create and update."""
        return [
            "--no-resolve-image",
            "--limit-cpu", f"{self.cpus:g}", "--limit-memory", str(self.memory_bytes),
            # Reservations below the limits (Kubernetes' requests < limits): several replicas fit a
            # small node, and each may still use up to its limit when the node has room.
            "--reserve-cpu", f"{self.reservation[0]:g}", "--reserve-memory", str(self.reservation[1]),
            "--limit-pids", str(self.pids),
            "--stop-grace-period", self.budget.swarm_stop_grace_period(),
            "--stop-signal", "SIGTERM",
            "--health-cmd", health_cmd(),
            "--health-interval", f"{self.health_interval_s}s", "--health-timeout", "3s",
            "--health-retries", str(self.health_retries),
            "--health-start-period", f"{self.health_start_period_s}s",
            "--update-order", "start-first", "--update-failure-action", "rollback",
            "--update-monitor", f"{self.update_monitor_s}s", "--update-parallelism", "1",
            "--update-max-failure-ratio", "0",
            "--rollback-order", "start-first", "--rollback-parallelism", "1",
            "--rollback-monitor", f"{self.update_monitor_s}s",
            "--restart-condition", "any", "--restart-delay", "2s",
            "--read-only", "--user", CONTAINER_USER, "--init",
        ]  # fmt: skip

    @property
    def reservation(self) -> tuple[float, int]:
        """(CPUs, bytes) each replica reserves: as given, else a fraction of the limits."""
        cpus, memory = preflight.default_reservation(self.cpus, self.memory_bytes)
        return self.reserve_cpus or cpus, self.reserve_memory or memory

    def request(self) -> preflight.SwarmRequest:
        return preflight.SwarmRequest(self.replicas, self.cpus, self.memory_bytes, *self.reservation)

    def labels(self) -> dict[str, str]:
        return {**self.extra_labels, LABEL_MANAGED: "true", LABEL_ROLE: "serve", LABEL_IMAGE_REF: self.image_ref,
                LABEL_VERSION: self.version}

    def full_env(self) -> dict[str, str]:
        return {**dict(sorted(self.env.items())), **runtime_env(self.cpus, self.budget)}


def create_args(s: ServiceSettings) -> list[str]:
    args = ["create", "--detach", "--name", s.name, "--replicas", str(s.replicas),
            "--network", s.network, "--endpoint-mode", "dnsrr",
            "--cap-drop", "ALL", "--mount", "type=tmpfs,destination=/tmp,tmpfs-size=268435456",
            *s.shared_flags()]
    for key, value in {**s.extra_labels, LABEL_SERVICE: s.name}.items():
        args += ["--container-label", f"{key}={value}"]
    for key, value in s.full_env().items():
        args += ["--env", f"{key}={value}"]
    for key, value in s.labels().items():
        args += ["--label", f"{key}={value}"]
    return [*args, s.image_id]


def update_args(s: ServiceSettings, current_env: Sequence[str]) -> list[str]:
    # --endpoint-mode too: a service first created elsewhere in vip mode is moved to dnsrr.
    args = ["update", "--detach", "--image", s.image_id, "--replicas", str(s.replicas),
            "--endpoint-mode", "dnsrr", *s.shared_flags()]
    wanted = s.full_env()
    have = {item.partition("=")[0]: item.partition("=")[2] for item in current_env}
    # Only changed keys: the docker CLI rebuilds the env list in map order on any --env-add,
    # and a reordered list is a new task template, i.e. a needless rolling restart.
    for key, value in wanted.items():
        if have.get(key) != value:
            args += ["--env-add", f"{key}={value}"]
    for key in sorted(set(have) - set(wanted)):
        args += ["--env-rm", key]
    for key, value in s.labels().items():
        args += ["--label-add", f"{key}={value}"]
    return [*args, s.name]


# -- network -------------------------------------------------------------------------------
def ensure_network(engine: Engine, network: str) -> bool:
    """Create the attachable overlay network if missing; True when we created it."""
    proc = engine.docker("network", "inspect", "--format", "{{.Driver}} {{.Scope}}", network, check=False, timeout=30)
    if proc.returncode == 0:
        driver = proc.stdout.split()[0] if proc.stdout.split() else ""
        if driver != "overlay":
            raise DeployError(f"network {network!r} exists but is a {driver or 'non-overlay'} network",
                              "pass --network with a new name; Swarm services need an overlay network")
        return False
    made = engine.docker("network", "create", "--driver", "overlay", "--attachable",
                         "--label", f"{LABEL_MANAGED}=true", network, check=False, timeout=60)
    if made.returncode != 0:
        known = classify_swarm_failure(made.stderr)
        raise known or DeployError(f"cannot create overlay network {network!r}: {_last_line(made.stderr)}",
                                   "check `docker network ls`, or pass another --network")
    return True


# -- reading state -------------------------------------------------------------------------
def _inspect_service(engine: Engine, name: str) -> dict[str, object] | None:
    proc = engine.docker("service", "inspect", name, check=False, timeout=30)
    if proc.returncode != 0:
        known = classify_swarm_failure(proc.stderr, name=name)
        if isinstance(known, ServiceNotFound) or "no such service" in proc.stderr.lower():
            return None
        raise known or DeployError(f"cannot inspect service {name}: {_last_line(proc.stderr)}", "check the engine")
    data = json.loads(proc.stdout)
    return dict(data[0]) if data else None


def _tasks(engine: Engine, name: str) -> tuple[TaskStatus, ...]:
    ids = _service_cmd(engine, "ps", "--quiet", "--no-trunc", name, name=name, what="docker service ps").split()
    if not ids:
        return ()
    proc = engine.docker("inspect", *ids, check=False, timeout=60)
    # A task can vanish between ps and inspect; docker still prints the others.
    tasks = json.loads(proc.stdout or "[]")
    return tuple(sorted((_task(t) for t in tasks), key=lambda t: (t.desired_state != "running", t.slot, t.id)))


def _task(raw: Mapping[str, object]) -> TaskStatus:
    status = dict(raw.get("Status") or {})  # type: ignore[call-overload]
    container = dict(status.get("ContainerStatus") or {})
    spec = dict(raw.get("Spec") or {})  # type: ignore[call-overload]
    image = str(dict(spec.get("ContainerSpec") or {}).get("Image", ""))
    addresses: list[str] = []
    for att in raw.get("NetworksAttachments") or []:  # type: ignore[attr-defined]
        addresses += [a.split("/")[0] for a in att.get("Addresses") or []]
    return TaskStatus(
        id=str(raw.get("ID", "")), slot=int(raw.get("Slot") or 0),  # type: ignore[call-overload]
        state=str(status.get("State", "")), desired_state=str(raw.get("DesiredState", "")),
        error=str(status.get("Err", "")), message=str(status.get("Message", "")),
        image=image, container_id=str(container.get("ContainerID", "")),
        addresses=tuple(addresses),
    )  # fmt: skip


def status(engine: Engine, name: str) -> ServiceStatus:
    """The service's spec, update state and tasks."""
    require_manager(engine)
    raw = _inspect_service(engine, name)
    if raw is None:
        raise ServiceNotFound(f"no Swarm service named {name!r}", "list services with `docker service ls`")
    st = _status_from(raw, _tasks(engine, name))
    return ServiceStatus(**{**st.__dict__, "network": _network_names(engine, st.network)})


def _network_names(engine: Engine, ids: str) -> str:
    names = []
    for net in filter(None, ids.split(",")):
        proc = engine.docker("network", "inspect", "--format", "{{.Name}}", net, check=False, timeout=30)
        names.append(proc.stdout.strip() if proc.returncode == 0 else net)
    return ",".join(names)


def _status_from(raw: Mapping[str, object], tasks: tuple[TaskStatus, ...]) -> ServiceStatus:
    spec = dict(raw.get("Spec") or {})  # type: ignore[call-overload]
    labels = dict(spec.get("Labels") or {})
    template = dict(spec.get("TaskTemplate") or {})
    image = str(dict(template.get("ContainerSpec") or {}).get("Image", ""))
    nets = [str(n.get("Target", "")) for n in template.get("Networks") or []]
    update = dict(raw.get("UpdateStatus") or {})  # type: ignore[call-overload]
    return ServiceStatus(
        name=str(spec.get("Name", "")), image=image, image_ref=str(labels.get(LABEL_IMAGE_REF, image)),
        version=str(labels.get(LABEL_VERSION, "")),
        replicas=int(dict(dict(spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 0)),
        network=",".join(nets), endpoint_mode=str(dict(spec.get("EndpointSpec") or {}).get("Mode", "vip")),
        update_state=str(update.get("State", "")), update_message=str(update.get("Message", "")),
        tasks=tasks,
    )  # fmt: skip


# -- verbs ---------------------------------------------------------------------------------
def deploy(
    engine: Engine,
    image: str,
    *,
    name: str,
    replicas: int = 2,
    cpus: float = 1.0,
    memory: int | str = "1g",
    network: str = DEFAULT_NETWORK,
    budget: ShutdownBudget | None = None,
    env: Mapping[str, str] | None = None,
    version: str = "",
    reserve_cpus: float | None = None,
    reserve_memory: int | str | None = None,
    health_interval_s: int = 5,
    health_start_period_s: int = 60,
    update_monitor_s: int = 15,
    timeout_s: float = 300,
    labels: Mapping[str, str] | None = None,
    on_line: Printer | None = None,
) -> ServiceStatus:
    """Create or update service ``name`` to run ``image`` and wait until it converges.

    Raises :class:`RolledBack` when the new version failed its health check and Swarm
    restored the previous one, and :class:`DeployError` (with task errors) when the service
    does not reach ``replicas`` healthy tasks within ``timeout_s``. A request the swarm can
    never schedule is refused before anything is created (:func:`preflight.check_swarm`).
    """
    check_name(name)
    check_replicas(replicas)
    check_cpus(cpus)
    check_env(env or {})
    settings = ServiceSettings(
        name=name, image_id="", image_ref=image, version=version, replicas=replicas, cpus=float(cpus),
        memory_bytes=parse_memory(memory), network=network, env=dict(env or {}),
        budget=budget or ShutdownBudget(), health_interval_s=health_interval_s,
        reserve_cpus=_reserve_cpus(reserve_cpus),
        reserve_memory=parse_memory(reserve_memory) if reserve_memory is not None else 0,
        health_start_period_s=health_start_period_s, update_monitor_s=update_monitor_s,
        extra_labels=dict(labels or {}),
    )  # fmt: skip
    require_manager(engine)
    before = _inspect_service(engine, name)
    preflight.check_swarm(preflight.swarm_nodes(engine), preflight.reserved_by_others(engine, name),
                          settings.request(), updating=before is not None)
    settings = ServiceSettings(**{**settings.__dict__, "image_id": resolve_image(engine, image)})
    say = on_line or (lambda _line: None)
    if ensure_network(engine, network):
        say(f"created overlay network {network} (attachable, for dnsrr service discovery)")
    if before is None:
        say(f"creating service {name}: {replicas} x {image}")
        _service_cmd(engine, *create_args(settings), name=name, what=f"creating service {name}")
        wait_converged(engine, name, timeout_s=timeout_s, on_line=say)
        return status(engine, name)
    current = dict(dict(dict(before["Spec"]).get("TaskTemplate") or {}).get("ContainerSpec") or {})  # type: ignore[call-overload]
    say(f"updating service {name} to {image} ({replicas} replicas, start-first, rollback on failure)")
    _service_cmd(engine, *update_args(settings, list(current.get("Env") or [])), name=name,
                 what=f"updating service {name}")
    wait_rollout(engine, name, before, timeout_s=timeout_s, on_line=say)
    return status(engine, name)


def wait_rollout(
    engine: Engine, name: str, before: Mapping[str, object], *, timeout_s: float, on_line: Printer
) -> ServiceStatus:
    """Follow an update until Swarm finishes it (or rolls it back), then until converged."""
    old_started = dict(before.get("UpdateStatus") or {}).get("StartedAt")  # type: ignore[call-overload]
    deadline = time.monotonic() + timeout_s
    while True:
        raw = _inspect_service(engine, name)
        if raw is None:
            raise ServiceNotFound(f"service {name!r} disappeared during the update", "deploy it again")
        update = dict(raw.get("UpdateStatus") or {})  # type: ignore[call-overload]
        # Only task-template changes roll tasks; scaling or a label change never sets UpdateStatus.
        same_template = _template(raw) == _template(before)
        this_update = update.get("StartedAt") not in (None, old_started)
        if same_template and not this_update:
            break  # nothing to roll out
        if this_update and update.get("State") in _UPDATE_DONE:
            break
        if time.monotonic() > deadline:
            st = _status_from(raw, _tasks(engine, name))
            raise _not_converged(st, timeout_s)
        time.sleep(POLL_S)
    state = str(update.get("State", ""))
    if this_update and state in {"rollback_completed", "rollback_paused"}:
        st = _status_from(raw, _tasks(engine, name))
        raise RolledBack(
            f"the new version of {name} did not become healthy; Swarm rolled back to {st.image_ref}",
            "fix the image (see the task errors and `docker service logs " + name + "`), then deploy again",
            details="\n".join([str(update.get("Message", "")), *st.task_errors()[:5]]).strip(),
        )
    if this_update and state == "paused":
        st = _status_from(raw, _tasks(engine, name))
        raise DeployError(f"the update of {name} paused: {update.get('Message', '')}",
                          f"fix the cause, then `dockyard deploy rollback {name}` or deploy again",
                          details="\n".join(st.task_errors()[:5]))
    return wait_converged(engine, name, timeout_s=max(5.0, deadline - time.monotonic()), on_line=on_line)


def _template(raw: Mapping[str, object]) -> object:
    spec = dict(raw.get("Spec") or {})  # type: ignore[call-overload]
    template = dict(spec.get("TaskTemplate") or {})
    return template


def wait_converged(engine: Engine, name: str, *, timeout_s: float, on_line: Printer | None = None) -> ServiceStatus:
    """Poll until every wanted replica runs the spec's image and passed its health check."""
    deadline = time.monotonic() + timeout_s
    last = -1
    while True:
        raw = _inspect_service(engine, name)
        if raw is None:
            raise ServiceNotFound(f"service {name!r} disappeared while starting", "deploy it again")
        st = _status_from(raw, _tasks(engine, name))
        if st.running != last and on_line:
            on_line(f"{name}: {st.running}/{st.replicas} replicas healthy")
            last = st.running
        if st.converged:
            return st
        if time.monotonic() > deadline:
            raise _not_converged(st, timeout_s)
        time.sleep(POLL_S)


def _not_converged(st: ServiceStatus, timeout_s: float) -> DeployError:
    errors = st.task_errors()
    return DeployError(
        f"service {st.name} has {st.running}/{st.replicas} healthy replicas after {timeout_s:.0f}s"
        + (f" ({errors[0]})" if errors else ""),
        f"see `docker service ps --no-trunc {st.name}` and `docker service logs {st.name}`; "
        f"remove it with `dockyard deploy rm {st.name}`",
        details="\n".join(errors[:8]),
    )


def rollback(engine: Engine, name: str, *, timeout_s: float = 300, on_line: Printer | None = None) -> ServiceStatus:
    """Return the service to its previous spec (``docker service rollback``) and wait."""
    check_name(name)
    require_manager(engine)
    if _inspect_service(engine, name) is None:
        raise ServiceNotFound(f"no Swarm service named {name!r}", "list services with `docker service ls`")
    _service_cmd(engine, "rollback", "--detach", name, name=name, what=f"rolling back {name}")
    wait_converged(engine, name, timeout_s=timeout_s, on_line=on_line)
    return status(engine, name)


def rm(engine: Engine, name: str) -> None:
    """Remove the service (its tasks get SIGTERM and the stop grace period)."""
    check_name(name)
    require_manager(engine)
    _service_cmd(engine, "rm", name, name=name, what=f"removing {name}")


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


# -- from a project folder -----------------------------------------------------------------
@dataclass(frozen=True)
class ProjectImage:
    """The serving image to deploy for a project, and the defaults its dockyard.yaml gives."""

    ref: str
    version: str
    name: str
    cpus: float
    memory: str


def project_image(
    project_dir: Path,
    engine: Engine,
    *,
    image: str | None = None,
    model: str | None = None,
    allow_unsafe_model: bool = False,
    on_line: Printer | None = None,
    replace: bool = False,
) -> ProjectImage:
    """``--image REF`` as is, or build the project's serving image (with ``--model``, a file
    or a stored version ``name:N``; an unknown version is a :class:`StoreError`)."""
    from dockyard import serving
    from dockyard.config import CONFIG_NAME, load_config
    if image and model:
        raise UsageError("give either --image or --model, not both",
                         "--image deploys a built image; --model builds one around a model")
    project_dir = project_dir.resolve()
    has_config = (project_dir / CONFIG_NAME).is_file()
    if image:
        # host:5000/team/digits:3@sha256:... -> name "digits", version "3"
        last = image.split("@", 1)[0].rsplit("/", 1)[-1]
        repo, _, tag = last.partition(":")
        name = load_config(project_dir).name if has_config else repo
        cpus, memory = _project_resources(project_dir) if has_config else (1.0, "1g")
        return ProjectImage(image, tag, _service_name(name), cpus, memory)
    cfg = load_config(project_dir)  # no dockyard.yaml: ConfigError says to run `dockyard init`
    # The same image `serve --model` builds: labelled with the version, tagged NAME:N.
    built, source = serving.build_model_image(project_dir, engine, model, allow_unsafe_model=allow_unsafe_model,
                                              tag=None if model else f"{cfg.name}:latest", on_line=on_line,
                                              verb="deploy", replace=replace)
    version = str(source.version.version) if source.version else ""
    return ProjectImage(built.tag, version, _service_name(cfg.name), cfg.resources.cpus, cfg.resources.memory)


def _project_resources(project_dir: Path) -> tuple[float, str]:
    from dockyard.config import load_config

    res = load_config(project_dir).resources
    return res.cpus, res.memory


def _service_name(name: str) -> str:
    # Project names may hold "." and "_", which DNS names cannot.
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "model"
