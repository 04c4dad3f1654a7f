"""What dockyard started, and its lifecycle: `dockyard ps`, `logs`, `stop`, and serve's port claim.

Everything is found by the contract's labels, never by name patterns: containers carry
``LABEL_MANAGED=true`` and ``LABEL_ROLE`` (serve | train | notebook) from :func:`run_labels`;
Swarm services carry ``LABEL_MANAGED=true`` as a service label (deploy/swarm.py).

Invariants:
- A container or service without ``LABEL_MANAGED=true`` is never listed, followed or stopped,
  even when its image is a dockyard image (images carry ``LABEL_ROLE`` too).
- Swarm task containers are shown through their service, not one by one.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from .engine import Engine, Printer
from .errors import UsageError
from .runtime import contract

ROLES = ("serve", "train", "notebook")
STOP_GRACE_S = 15
_SWARM_SERVICE = "com.docker.swarm.service.name"  # docker's own label on a service's task containers


def run_labels(project_dir: Path, name: str, role: str) -> dict[str, str]:
    """Labels on every container dockyard starts; ps, logs and stop find containers by them."""
    return {contract.LABEL_MANAGED: "true", contract.LABEL_ROLE: role, contract.LABEL_NAME: name,
            contract.LABEL_PROJECT: str(project_dir)}


@dataclass(frozen=True)
class Managed:
    """One thing dockyard started: a container (serve/train/notebook) or a Swarm service."""

    kind: str  # "container" | "service"
    id: str
    name: str  # what `dockyard logs/stop` take
    role: str
    project: str  # the project name (dockyard.yaml name)
    version: str  # model version (serve), run id (train), or the service's version label
    url: str
    state: str  # running, exited, ... for containers; "3/3" for services
    health: str  # healthy/unhealthy/starting, or "-" when there is no health check
    started: str  # ISO time, "" when unknown
    uptime_s: float | None
    cpu_percent: float | None
    memory_bytes: int | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# -- listing ---------------------------------------------------------------------------
def ps(engine: Engine, *, all_: bool = False, now: datetime | None = None) -> list[Managed]:
    """Containers and Swarm services dockyard started; stopped containers only with ``all_``."""
    now = now or datetime.now(UTC)
    rows = _containers(engine, all_=all_, now=now)
    rows += _services(engine, now=now)
    return sorted(rows, key=lambda m: (m.project, m.role, m.name))


def _containers(engine: Engine, *, all_: bool, now: datetime) -> list[Managed]:
    listed = engine.containers([f"label={contract.LABEL_MANAGED}=true"], all_=all_)
    raw = engine.inspect_many([c["ID"] for c in listed])
    raw = [c for c in raw if _SWARM_SERVICE not in (_labels(c))]
    stats = engine.stats([str(c["Id"]) for c in raw if _state(c).get("Running")])
    return [_container_row(c, stats.get(str(c["Id"])), now) for c in raw]


def _labels(raw: Mapping[str, object]) -> dict[str, str]:
    config = raw.get("Config") or {}
    return dict(config.get("Labels") or {}) if isinstance(config, Mapping) else {}


def _state(raw: Mapping[str, object]) -> dict[str, object]:
    state = raw.get("State") or {}
    return dict(state) if isinstance(state, Mapping) else {}


def _container_row(raw: Mapping[str, object], stats: Mapping[str, str] | None, now: datetime) -> Managed:
    labels, state = _labels(raw), _state(raw)
    role = labels.get(contract.LABEL_ROLE, "")
    version = labels.get(contract.LABEL_MODEL_VERSION, "") if role != "train" else labels.get(contract.LABEL_RUN_ID, "")
    health = dict(state.get("Health") or {}).get("Status", "-")  # type: ignore[call-overload]
    started = str(state.get("StartedAt", "")) if state.get("Running") else ""
    cpu, mem = _usage(stats)
    return Managed(
        kind="container", id=str(raw.get("Id", ""))[:12], name=str(raw.get("Name", "")).lstrip("/"), role=role,
        project=labels.get(contract.LABEL_NAME, ""), version=version or "-", url=_url(raw),
        state=str(state.get("Status", "")), health=str(health), started=started,
        uptime_s=_since(started, now), cpu_percent=cpu, memory_bytes=mem,
    )  # fmt: skip


def _url(raw: Mapping[str, object]) -> str:
    """http://HOST:PORT of the container port the contract serves on (or the first published one)."""
    net = raw.get("NetworkSettings") or {}
    ports = dict(net.get("Ports") or {}) if isinstance(net, Mapping) else {}
    wanted = f"{contract.CONTAINER_PORT}/tcp"
    for key in [wanted, *sorted(ports)]:
        for binding in ports.get(key) or []:
            host = binding.get("HostIp") or "127.0.0.1"
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            return f"http://{host}:{binding.get('HostPort')}"
    return "-"


