"""The foundation against a real engine: build, labels, non-root, no caches or CA in layers,
layer reuse after a code edit, failures that name the step, Ctrl-C safety, eject, own Dockerfile."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from conftest import project_name
from dockyard import project
from dockyard.engine import Engine
from dockyard.errors import BuildError

CANARY = "dockyard-ca-canary-7f3a9c1e"


@pytest.fixture
def canary_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The host CA bundle plus a unique marker, passed the way a corporate proxy user would."""
    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text() + f"\n# {CANARY}\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return bundle


def layer_tars(engine: Engine, ref: str, tmp_path: Path) -> list[bytes]:
    saved = engine.save_image(ref, tmp_path / "image.tar")
    blobs = []
    with tarfile.open(saved) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            blobs.append(outer.extractfile(layer).read())  # type: ignore[union-attr]
    return blobs


def test_digits_builds_non_root_labelled_with_healthcheck(engine: Engine, digits_project: Path, unique_tag: str) -> None:
    res = project.build(digits_project, engine, tag=unique_tag)
    info = engine.inspect(res.image_id)
    cfg = info["Config"]
    assert cfg["User"] == "10001:10001"
    labels = cfg["Labels"]
    for key in ("created", "revision", "source", "version"):
        assert labels[f"org.opencontainers.image.{key}"]
    assert labels["io.dockyard.framework"] == "scikit-learn"
    assert labels["io.dockyard.python"] == "3.11"
    assert len(labels["io.dockyard.config-hash"]) == 16
    assert cfg["Healthcheck"]["Test"][0] == "CMD"
    out = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", res.image_id, "-u"], capture_output=True, text=True)
    assert out.stdout.strip() == "10001"


def test_image_has_no_package_cache_and_no_trace_of_build_ca(
    engine: Engine, digits_project: Path, unique_tag: str, canary_ca: Path, tmp_path: Path
) -> None:
    project.build(digits_project, engine, tag=unique_tag, target="train")
    history = engine.docker("history", "--no-trunc", unique_tag).stdout
    assert CANARY not in history and "ca-certificates.crt" not in history.replace("/etc/ssl/certs/ca-certificates.crt", "")
    assert CANARY not in json.dumps(engine.inspect(unique_tag))
    names: list[str] = []
    for blob in layer_tars(engine, unique_tag, tmp_path):
        assert CANARY.encode() not in blob
        with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
            names += layer.getnames()
    assert not [n for n in names if "/.cache/pip" in "/" + n or "/.cache/uv" in "/" + n]
    assert not [n for n in names if n.startswith("run/secrets/")]
    assert any(n.startswith("opt/venv/lib/python3.11/site-packages/sklearn") for n in names)


def test_only_the_serve_image_carries_bytecode_and_it_is_what_python_loads(
    engine: Engine, digits_project: Path, unique_tag: str
) -> None:
    serve = project.build(digits_project, engine, tag=unique_tag, target="serve")
    train = project.build(digits_project, engine, tag=unique_tag + "-train", target="train")
    try:
        _check_bytecode_placement(serve.image_id, train.image_id)
    finally:
        engine.remove_image(unique_tag + "-train", force=True)  # the fixture removes only its own tag


def _check_bytecode_placement(serve: str, train: str) -> None:
    def sh(image: str, script: str) -> str:
        proc = subprocess.run(["docker", "run", "--rm", "--read-only", "--entrypoint", "sh", image, "-c", script],
                              capture_output=True, text=True, check=True)
        return proc.stdout + proc.stderr

    count_pyc = "find /opt/venv /opt/dockyard/runtime -name '*.pyc' | wc -l"
    assert int(sh(train, count_pyc)) == 0
    assert int(sh(serve, count_pyc)) > 100
    # `python -v` says where each module's code came from: nothing of the venv or runtime is
    # compiled from source when the serving stack and the framework load.
    verbose = sh(serve, "python -v -c 'import dockyard_runtime.server, sklearn.linear_model, joblib' 2>&1")
    sources = [ln for ln in verbose.splitlines() if ln.startswith("# code object from") and not ln.rstrip("'").endswith(".pyc")]
    loaded = [ln for ln in verbose.splitlines() if ln.startswith("# code object from") and "/opt/venv/" in ln]
    assert len(loaded) > 100 and sources == [], sources[:5]
    # numpy and scipy vendor the same libgfortran: one inode, stored once.
    links = sh(train, "stat -c '%h %n' /opt/venv/lib/python3.11/site-packages/*.libs/libgfortran-*")
    assert any(line.startswith("2 ") for line in links.splitlines()), links


