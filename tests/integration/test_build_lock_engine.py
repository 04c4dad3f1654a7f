"""One build of a project folder at a time: while another dockyard command builds the folder (here:
this test holds the same lock), `dockyard build` says so and waits, then builds. Two builds of one
folder (another terminal, another target or model version) used to overwrite each other's
.dockyard/Dockerfile, requirements and staged weights mid-build."""

from __future__ import annotations

import time
from pathlib import Path

from dockyard.engine import Engine
from dockyard.fsio import folder_lock
from dockyardcli import read_until, start_cli


def test_a_build_waits_for_the_one_already_running_in_the_folder(
        engine: Engine, digits_project: Path) -> None:
    name = (digits_project / "dockyard.yaml").read_text().split("name:")[1].split()[0]
    try:
        with folder_lock(digits_project):
            proc = start_cli("build", str(digits_project), "--target", "train", env={"CI": "true"})
            seen = read_until(proc, proc.stderr, "waiting for it to finish", timeout=120)
            assert f"another dockyard command is building {digits_project}: waiting for it to finish" in seen, seen
            time.sleep(2)
            assert proc.poll() is None, "it built while the folder was locked"
            assert not (digits_project / ".dockyard" / "Dockerfile").exists(), "it wrote build inputs while waiting"
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, (seen + err)[-3000:]
        assert engine.image_exists(f"{name}:train")
    finally:
        if engine.image_exists(f"{name}:train"):
            engine.remove_image(f"{name}:train", force=True)
