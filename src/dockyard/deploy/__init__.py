"""Deploy: hand a built model image to an existing orchestrator.

``DeploySpec`` is the one input every deploy target reads (Kubernetes/KServe
renderers in :mod:`dockyard.deploy.kubernetes`, Swarm in ``deploy/swarm.py``).
It is validated on construction, so renderers can trust it; every bad value
raises :class:`DeploySpecError` naming the field and how to fix it.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

from dockyard.deploy.shutdown import ShutdownBudget
from dockyard.errors import DeployError
from dockyard.runtime import contract

__all__ = [
    "DeploySpec",
    "DeploySpecError",
    "KubernetesUnavailable",
    "ShutdownBudget",
]


class DeploySpecError(DeployError):
    """A deploy spec value is invalid (a user error, exit 1)."""

    exit_code = 1


class KubernetesUnavailable(DeployError):
    """kubectl is missing or the cluster cannot be reached (environment, exit 2)."""

    exit_code = 2


# Kubernetes names: Services (and KServe) need RFC 1035 labels - start with a letter.
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# Names the renderers set themselves; letting `env` override them would break the
# thread sizing or the shutdown agreement silently.
MANAGED_ENV = frozenset(
    {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "DOCKYARD_WORKERS",
     "DOCKYARD_GRACE_PERIOD_S", "DOCKYARD_PORT", "DOCKYARD_MODEL"}
)  # fmt: skip


def _fail(field_name: str, problem: str, fix: str) -> DeploySpecError:
    return DeploySpecError(f"deploy spec field '{field_name}': {problem}", fix)


@dataclass(frozen=True)
class DeploySpec:
    """What to deploy and how big; the renderers turn it into manifests."""

    name: str
    image: str  # prefer a digest reference (repo@sha256:...) so every node runs the same bits
    version: str = "1"
    model: str = ""  # model name served at /v2/models/<model>; defaults to `name`
    replicas: int = 2
    cpus: float = 1.0
    memory: int | str = "1g"  # docker semantics (contract.parse_memory): "2G" and "2Gi" are 2 GiB
    gpus: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = None
    autoscale: bool = True
    min_replicas: int | None = None  # defaults to `replicas`
    max_replicas: int | None = None  # defaults to 2 x min_replicas
    target_cpu_utilization: int = 70  # percent of the CPU request, for the HPA
    startup_timeout_s: int = 120  # model load time allowed before liveness starts
    train_command: tuple[str, ...] = ()  # empty: no training Job is rendered
    data_pvc: str | None = None  # training data: a PersistentVolumeClaim ...
    data_host_path: str | None = None  # ... or a node path (single-node clusters only)
    data_mount: str = "/data"
    output_pvc: str | None = None  # training outputs; emptyDir when unset
    output_mount: str = contract.OUTPUTS_DIR
    active_deadline_s: int = 3600
    backoff_limit: int = 1
    shutdown: ShutdownBudget = field(default_factory=ShutdownBudget)

    def __post_init__(self) -> None:
        # Freeze the env mapping and tuple-ise the command so the spec really is immutable.
        object.__setattr__(self, "env", types.MappingProxyType(dict(self.env)))
        if isinstance(self.train_command, str):
            # tuple("python train.py") would silently split it into characters.
            raise _fail(
                "train_command",
                f"{self.train_command!r} is one string, not a list of arguments",
                'pass a list, e.g. ("python", "train.py")',
            )
        object.__setattr__(self, "train_command", tuple(self.train_command))
        if not self.model:
            object.__setattr__(self, "model", self.name)
        self._check_names()
        self._check_sizes()
        self._check_scaling()
        self._check_training()
        self._check_env()

    # -- derived values -------------------------------------------------------------
    @property
    def effective_min_replicas(self) -> int:
        return self.min_replicas if self.min_replicas is not None else self.replicas

    @property
    def effective_max_replicas(self) -> int:
        if self.max_replicas is not None:
            return self.max_replicas
        return 2 * self.effective_min_replicas

    @property
    def memory_bytes(self) -> int:
        return contract.parse_memory(self.memory)

    @property
    def threads(self) -> int:
        """Thread count that fits the CPU limit: ceil(cpus), at least 1."""
        return max(1, math.ceil(self.cpus))

    @property
    def image_is_pinned(self) -> bool:
        return "@sha256:" in self.image

    # -- checks -----------------------------------------------------------------------
    def _check_names(self) -> None:
        # Longest derived name is "<name>-train-<version>"; keep `name` short enough for it.
        if (
            not isinstance(self.name, str)
            or len(self.name) > 40
            or not _DNS_1035_LABEL.match(self.name)
        ):
            raise _fail(
                "name",
                f"{self.name!r} is not a valid Kubernetes name (RFC 1035 label, at most 40 characters)",
                'use lower-case letters, digits and "-", starting with a letter, e.g. "digits"',
            )
        if self.namespace is not None and not _DNS_1035_LABEL.match(
            self.namespace or "-"
        ):
            raise _fail(
                "namespace",
                f"{self.namespace!r} is not a valid namespace",
                'use e.g. "ml"',
            )
        if (
            not isinstance(self.version, str)
            or not self.version
            or len(self.version) > 63
            or not _LABEL_VALUE.match(self.version)
        ):
            raise _fail(
                "version",
                f"{self.version!r} cannot be a Kubernetes label value",
                'use at most 63 letters, digits, "-", "_" or ".", e.g. "3" or "1.2.0"',
            )
        if (
            not isinstance(self.image, str)
            or not self.image
            or any(c.isspace() for c in self.image)
        ):
            raise _fail(
                "image",
                f"{self.image!r} is not an image reference",
                "pass e.g. registry.example.com/digits@sha256:<digest>",
            )
        if any(c.isspace() for c in self.model) or "/" in self.model:
            raise _fail(
                "model", f"{self.model!r} is not a model name", 'use e.g. "digits"'
            )

    def _check_sizes(self) -> None:
        cpus = self.cpus
        if (
            isinstance(cpus, bool)
            or not isinstance(cpus, (int, float))
            or not math.isfinite(cpus)
            or round(cpus * 1000) < 1
        ):
            raise _fail(
                "cpus",
                f"{cpus!r} must be a positive number of CPUs (at least 0.001)",
                "pass e.g. cpus=1 or cpus=0.5",
            )
        try:
            contract.parse_memory(self.memory)
        except contract.AmountError as exc:
            raise _fail("memory", str(exc), 'pass e.g. memory="512m" or "2g"') from None
        _positive_int(
            "gpus", self.gpus, minimum=0, fix="pass gpus=0 for CPU-only or gpus=1"
        )
        _positive_int(
            "startup_timeout_s", self.startup_timeout_s, minimum=1, fix="pass e.g. 120"
        )

    def _check_scaling(self) -> None:
        _positive_int(
            "replicas", self.replicas, minimum=1, fix="pass replicas=1 or more"
        )
        if self.min_replicas is not None:
            _positive_int(
                "min_replicas",
                self.min_replicas,
                minimum=1,
                fix="pass min_replicas=1 or more",
            )
        if self.max_replicas is not None:
            _positive_int(
                "max_replicas",
                self.max_replicas,
                minimum=1,
                fix="pass max_replicas=1 or more",
            )
        if self.effective_min_replicas > self.effective_max_replicas:
            raise _fail(
                "min_replicas",
                f"min_replicas {self.effective_min_replicas} is greater than max_replicas {self.effective_max_replicas}",
                "make min_replicas (default: replicas) <= max_replicas",
            )
        _positive_int(
            "target_cpu_utilization",
            self.target_cpu_utilization,
            minimum=1,
            fix="pass a percentage such as 70",
        )
        if self.target_cpu_utilization > 100:
            raise _fail(
                "target_cpu_utilization",
                f"{self.target_cpu_utilization}% is above 100% of the CPU limit",
                "pass a percentage such as 70",
            )

    def _check_training(self) -> None:
        if self.data_pvc is not None and self.data_host_path is not None:
            raise _fail(
                "data_pvc",
                "both data_pvc and data_host_path are set",
                "give exactly one source for the training data",
            )
        for name in ("data_pvc", "output_pvc"):
            value = getattr(self, name)
            if value is not None and (
                len(value) > 63 or not _DNS_1035_LABEL.match(value)
            ):
                raise _fail(
                    name,
                    f"{value!r} is not a valid PersistentVolumeClaim name",
                    'use e.g. "digits-data"',
                )
        for name in ("data_host_path", "data_mount", "output_mount"):
            value = getattr(self, name)
            if value is not None and not value.startswith("/"):
                raise _fail(
                    name,
                    f"{value!r} is not an absolute path",
                    "use a path starting with /",
                )
        if any(not isinstance(arg, str) or not arg for arg in self.train_command):
            raise _fail(
                "train_command",
                f"{self.train_command!r} has an empty or non-string argument",
                'pass e.g. ("python", "train.py")',
            )
        _positive_int(
            "active_deadline_s",
            self.active_deadline_s,
            minimum=1,
            fix="pass the longest a training run may take, e.g. 3600",
        )
        _positive_int(
            "backoff_limit",
            self.backoff_limit,
            minimum=0,
            fix="pass 0 (no retries) or more",
        )

    def _check_env(self) -> None:
        for key, value in self.env.items():
            if not isinstance(key, str) or not _ENV_NAME.match(key):
                raise _fail(
                    "env",
                    f"{key!r} is not a valid environment variable name",
                    "use letters, digits, '_', '-' or '.', not starting with a digit",
                )
            if not isinstance(value, str):
                raise _fail(
                    "env",
                    f"value of {key} must be a string, got {type(value).__name__}",
                    f'quote it, e.g. {key}="{value}"',
                )
            if key in MANAGED_ENV:
                raise _fail(
                    "env",
                    f"{key} is set by dockyard from the spec",
                    f"drop {key} from env; change cpus or the shutdown budget instead",
                )


def _positive_int(field_name: str, value: object, *, minimum: int, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(field_name, f"{value!r} must be a whole number >= {minimum}", fix)
