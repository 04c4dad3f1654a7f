"""Resource pre-flight: does a request fit the host (local runs) or the swarm (services)?

Checked before anything is built or created, so a request that can never be met fails at once
with the numbers, instead of a container that docker refuses or a service that waits forever
for "no suitable node (insufficient resources)".

Invariants:
- Amounts are read with the contract's parsers (docker semantics: "2G" = 2 GiB).
- Capacity comes from the engine: ``docker info`` (NCPU, MemTotal) for this host, ``docker node
  inspect`` (the scheduler's own view) for a swarm.
- A default that does not fit is fitted (a local run on a 1-core host gets 1 CPU); a value the
  user set explicitly and that does not fit is refused, naming both numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from .engine import Engine
from .errors import UsageError
from .runtime.contract import AmountError, format_memory, parse_cpus, parse_memory

#: Swarm replicas reserve this fraction of their limit by default, so a service with several
#: replicas fits a small node (3 replicas of a 2-CPU limit reserve 1.5 CPUs) while each replica
#: may still burst to its limit when the node is idle.
RESERVE_FRACTION = 0.25


@dataclass(frozen=True)
class Capacity:
    """CPUs and memory (bytes) of a host or a swarm node."""

    cpus: float
    memory: int
    where: str  # "this host" or "node NAME", for messages


def host_capacity(engine: Engine) -> Capacity:
    """This Docker host's CPUs and memory (``docker info``)."""
    info = engine.info()
    return Capacity(float(info.get("NCPU") or 0), int(info.get("MemTotal") or 0), "this host")


def fit_local(engine: Engine, cpus: float, memory: str, *, explicit: Sequence[str] = ("cpus", "memory"),
              what: str = "run") -> tuple[float, str]:
    """(cpus, memory) for a local container: refuse an explicit amount beyond the host, and
    lower a default one to what the host has. ``explicit`` names the amounts the user set."""
    try:
        want_mem = parse_memory(memory)
        parse_cpus(cpus)
    except AmountError as exc:
        raise UsageError(f"{what}: {exc}", "pass e.g. --cpus 0.5 --memory 1.5g") from None
    cap = host_capacity(engine)
    if cap.cpus and cpus > cap.cpus:
        if "cpus" in explicit:
            raise UsageError(
                f"{what} asks for {cpus:g} CPUs, but {cap.where} has {cap.cpus:g}",
                f"pass --cpus {cap.cpus:g} or less (or lower resources.cpus in dockyard.yaml)",
            )
        cpus = cap.cpus
    if cap.memory and want_mem > cap.memory:
        if "memory" in explicit:
            raise UsageError(
                f"{what} asks for {format_memory(want_mem)} of memory ({want_mem} bytes), "
                f"but {cap.where} has {_gib(cap.memory)}",
                f"pass --memory {format_memory(cap.memory // 2 >> 20 << 20)} or less "
                "(or lower resources.memory in dockyard.yaml)",
            )
        memory = format_memory(cap.memory // 2 >> 20 << 20)
    return cpus, memory


# -- swarm ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwarmRequest:
    """What a service asks of the swarm: per-replica limits and reservations."""

    replicas: int
    limit_cpus: float
    limit_memory: int
    reserve_cpus: float
    reserve_memory: int


def default_reservation(limit_cpus: float, limit_memory: int) -> tuple[float, int]:
    """Reservations that are RESERVE_FRACTION of the limits (at least 0.01 CPU and 4 MiB,
    Swarm's smallest; memory rounded down to whole MiB)."""
    cpus = max(0.01, round(limit_cpus * RESERVE_FRACTION, 2))
    memory = max(4 << 20, int(limit_memory * RESERVE_FRACTION) >> 20 << 20)
    return cpus, memory


def swarm_nodes(engine: Engine) -> list[Capacity]:
    """Ready, active nodes of the swarm and what each has (the scheduler's view)."""
    ids = engine.docker("node", "ls", "--quiet", timeout=30).stdout.split()
    if not ids:
        return []
    nodes = json.loads(engine.docker("node", "inspect", *ids, timeout=30).stdout or "[]")
    out = []
    for node in nodes:
        if node.get("Status", {}).get("State") != "ready" or node.get("Spec", {}).get("Availability") != "active":
            continue
        res = node.get("Description", {}).get("Resources", {})
        name = node.get("Description", {}).get("Hostname") or node.get("ID", "")[:12]
        out.append(Capacity(res.get("NanoCPUs", 0) / 1e9, int(res.get("MemoryBytes", 0)), f"node {name}"))
    return out


def reserved_by_others(engine: Engine, service: str) -> tuple[float, int]:
    """CPUs and memory that the other replicated services of the swarm reserve."""
    ids = engine.docker("service", "ls", "--quiet", timeout=30).stdout.split()
    if not ids:
        return 0.0, 0
    cpus, memory = 0.0, 0
    for svc in json.loads(engine.docker("service", "inspect", *ids, timeout=30).stdout or "[]"):
        spec = svc.get("Spec", {})
        if spec.get("Name") == service:
            continue
        replicas = int(spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0) or 0)
        reserve = spec.get("TaskTemplate", {}).get("Resources", {}).get("Reservations", {}) or {}
        cpus += replicas * reserve.get("NanoCPUs", 0) / 1e9
        memory += replicas * int(reserve.get("MemoryBytes", 0))
    return cpus, memory


