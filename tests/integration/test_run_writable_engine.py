"""`dockyard run` gives the command a writable copy of the project and copies back what it wrote
(issue 11: XGBoost's guide saves model-0.json beside itself and met 'Read-only file system')."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine import Engine

SCRIPT = """\
import os, pathlib
pathlib.Path("model-0.json").write_text('{"learner": 1}')   # into the working directory, like XGBoost's guide
here = pathlib.Path(__file__).parent
(here / "out").mkdir(exist_ok=True)
(here / "out" / "report.txt").write_text("rmse 0.1\\n")     # beside the script
pathlib.Path("notes.txt").write_text("changed by the run\\n")  # an existing project file, changed
print("uid", os.getuid())
"""


def dockyard_cli(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "DOCKYARD_HOME": str(home)})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=900, check=False)


@pytest.fixture
def writer(tmp_path: Path, engine: Engine) -> Iterator[Path]:
    name = f"dockyard-test-writer-{uuid.uuid4().hex[:8]}"
    proj = tmp_path / "writer"
    (proj / "demo").mkdir(parents=True)
    (proj / "demo" / "walkthrough.py").write_text(SCRIPT)
    (proj / "notes.txt").write_text("the user's own notes\n")
    (proj / "dockyard.yaml").write_text(f"name: {name}\npython: '3.11'\n")
    yield proj
    engine.remove_image(f"{name}:train", force=True)  # the image `dockyard run` built


def test_run_writes_into_a_copy_and_copies_results_back_without_touching_the_project(
        engine: Engine, writer: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    before = {p.relative_to(writer): p.read_bytes() for p in writer.rglob("*") if p.is_file()}

    proc = dockyard_cli("run", str(writer), "-q", "--", "python", "demo/walkthrough.py", cwd=tmp_path, home=home)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "uid 10001" in proc.stdout and "Read-only file system" not in proc.stderr
    runs = list((writer / ".dockyard" / "runs").iterdir())
    assert len(runs) == 1
    copied = {p.relative_to(runs[0]).as_posix() for p in runs[0].rglob("*") if p.is_file()}
    assert copied == {"model-0.json", "demo/out/report.txt", "notes.txt"}
    assert (runs[0] / "notes.txt").read_text() == "changed by the run\n"
    assert f"copied to {runs[0]}" in proc.stderr and "model-0.json" in proc.stderr
    # the project is as it was (beside dockyard's own .dockyard folder), and nothing there is the container's
    after = {p.relative_to(writer): p.read_bytes() for p in writer.rglob("*")
             if p.is_file() and ".dockyard" not in p.relative_to(writer).parts}
    assert after == before
    assert all(p.stat().st_uid == os.getuid() for p in writer.rglob("*"))
    assert not (home / "work").exists() or not any((home / "work").iterdir())  # the working copy is gone


def test_run_output_never_overwrites_a_different_file(engine: Engine, writer: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    results = tmp_path / "results"
    results.mkdir()
    (results / "model-0.json").write_text("keep me")

    proc = dockyard_cli("run", str(writer), "-q", "--output", str(results), "--", "python", "demo/walkthrough.py",
                        cwd=tmp_path, home=home)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (results / "model-0.json").read_text() == "keep me"
    assert (results / "demo" / "out" / "report.txt").read_text() == "rmse 0.1\n"
    fallback = next((writer / ".dockyard" / "runs").iterdir())
    assert (fallback / "model-0.json").read_text() == '{"learner": 1}'
    assert "not copied over your different model-0.json" in proc.stderr


def test_a_failing_command_keeps_its_exit_status_and_its_partial_output(
        engine: Engine, writer: Path, tmp_path: Path) -> None:
    (writer / "demo" / "fails.py").write_text("open('partial.log', 'w').write('step 1\\n')\nraise SystemExit(5)\n")

    proc = dockyard_cli("run", str(writer), "-q", "--", "python", "demo/fails.py", cwd=tmp_path, home=tmp_path / "h")

    assert proc.returncode == 5
    run_dir = next((writer / ".dockyard" / "runs").iterdir())
    assert (run_dir / "partial.log").read_text() == "step 1\n"


def test_ctrl_c_keeps_what_the_command_wrote_and_leaves_no_container(
        engine: Engine, writer: Path, tmp_path: Path) -> None:
    """Ctrl-C stops the command: its container goes, and the files it wrote until then are kept
    like those of a run that ended (they were discarded before)."""
    import signal

    from dockyardcli import read_until, start_cli

    (writer / "demo" / "long.py").write_text(
        "import pathlib, time\npathlib.Path('checkpoint-1.txt').write_text('epoch 1 done\\n')\n"
        "print('epoch 1', flush=True)\ntime.sleep(300)\n")
    proc = start_cli("run", str(writer), "--", "python", "demo/long.py", home=tmp_path / "h")
    seen = read_until(proc, proc.stdout, "epoch 1", timeout=600)
    assert "epoch 1" in seen, seen
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert proc.returncode == 130, stderr
    run_dir = next((writer / ".dockyard" / "runs").iterdir())
    assert (run_dir / "checkpoint-1.txt").read_text() == "epoch 1 done\n"
    assert "wrote 1 file(s)" in stderr and "checkpoint-1.txt" in stderr
    name = (writer / "dockyard.yaml").read_text().split()[1]
    left = engine.docker("ps", "-aq", "--filter", f"label=io.dockyard.name={name}").stdout.split()
    assert left == [], "the run's container was removed"
