"""Names are per project, against the real engine (dockyard.names): two folders that hold projects
of the same name cannot overwrite each other's images or interleave each other's versions; the
clash is refused with the owner's folder and the fix, --replace takes the name over, and a folder
that renames its project gives the name up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dockyard.engine import Engine
from dockyard.errors import UsageError
from dockyard.runtime.contract import LABEL_PROJECT
from dockyard.store import Store
from dockyard.train import train

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "tiny"
TEST_LABELS = {"io.dockyard.test": "1"}
TRAIN = "python -c \"import os; open(os.environ['DOCKYARD_OUTPUTS'] + '/weights.json', 'w').write('{}')\""


@pytest.fixture
def twins(engine: Engine, tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """/a/tiny and /b/tiny: the tiny project twice, both called NAME (a fresh name per test)."""
    name = f"dockyard-test-names-{uuid.uuid4().hex[:8]}"
    folders = []
    for side in ("a", "b"):
        folder = tmp_path / side / "tiny"
        shutil.copytree(FIXTURE, folder)
        cfg = folder / "dockyard.yaml"
        data = {**yaml.safe_load(cfg.read_text()), "name": name, "train": {"command": TRAIN}}
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))
        folders.append(folder.resolve())
    yield folders[0], folders[1], name
    for folder in folders:
        for row in engine.images([f"label={LABEL_PROJECT}={folder}"]):
            engine.remove_image(row["ID"], force=True)


def dockyard(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"DOCKYARD_HOME": str(home)} if home else {})}
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, timeout=900,
                          env=env, check=False)


def owner(engine: Engine, ref: str) -> str:
    return str(engine.inspect(ref)["Config"]["Labels"][LABEL_PROJECT])


def test_a_second_folder_cannot_overwrite_the_first_ones_image_unless_it_takes_the_name(
    engine: Engine, twins: tuple[Path, Path, str]
) -> None:
    a, b, name = twins
    first = dockyard("build", str(a), "-q")
    assert first.returncode == 0, first.stderr
    ref = f"{name}:latest"
    assert owner(engine, ref) == str(a)
    image_of_a = engine.image_id(ref)

    clash = dockyard("build", str(b))
    assert clash.returncode == 1, clash.stderr
    assert f"error: image {ref} belongs to the project in {a}, not to {b}" in clash.stderr
    assert "fix:" in clash.stderr and "--replace" in clash.stderr and "name:" in clash.stderr
    assert "Traceback" not in clash.stderr
    assert engine.image_id(ref) == image_of_a  # refused before anything was built or tagged

    taken = dockyard("build", str(b), "--replace", "-q")
    assert taken.returncode == 0, taken.stderr
    assert owner(engine, ref) == str(b)
    back = dockyard("build", str(a))
    assert back.returncode == 1 and f"belongs to the project in {b}" in back.stderr  # b owns it now

    cfg = b / "dockyard.yaml"
    cfg.write_text(cfg.read_text().replace(f"name: {name}", f"name: {name}-b"))  # the fix, taken in b
    again = dockyard("build", str(a), "-q")
    assert again.returncode == 0, again.stderr
    assert owner(engine, ref) == str(a)


def test_a_model_name_belongs_to_the_folder_that_trained_its_newest_version(
    engine: Engine, twins: tuple[Path, Path, str], tmp_path: Path
) -> None:
    a, b, name = twins
    home = tmp_path / "home"
    store = Store(home / "store")
    v1 = train(a, engine, store=store, labels=TEST_LABELS).version
    assert (v1.ref, v1.project) == (f"{name}:1", str(a))
    image_of_a = engine.image_id(f"{name}:train")

    with pytest.raises(UsageError) as refused:
        train(b, engine, store=store, labels=TEST_LABELS)
    assert str(a) in refused.value.problem and "--replace" in refused.value.fix
    assert engine.image_id(f"{name}:train") == image_of_a  # refused before b's build
    assert [m.versions for m in store.list_models()] == [(1,)]

    # a's version cannot be baked into b's code either: b's predictor with a's weights
    mixed = dockyard("build", str(b), "--model", f"{name}:1", home=home)
    assert mixed.returncode == 1, mixed.stderr
    assert f"{name}:1 was trained by the project in {a}" in mixed.stderr and "--replace" in mixed.stderr

    cli = dockyard("train", str(b), "-q", home=home)
    assert cli.returncode == 1 and f"belongs to the project in {a}" in cli.stderr, cli.stderr
    taken = dockyard("train", str(b), "--replace", "-q", home=home)
    assert taken.returncode == 0, taken.stderr
    assert f"trained {name}:2" in taken.stdout
    assert store.get(f"{name}:2").project == str(b) and owner(engine, f"{name}:train") == str(b)
    with pytest.raises(UsageError):
        train(a, engine, store=store, labels=TEST_LABELS)  # the newest version is b's now
