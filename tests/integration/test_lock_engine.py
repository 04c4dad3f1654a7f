"""`dockyard lock` and `build --frozen` against a real engine and the real `uv`: the image gets
exactly the locked versions, and a stale lock is refused naming what changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.engine import Engine
from dockyard.base import find_uv
from dockyard.errors import ConfigError
from dockyard.imagediff import packages_of
from dockyard.lock import check_frozen, lock, parse_header

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "tiny"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    if find_uv() is None:  # the product's lookup: the uv wheel next to this interpreter, then PATH
        pytest.skip("uv is not installed on this host")
    dest = tmp_path / "tiny"
    shutil.copytree(FIXTURE, dest)
    # A range, so the lock (not the requirements file) decides the version.
    (dest / "requirements.txt").write_text("joblib>=1.3,<1.5\nnumpy==2.2.6\n")
    return dest


def dockyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockyard", *args], check=False, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ))


def test_lock_then_frozen_build_installs_exactly_the_locked_versions(engine: Engine, tiny: Path, unique_tag: str) -> None:
    res = lock(tiny, engine)
    text = res.path.read_text()
    assert "--hash=sha256:" in text
    locked = dict(p.split("==") for p in res.packages)
    assert locked["joblib"].startswith("1.4.") and locked["numpy"] == "2.2.6"
    header = parse_header(text)
    assert dict(header.inputs) == {"requirements.txt": "sha256:" + __import__("hashlib").sha256(
        (tiny / "requirements.txt").read_bytes()).hexdigest()}
    assert {ref for ref, _ in header.bases} >= {"dockyard/python:3.11-slim"}
    assert all(d.startswith("sha256:") for _, d in header.bases)
    config = (tiny / "dockyard.yaml").read_text()
    assert "  lock: requirements.lock\n" in config and config.startswith("# a tiny serve project")

    out = dockyard("build", str(tiny), "--frozen", "-t", unique_tag, "--quiet")
    assert out.returncode == 0, out.stderr
    assert "--require-hashes" in (tiny / ".dockyard" / "Dockerfile").read_text()
    installed = packages_of(engine, [unique_tag])[unique_tag]
    assert installed["joblib"] == locked["joblib"]
    assert installed["numpy"] == locked["numpy"]


def test_changed_requirements_make_frozen_build_fail_naming_the_file(engine: Engine, tiny: Path, unique_tag: str) -> None:
    lock(tiny, engine)
    with (tiny / "requirements.txt").open("a") as f:
        f.write("six==1.16.0\n")
    out = dockyard("build", str(tiny), "--frozen", "-t", unique_tag)
    assert out.returncode == 1
    assert "requirements.txt changed since requirements.lock was written" in out.stderr
    assert "dockyard lock" in out.stderr
    assert not engine.image_exists(unique_tag)  # refused before building anything


def test_frozen_refuses_a_base_whose_digest_is_not_available(engine: Engine, tiny: Path) -> None:
    res = lock(tiny, engine)
    text = res.path.read_text()
    slim = next(d for ref, d in res.header.bases if ref.endswith("-slim"))
    res.path.write_text(text.replace(slim, "sha256:" + "0" * 64))
    with pytest.raises(ConfigError, match=r"base image dockyard/python:3.11-slim is now .* but requirements.lock pinned sha256:000000"):
        check_frozen(tiny, engine)
    res.path.write_text(text.replace("# base: dockyard/python:3.11-slim", "# base: dockyard-test/absent:0"))
    with pytest.raises(ConfigError, match="base image dockyard-test/absent:0 pinned in requirements.lock .* is not available"):
        check_frozen(tiny, engine)


def test_frozen_without_a_lock_says_to_run_lock(engine: Engine, tiny: Path) -> None:
    with pytest.raises(ConfigError, match="no dependencies.lock") as info:
        check_frozen(tiny, engine)
    assert "dockyard lock" in info.value.fix


def test_an_unresolvable_requirement_fails_lock_and_leaves_the_config_alone(engine: Engine, tiny: Path) -> None:
    (tiny / "requirements.txt").write_text("joblib==0.0.1\n")
    before = (tiny / "dockyard.yaml").read_text()
    with pytest.raises(ConfigError, match="could not resolve") as info:
        lock(tiny, engine)
    assert "joblib" in info.value.details
    assert (tiny / "dockyard.yaml").read_text() == before
    assert not (tiny / "requirements.lock").exists()
