"""`dockyard base bootstrap`: Python base images from Debian packages, no registry involved."""

from __future__ import annotations

import pytest

from dockyard import base
from dockyard.engine import Engine

TAG = "dockyard-test/python:3.11-slim"


@pytest.mark.slow
def test_bootstrap_makes_a_slim_runtime_and_a_build_variant(engine: Engine) -> None:
    try:
        lines: list[str] = []
        made = base.bootstrap(engine, "3.11", tag=TAG, on_line=lines.append)
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
        # Security fixes: debian-security is in the image's sources, and the tree was upgraded from it.
        assert "upgrading Debian bookworm from bookworm, bookworm-updates, bookworm-security" in lines
        sources = engine.docker("run", "--rm", TAG, "cat", "/etc/apt/sources.list").stdout.splitlines()
        assert sources == ["deb http://deb.debian.org/debian bookworm main",
                           "deb http://deb.debian.org/debian bookworm-updates main",
                           "deb http://deb.debian.org/debian-security bookworm-security main"]
        fetched = engine.docker("run", "--rm", "--user", "0", TAG, "sh", "-c", "apt-get update 2>&1").stdout
        assert "bookworm-security InRelease" in fetched and "W: " not in fetched and "E: " not in fetched, fetched
    finally:
        engine.remove_image(TAG, force=True)
        engine.remove_image(TAG.replace("-slim", "-build"), force=True)