def _since(iso: str, now: datetime) -> float | None:
    if not iso or iso.startswith("0001-"):
        return None
    head, _, frac = iso.rstrip("Z").partition(".")
    try:
        then = datetime.fromisoformat(head + (f".{frac[:6]}" if frac else "")).replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, (now - then).total_seconds())


def _usage(stats: Mapping[str, str] | None) -> tuple[float | None, int | None]:
    if not stats:
        return None, None
    try:
        cpu = float(str(stats.get("CPUPerc", "")).rstrip("%"))
    except ValueError:
        cpu = None
    used = str(stats.get("MemUsage", "")).split("/")[0].strip()
    return cpu, _docker_size(used)


def _docker_size(text: str) -> int | None:
    """docker stats sizes: "12.5MiB", "1.2GiB", "512KiB", "0B" (also kB/MB/GB)."""
    units = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
             "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
    number = text.rstrip("BbKkMmGgTtIi")
    unit = text[len(number):].lower()
    try:
        return int(float(number) * units[unit])
    except (ValueError, KeyError):
        return None


def _services(engine: Engine, *, now: datetime) -> list[Managed]:
    if str(dict(engine.info().get("Swarm") or {}).get("ControlAvailable")) != "True":
        return []  # not a manager: no services to list
    proc = engine.docker("service", "ls", "--filter", f"label={contract.LABEL_MANAGED}=true",
                         "--format", "{{.Name}}\t{{.Replicas}}", check=False, timeout=30)
    replicas = dict(line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line)
    rows = []
    for raw in engine.inspect_many(list(replicas), kind="service"):
        spec = dict(raw.get("Spec") or {})  # type: ignore[call-overload]
        labels = dict(spec.get("Labels") or {})
        name = str(spec.get("Name", ""))
        tasks = engine.containers([f"label={_SWARM_SERVICE}={name}"], all_=False)
        stats = engine.stats([t["ID"] for t in tasks])
        cpus = [c for c, _ in map(_usage, stats.values()) if c is not None]
        mems = [m for _, m in map(_usage, stats.values()) if m is not None]
        count = replicas.get(name, "")
        running, _, wanted = count.partition("/")
        started = str(raw.get("UpdatedAt") or raw.get("CreatedAt") or "")
        rows.append(Managed(
            kind="service", id=str(raw.get("ID", ""))[:12], name=name, role="serve",
            project=labels.get(contract.LABEL_NAME, name), version=labels.get(contract.LABEL_VERSION, "") or "-",
            url=f"http://{name}:{contract.CONTAINER_PORT} (network {_networks(engine, spec)})", state=count,
            health="healthy" if running and running == wanted else "degraded", started=started,
            uptime_s=_since(started, now), cpu_percent=sum(cpus) if cpus else None,
            memory_bytes=sum(mems) if mems else None,
        ))  # fmt: skip
    return rows


def _networks(engine: Engine, spec: Mapping[str, object]) -> str:
    template = dict(spec.get("TaskTemplate") or {})  # type: ignore[call-overload]
    ids = [str(n.get("Target", "")) for n in template.get("Networks") or []]
    names = [str(n.get("Name", "")) for n in engine.inspect_many(ids, kind="network")]
    return ",".join(names) or "-"


