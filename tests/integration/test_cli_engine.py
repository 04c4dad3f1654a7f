"""The CLI's engine-facing verbs, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dockyard.engine import Engine


def dockyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, timeout=900)


def test_doctor_reports_engine_and_buildkit(engine: Engine) -> None:
    res = dockyard("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(res.stdout)}
    assert checks["engine"]["ok"] and checks["buildkit"]["ok"]
    assert "base images" in checks
    assert res.returncode == 0


def test_build_json_output_and_quiet_mode(engine: Engine, digits_project: Path, unique_tag: str) -> None:
    res = dockyard("build", str(digits_project), "--target", "train", "--json", "-t", unique_tag)
    try:
        assert res.returncode == 0, res.stderr
        data = json.loads(res.stdout)
        assert data["image_id"].startswith("sha256:") and data["target"] == "train"
        quiet = dockyard("build", str(digits_project), "--target", "train", "-q", "-t", unique_tag)
        assert quiet.stdout.strip() == data["image_id"]
    finally:
        engine.remove_image(unique_tag, force=True)


def test_run_refuses_docker_socket_mount(engine: Engine, digits_project: Path) -> None:
    res = dockyard("run", str(digits_project), "-v", "/var/run/docker.sock:/var/run/docker.sock", "--", "true")
    assert res.returncode == 1
    assert "refusing to mount /var/run/docker.sock" in res.stderr
