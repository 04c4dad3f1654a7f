"""A Cog project, translated by init and served unchanged in the hardened container, answers
Cog's /predictions the way Cog does (defaults applied, a file input read)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import copy_project
from dockyard import serving
from dockyard.engine import Engine
from dockyard.project import init

PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "projects" / "cog_predictor"


def test_cog_predictor_is_served_unchanged_and_answers_predictions(engine: Engine, tmp_path: Path) -> None:
    project = copy_project(PROJECT, tmp_path / "greeter", ignore=())  # a unique folder: init names it
    init(project)
    photo = tmp_path / "photo.png"
    photo.write_bytes(bytes(range(256)) * 4)
    data = photo.read_bytes()
    res = serving.serve(project, engine, port=18481, name="dockyard-test-cog", labels={"io.dockyard.test": "1"})
    try:
        url = "data:image/png;base64," + base64.b64encode(data).decode()
        req = urllib.request.Request(f"{res.url}/predictions", data=json.dumps({"input": {"image": url}}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.loads(resp.read())
        checksum = hashlib.sha256(data).hexdigest()[:12]
        assert body["status"] == "succeeded"
        assert body["output"] == f"HELLO WORLD HELLO WORLD | {len(data)} bytes | {checksum} | {sum(data)}"
        with urllib.request.urlopen(f"{res.url}/health-check", timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "READY"
        # the CLI sends files the way `cog predict -i image=@photo.png` does
        out = subprocess.run([sys.executable, "-m", "dockyard", "predict", res.url, "-i", f"image=@{photo}",
                              "-i", "times=1", "-i", "mode=lower"], capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == {"output": f"hello world | {len(data)} bytes | {checksum} | {sum(data)}"}
        config = engine.inspect(res.container, kind="container")
        assert config["HostConfig"]["ReadonlyRootfs"] is True and config["Config"]["User"] == "10001:10001"
    finally:
        engine.remove_container(res.container)
        engine.remove_image(res.tag, force=True)
