"""The project's own FastAPI app, detected by init and served in the hardened container."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from conftest import copy_project
from dockyard import serving
from dockyard.engine import Engine
from dockyard.project import init

PROJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "projects"


def test_fastapi_app_is_served_in_the_hardened_image(engine: Engine, tmp_path: Path) -> None:
    project = copy_project(PROJECTS / "fastapi_app", tmp_path / "linear", ignore=())  # a unique folder: init names it
    assert init(project).config.serve.app == "api/main.py:app"
    res = serving.serve(project, engine, port=18471, name="dockyard-test-webapp",
                        labels={"io.dockyard.test": "1"})
    try:
        req = urllib.request.Request(f"{res.url}/score", data=b'{"x": 3}',
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read()) == {"y": 7.0}  # the lifespan ran: the "model" is loaded
        with urllib.request.urlopen(f"{res.url}/readyz", timeout=10) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"{res.url}/metrics", timeout=10) as resp:
            assert b'dockyard_app_requests_total{status="200"} 1' in resp.read()
        config = engine.inspect(res.container, kind="container")
        host = config["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"]
        assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0
        assert config["Config"]["User"] == "10001:10001"
        assert config["Config"]["Healthcheck"]["Test"][-1].endswith("/readyz', timeout=2)")
    finally:
        engine.remove_container(res.container)
        engine.remove_image(res.tag, force=True)
