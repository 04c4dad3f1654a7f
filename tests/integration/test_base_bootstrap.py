"""`dockyard base bootstrap`: Python base images from Debian packages, no registry involved."""

from __future__ import annotations

import pytest

from dockyard import base
from dockyard.engine import Engine

TAG = "dockyard-test/python:3.11-slim"


@pytest.mark.slow
def test_bootstrap_makes_a_slim_runtime_and_a_build_variant(engine: Engine) -> None:
    try:
        made = base.bootstrap(engine, "3.11", tag=TAG)
        assert made.ref == TAG and made.suite == "bookworm"
        assert made.size_bytes < 160e6, "apt lists, caches, docs and locales are dropped"
        slim = engine.docker("run", "--rm", TAG, "sh", "-c",
                             "python3 -c 'import ssl, venv, sys; print(sys.version_info[:2])'; "
                             "command -v uv strip || echo none; ls /var/lib/apt/lists | wc -l").stdout.split("\n")
        assert slim[0] == "(3, 11)" and slim[1] == "none" and int(slim[2]) <= 2
        build = engine.docker("run", "--rm", TAG.replace("-slim", "-build"), "sh", "-c",
                              "uv --version && command -v strip").stdout
        assert build.startswith("uv ") and "/strip" in build
        labels = engine.inspect(TAG)["Config"]["Labels"]
        assert labels["io.dockyard.base.python"] == "3.11" and labels["io.dockyard.base.suite"] == "bookworm"
    finally:
        engine.remove_image(TAG, force=True)
        engine.remove_image(TAG.replace("-slim", "-build"), force=True)