def check_swarm(nodes: Sequence[Capacity], others: tuple[float, int], req: SwarmRequest, *,
                updating: bool = False) -> None:
    """Refuse a request the swarm can never schedule. Pure: the numbers come from the caller.

    An update with start-first order runs one extra task while it rolls, so it needs room for
    replicas + 1 reservations."""
    if not nodes:
        raise UsageError("the swarm has no ready, active node", "check `docker node ls`")
    biggest_cpus = max(n.cpus for n in nodes)
    biggest_mem = max(n.memory for n in nodes)
    if req.limit_cpus > biggest_cpus:
        raise UsageError(f"each replica may use {req.limit_cpus:g} CPUs, but the largest node has {biggest_cpus:g}",
                         f"pass --cpus {biggest_cpus:g} or less")
    if req.limit_memory > biggest_mem:
        raise UsageError(f"each replica may use {_gib(req.limit_memory)} of memory, but the largest node has "
                         f"{_gib(biggest_mem)}", f"pass --memory {format_memory(biggest_mem >> 20 << 20)} or less")
    if req.reserve_cpus > req.limit_cpus or req.reserve_memory > req.limit_memory:
        raise UsageError("a replica's reservation is larger than its limit",
                         "pass --reserve-cpus/--reserve-memory at most --cpus/--memory")
    tasks = req.replicas + (1 if updating else 0)
    free_cpus = sum(n.cpus for n in nodes) - others[0]
    free_mem = sum(n.memory for n in nodes) - others[1]
    why = f"{tasks} tasks" + (" (replicas + 1 while a start-first update rolls)" if updating else "")
    if tasks * req.reserve_cpus > free_cpus + 1e-9:
        most = max(0, int((free_cpus + 1e-9) // req.reserve_cpus) - (1 if updating else 0))
        raise UsageError(
            f"{why} x {req.reserve_cpus:g} reserved CPUs = {tasks * req.reserve_cpus:g} CPUs, but the swarm has "
            f"{free_cpus:g} free ({sum(n.cpus for n in nodes):g} on {len(nodes)} node(s), {others[0]:g} reserved "
            "by other services)",
            f"run at most {most} replicas, or lower --reserve-cpus (e.g. {max(0.01, free_cpus / tasks):.2f})",
        )
    if tasks * req.reserve_memory > free_mem:
        raise UsageError(
            f"{why} x {_gib(req.reserve_memory)} reserved memory = {_gib(tasks * req.reserve_memory)}, but the swarm "
            f"has {_gib(free_mem)} free ({others[1] and _gib(others[1]) or 'none'} reserved by other services)",
            f"lower --reserve-memory (e.g. {format_memory(max(4 << 20, free_mem // tasks) >> 20 << 20)}) or --replicas",
        )


def _gib(amount: int) -> str:
    return f"{amount / (1 << 30):.2f} GiB"

