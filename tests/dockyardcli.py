"""The real `dockyard` CLI, run from tests as a user runs it: one helper for the test files that
do (the user's DOCKYARD_* settings are left out; plain, wide output)."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO


def _env(home: Path | None, env: Mapping[str, str] | None) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    full.update({"NO_COLOR": "1", "COLUMNS": "300"})
    if home is not None:
        full["DOCKYARD_HOME"] = str(home)
    full.update(env or {})
    return full


def dockyard_cli(*args: str, cwd: Path | None = None, home: Path | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """``python -m dockyard ARGS``; ``home`` becomes DOCKYARD_HOME, ``env`` is added last."""
    return subprocess.run([sys.executable, "-m", "dockyard", *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(home, env), timeout=timeout, check=False)


def start_cli(*args: str, home: Path | None = None, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """The same, started in a session of its own (a test may send its process group SIGINT, as Ctrl-C
    does), with stdout and stderr piped."""
    return subprocess.Popen([sys.executable, "-m", "dockyard", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(home, env), start_new_session=True)


def read_until(proc: subprocess.Popen[str], stream: IO[str] | None, text: str, timeout: float) -> str:
    """Lines of ``stream`` until one holds ``text``, the process ends or ``timeout`` passes."""
    assert stream is not None
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    seen, deadline = "", time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline and proc.poll() is None:
        if sel.select(timeout=1):
            seen += stream.readline()
    return seen


def free_port() -> int:
    """A free loopback port (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