def test_code_edit_rebuild_reuses_every_dependency_layer(engine: Engine, digits_project: Path, unique_tag: str) -> None:
    first = project.build(digits_project, engine, tag=unique_tag, target="train")
    before = engine.inspect(first.image_id)["RootFS"]["Layers"]
    train = digits_project / "train.py"
    train.write_text(train.read_text() + "\n# a one-line edit\n")
    second = project.build(digits_project, engine, tag=unique_tag, target="train")
    after = engine.inspect(second.image_id)["RootFS"]["Layers"]
    assert second.image_id != first.image_id
    assert len(before) == len(after)
    assert before[:-1] == after[:-1], "only the code layer may change"
    assert before[-1] != after[-1]


def test_failed_build_names_the_failing_step_and_shows_its_log(engine: Engine, digits_project: Path, unique_tag: str) -> None:
    (digits_project / "requirements.txt").write_text("scikit-learn\nthis-package-does-not-exist-dockyard==9.9.9\n")
    with pytest.raises(BuildError) as caught:
        project.build(digits_project, engine, tag=unique_tag, target="train")
    err = caught.value
    assert "uv pip install" in err.step
    assert "this-package-does-not-exist-dockyard" in err.log_tail
    assert err.exit_code == 3


def test_run_executes_command_hardened_and_propagates_exit_code(engine: Engine, digits_project: Path) -> None:
    code = project.run(digits_project, engine, ["python", "-c", "import os, sys; open('/x','w') if os.getuid() == 0 else sys.exit(7)"])
    assert code == 7
    lines: list[str] = []
    code = project.run(digits_project, engine, ["sh", "-c", "id -u; touch /root-write 2>/dev/null && echo writable || echo readonly"],
                       on_line=lines.append)
    assert code == 0
    assert lines[-2:] == ["10001", "readonly"]


def test_ctrl_c_during_run_leaves_no_container(engine: Engine, digits_project: Path) -> None:
    name = project_name(digits_project)  # its own name: other digits containers cannot be mistaken for ours
    project.build(digits_project, engine, target="train")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", "run", str(digits_project), "-q", "--", "sleep", "60"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not engine.containers([f"label=io.dockyard.name={name}", "status=running"]):
        time.sleep(0.3)
    assert engine.containers([f"label=io.dockyard.name={name}", "status=running"]), "container never started"
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    deadline = time.time() + 20
    while time.time() < deadline and engine.containers([f"label=io.dockyard.name={name}"]):
        time.sleep(0.5)
    assert engine.containers([f"label=io.dockyard.name={name}"]) == []


def test_ctrl_c_during_build_leaves_no_container(engine: Engine, digits_project: Path) -> None:
    (digits_project / "requirements.txt").write_text("scikit-learn\njoblib\n# bust the cache: %d\n" % time.time_ns())
    (digits_project / "slow.txt").write_text("x")
    before = set(engine.docker("ps", "-aq").stdout.split())
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", "build", str(digits_project), "--no-cache", "--target", "train"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "uv pip install" in line or "pip install" in line:
            break
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    time.sleep(2)
    # Containers other tests or Swarm create concurrently carry their own labels; a container
    # leaked by this build would carry neither.
    foreign = set()
    for label in ("com.docker.swarm.task.id", "io.dockyard.test", "io.dockyard.project"):
        foreign |= set(engine.docker("ps", "-aq", "--filter", f"label={label}").stdout.split())
    leftovers = set(engine.docker("ps", "-aq").stdout.split()) - before - foreign
    assert leftovers == set()


def test_eject_writes_dockerfile_that_is_then_honoured(engine: Engine, digits_project: Path, unique_tag: str) -> None:
    written = project.eject(digits_project, engine=engine)
    assert written.read_text().startswith("# Generated by dockyard")
    text = written.read_text().replace('LABEL io.dockyard.role="serve"', 'LABEL io.dockyard.role="serve" io.dockyard.owned="yes"')
    written.write_text(text)
    res = project.build(digits_project, engine, tag=unique_tag)
    assert res.own_dockerfile
    assert engine.inspect(res.image_id)["Config"]["Labels"]["io.dockyard.owned"] == "yes"


def test_base_bootstrap_image_is_slim_python_with_labels(engine: Engine) -> None:
    info = engine.inspect("dockyard/python:3.11-slim")
    assert info["Config"]["Labels"]["io.dockyard.base.python"] == "3.11"
    out = engine.docker("run", "--rm", "dockyard/python:3.11-slim", "python3", "-c", "import sys, venv, ssl; print(sys.version_info[:2])")
    assert out.stdout.strip() == "(3, 11)"
    listing = engine.docker("run", "--rm", "dockyard/python:3.11-slim", "sh", "-c", "ls /var/lib/apt/lists /var/cache/apt/archives | wc -l").stdout
    assert int(listing.strip()) <= 4
