"""`base bootstrap` refuses what no Debian suite can give, before touching any engine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dockyard import base
from dockyard.errors import UsageError


def test_bootstrap_refuses_a_python_no_debian_suite_ships() -> None:
    with pytest.raises(UsageError) as caught:
        base.bootstrap(None, "3.9")  # type: ignore[arg-type]  # fails before touching the engine
    assert "3.9" in caught.value.problem and "3.11" in caught.value.fix
    cli = subprocess.run([sys.executable, "-m", "dockyard", "base", "bootstrap", "--python", "3.9"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
    assert cli.returncode == 1 and "no Debian suite ships Python 3.9" in cli.stderr