# -- choosing what a NAME means ----------------------------------------------------------
def find(engine: Engine, name: str, *, all_: bool = True) -> list[Managed]:
    """What NAME means: a container or service name, an id prefix, or a project name (all of
    that project's). A clear error when nothing dockyard started matches."""
    rows = ps(engine, all_=all_)
    for match in (
        [m for m in rows if m.name == name],
        [m for m in rows if len(name) >= 4 and m.id.startswith(name)],
        [m for m in rows if m.project == name],
    ):
        if match:
            return match
    known = ", ".join(sorted({m.name for m in rows})[:8]) or "none running"
    raise UsageError(f"nothing dockyard started is called {name!r} (known: {known})",
                     "see `dockyard ps` for names; give a container/service name, an id or a project name")


# -- logs --------------------------------------------------------------------------------
def logs(engine: Engine, name: str, *, follow: bool = False, tail: int | None = None,
         on_line: Printer) -> int:
    """Print (or follow, until it stops or Ctrl-C) the output of one thing dockyard started."""
    matches = find(engine, name)
    if len(matches) > 1:
        raise UsageError(f"{name!r} means {len(matches)} things: {', '.join(m.name for m in matches)}",
                         "give one container or service name (see `dockyard ps`)")
    target = matches[0]
    args = ["service", "logs"] if target.kind == "service" else ["logs"]
    args += ["--follow"] if follow else []
    args += ["--tail", str(tail)] if tail is not None else []
    proc = engine.stream(*args, target.name)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            on_line(line.rstrip("\n"))
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise


# -- stop --------------------------------------------------------------------------------
def stop(engine: Engine, name: str | None = None, *, all_: bool = False,
         grace_s: int = STOP_GRACE_S) -> list[Managed]:
    """Stop what NAME means (or everything with ``all_``) and return what was stopped.

    Servers and notebooks are removed after they stop (they hold ports and names); a training
    container is only stopped: its `dockyard train` records the failed run and removes it.
    Services are removed with `docker service rm` (their replicas drain within the grace period)."""
    if (name is None) == (not all_):
        raise UsageError("give a NAME or --all, not both or neither", "see `dockyard ps` for names")
    targets = ps(engine, all_=True) if all_ else find(engine, name or "")
    for t in targets:
        if t.kind == "service":
            engine.docker("service", "rm", t.name, check=False, timeout=120)
            continue
        engine.docker("stop", "--time", str(grace_s), t.id, check=False, timeout=grace_s + 60)
        if t.role != "train":
            engine.remove_container(t.id)
    return targets


# -- serve's host port -------------------------------------------------------------------
def claim_port(engine: Engine, port: int, *, public: bool = False, replace: bool = False) -> None:
    """Make sure ``port`` is free for a new server: refuse when something holds it, unless
    ``replace`` and the holder is a container dockyard started (then it is removed)."""
    holders = [c for c in engine.inspect_many([c["ID"] for c in engine.containers(all_=False)])
               if str(port) in _host_ports(c)]
    for holder in holders:
        labels = _labels(holder)
        who = str(holder.get("Name", "")).lstrip("/") or str(holder.get("Id", ""))[:12]
        if labels.get(contract.LABEL_MANAGED) != "true":
            raise UsageError(f"port {port} is used by container {who}, which dockyard did not start",
                             f"stop it yourself (`docker stop {who}`), or pass another --port")
        if not replace:
            what = f"{labels.get(contract.LABEL_ROLE, '?')} {labels.get(contract.LABEL_NAME, '')}".strip()
            raise UsageError(f"port {port} is in use by {who} ({what}, started by dockyard)",
                             f"pass --replace to replace it, `dockyard stop {who}`, or another --port")
        engine.docker("stop", "--time", str(STOP_GRACE_S), who, check=False, timeout=STOP_GRACE_S + 60)
        engine.remove_container(who)
    if not _bindable(port, "0.0.0.0" if public else "127.0.0.1"):
        raise UsageError(f"port {port} is in use by a program on this host (not a container)",
                         "stop that program, or pass another --port")


def _host_ports(raw: Mapping[str, object]) -> set[str]:
    net = raw.get("NetworkSettings") or {}
    ports = dict(net.get("Ports") or {}) if isinstance(net, Mapping) else {}
    return {str(b.get("HostPort")) for bindings in ports.values() for b in bindings or []}


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers do not count
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# -- text --------------------------------------------------------------------------------
def human_duration(seconds: float | None) -> str:
    """42s, 5m07s, 3h05m, 2d03h."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
