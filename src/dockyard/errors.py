"""Every error dockyard raises on purpose.

Each error carries a one-line *problem* and a one-line *fix*; the CLI prints
those two lines (never a traceback unless ``--debug``) and exits with the
error's ``exit_code``::

    DockyardError                  exit 1 unless stated
    ├── ConfigError                 bad or missing dockyard.yaml / project input
    ├── DetectError                 project files we cannot read or map
    ├── CompatError                 impossible framework / python / CUDA combination
    ├── UsageError                  bad flags or arguments
    ├── StoreError                  model store problems (corrupt index, unknown version)
    ├── ScanError                   scanner could not run / policy failure (exit 1)
    ├── EnvironmentProblem          exit 2: the host lacks something
    │   ├── EngineError             no / unusable Docker Engine, no BuildKit
    │   └── RegistryError           registry unreachable, auth failure, unknown tag
    ├── BuildError                  exit 3: a failed image build (step + log tail)
    ├── RunError                    exit 3: a container / train / serve run failed
    └── DeployError                 exit 3 unless a subclass says otherwise
"""

from __future__ import annotations


class DockyardError(Exception):
    """Base class: a problem a person can act on."""

    exit_code: int = 1

    def __init__(self, problem: str, fix: str = "", *, details: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.details = details

    def __str__(self) -> str:
        text = self.problem
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class ConfigError(DockyardError):
    """dockyard.yaml (or a project file it names) is missing or invalid."""


class DetectError(DockyardError):
    """A project file could not be parsed or mapped."""


class CompatError(DockyardError):
    """No valid combination of framework, Python, CUDA and base image."""


class UsageError(DockyardError):
    """Flags or arguments that do not make sense together."""


class StoreError(DockyardError):
    """The model store is corrupt, or a version does not exist."""


class ScanError(DockyardError):
    """The scanner could not run, or a scan gate failed."""


class EnvironmentProblem(DockyardError):
    """The host lacks something dockyard needs (engine, registry, disk)."""

    exit_code = 2


class EngineError(EnvironmentProblem):
    """No reachable or usable Docker Engine, or no BuildKit."""


class RegistryError(EnvironmentProblem):
    """An OCI registry refused or could not be reached."""


class BuildError(DockyardError):
    """An image build failed; ``details`` holds the log tail."""

    exit_code = 3

    def __init__(self, problem: str, fix: str = "", *, step: str = "", log_tail: str = "") -> None:
        super().__init__(problem, fix, details=log_tail)
        self.step = step
        self.log_tail = log_tail


class RunError(DockyardError):
    """A container run (command, training, serving) failed."""

    exit_code = 3

    def __init__(
        self, problem: str, fix: str = "", *, exit_status: int | None = None, log_tail: str = ""
    ) -> None:
        super().__init__(problem, fix, details=log_tail)
        self.exit_status = exit_status
        self.log_tail = log_tail


class DeployError(DockyardError):
    """A deployment could not be created, updated or inspected."""

    exit_code = 3
