"""The one graceful-shutdown budget shared by the runtime, Swarm and Kubernetes.

A replica that is told to stop must (1) fall out of load balancing, (2) finish the
requests it already holds, then (3) exit before the orchestrator kills it. Three
numbers decide whether that works, and they live here so they cannot drift apart:

* ``drain_s`` (G): how long the runtime keeps serving in-flight requests after
  SIGTERM. The runtime reads it from ``--grace-period-s`` or the env var
  ``DOCKYARD_GRACE_PERIOD_S``; manifests pass it explicitly so the runtime's own
  default never matters.
* ``pre_stop_s`` (P): Kubernetes only. Endpoint removal is asynchronous: kube-proxy
  and ingress controllers keep routing to a terminating pod for a few seconds. A
  ``preStop`` sleep of P seconds delays SIGTERM until they have caught up.
* ``margin_s``: slack for process exit, flushing logs and slow nodes.

Kubernetes: ``terminationGracePeriodSeconds = P + G + margin`` (the kubelet's
clock starts *before* preStop runs). Swarm has no preStop, so its
``stop_grace_period = G + margin`` (the swarm engineer's ``deploy/swarm.py`` reads
:func:`ShutdownBudget.swarm_stop_grace_period`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.errors import DeployError

GRACE_ENV = "DOCKYARD_GRACE_PERIOD_S"
GRACE_FLAG = "--grace-period-s"
DEFAULT_DRAIN_S = 10
DEFAULT_PRE_STOP_S = 5
DEFAULT_MARGIN_S = 5


class ShutdownBudgetError(DeployError):
    """A shutdown budget number is out of range (a user error, exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class ShutdownBudget:
    """Seconds each phase of a graceful stop may take; see the module docstring."""

    drain_s: int = DEFAULT_DRAIN_S
    pre_stop_s: int = DEFAULT_PRE_STOP_S
    margin_s: int = DEFAULT_MARGIN_S

    def __post_init__(self) -> None:
        _check_seconds("drain_s", self.drain_s, minimum=1)
        _check_seconds("pre_stop_s", self.pre_stop_s, minimum=0)
        _check_seconds("margin_s", self.margin_s, minimum=1)

    @property
    def termination_grace_period_s(self) -> int:
        """Kubernetes ``terminationGracePeriodSeconds``: covers preStop + drain + margin."""
        return self.pre_stop_s + self.drain_s + self.margin_s

    @property
    def swarm_stop_grace_period_s(self) -> int:
        """Docker/Swarm ``stop_grace_period`` in seconds: drain + margin (no preStop there)."""
        return self.drain_s + self.margin_s

    def swarm_stop_grace_period(self) -> str:
        """``stop_grace_period`` as Docker's CLI and compose files spell it, e.g. ``15s``."""
        return f"{self.swarm_stop_grace_period_s}s"

    def runtime_env(self) -> dict[str, str]:
        """Env vars that tell the runtime how long to drain."""
        return {GRACE_ENV: str(self.drain_s)}

    def runtime_args(self) -> list[str]:
        """The same setting as runtime command-line flags."""
        return [GRACE_FLAG, str(self.drain_s)]


def _check_seconds(field: str, value: object, *, minimum: int) -> None:
    # bool is an int subclass; `True` seconds is always a mistake.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ShutdownBudgetError(
            f"shutdown budget {field} must be a whole number of seconds >= {minimum}, got {value!r}",
            f"pass {field}={max(minimum, 1)} or more (defaults: drain 10 s, pre-stop 5 s, margin 5 s)",
        )
