"""The real `dockyard` CLI, run from tests as a user runs it: one helper for the test files that
do (the user's DOCKYARD_* settings are left out; plain, wide output)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def dockyard_cli(*args: str, cwd: Path | None = None, home: Path | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """``python -m dockyard ARGS``; ``home`` becomes DOCKYARD_HOME, ``env`` is added last."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    full.update({"NO_COLOR": "1", "COLUMNS": "300"})
    if home is not None:
        full["DOCKYARD_HOME"] = str(home)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], cwd=cwd, capture_output=True, text=True,
                          env=full, timeout=timeout, check=False)


def free_port() -> int:
    """A free loopback port (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
