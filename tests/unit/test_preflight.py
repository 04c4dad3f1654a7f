"""Resource pre-flight for Swarm (pure: node numbers in, a clear refusal out)."""

from __future__ import annotations

import pytest

from dockyard.errors import UsageError
from dockyard.preflight import Capacity, SwarmRequest, check_swarm, default_reservation

GIB = 1 << 30
TWO_CORES = [Capacity(2.0, 8 * GIB, "node here")]


def request(replicas: int, cpus: float = 2.0, memory: int = 2 * GIB, reserve: tuple[float, int] | None = None) -> SwarmRequest:
    r_cpus, r_mem = reserve or default_reservation(cpus, memory)
    return SwarmRequest(replicas, cpus, memory, r_cpus, r_mem)


def test_default_reservations_let_three_replicas_of_the_default_size_fit_two_cores() -> None:
    # dockyard.yaml's defaults are 2 CPUs and 2g; three replicas used to reserve 6 CPUs here.
    assert default_reservation(2.0, 2 * GIB) == (0.5, 512 << 20)
    check_swarm(TWO_CORES, (0.0, 0), request(3))
    check_swarm(TWO_CORES, (0.0, 0), request(3), updating=True)  # 4 x 0.5 during a start-first update


def test_reservations_beyond_the_node_are_refused_with_the_numbers() -> None:
    with pytest.raises(UsageError) as info:
        check_swarm(TWO_CORES, (0.0, 0), request(3, reserve=(1.0, GIB)))
    problem, fix = info.value.problem, info.value.fix
    assert "3 tasks x 1 reserved CPUs = 3 CPUs" in problem and "2 free" in problem and "2 on 1 node(s)" in problem
    assert "at most 2 replicas" in fix and "--reserve-cpus" in fix


def test_an_update_needs_room_for_one_more_task_and_other_services_count() -> None:
    check_swarm(TWO_CORES, (0.0, 0), request(2, reserve=(1.0, GIB)))
    with pytest.raises(UsageError, match=r"replicas \+ 1 while a start-first update rolls"):
        check_swarm(TWO_CORES, (0.0, 0), request(2, reserve=(1.0, GIB)), updating=True)
    with pytest.raises(UsageError, match="1.5 reserved by other services"):
        check_swarm(TWO_CORES, (1.5, 0), request(1, reserve=(1.0, GIB)))


def test_a_limit_larger_than_any_node_is_refused() -> None:
    with pytest.raises(UsageError) as info:
        check_swarm(TWO_CORES, (0.0, 0), request(1, cpus=4.0))
    assert "4 CPUs" in info.value.problem and "largest node has 2" in info.value.problem
    assert info.value.fix == "pass --cpus 2 or less"
    with pytest.raises(UsageError, match="16.00 GiB of memory, but the largest node has 8.00 GiB"):
        check_swarm(TWO_CORES, (0.0, 0), request(1, memory=16 * GIB))


def test_memory_reservations_are_checked_too() -> None:
    with pytest.raises(UsageError, match=r"3 tasks x 4.00 GiB reserved memory = 12.00 GiB"):
        check_swarm(TWO_CORES, (0.0, 0), request(3, cpus=0.5, memory=4 * GIB, reserve=(0.1, 4 * GIB)))


def test_a_reservation_above_its_limit_is_refused() -> None:
    with pytest.raises(UsageError, match="reservation is larger than its limit"):
        check_swarm(TWO_CORES, (0.0, 0), request(1, cpus=0.5, reserve=(1.0, GIB)))
