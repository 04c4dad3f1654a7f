"""Names are per project (dockyard.names): a model name or version belongs to the project folder
that trained it, while that folder still holds a project of that name. No Docker here: the
image half is tested against the real engine in tests/integration/test_names_engine.py."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.errors import UsageError
from dockyard.names import claim_model, claim_version, model_owner, still_claims
from dockyard.store import ImageInfo, ModelVersion, RunRecord, Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def project(root: Path, name: str = "digits") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dockyard.yaml").write_text(f"name: {name}\npython: '3.11'\n")
    return root


def trained(store: Store, folder: Path | str, tmp_path: Path, name: str = "digits") -> ModelVersion:
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    (out / "model.joblib").write_bytes(b"weights")
    run = RunRecord(name=name, run_id=f"run-{out.name}", command="python train.py",
                    image=ImageInfo(id="sha256:" + "a" * 64, ref=f"{name}:train"),
                    started=T0, ended=T0 + timedelta(seconds=1), project=str(folder))
    return store.record_success(run, out)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def test_a_folder_claims_a_name_only_while_its_dockyard_yaml_says_so(tmp_path: Path) -> None:
    a = project(tmp_path / "a" / "digits")
    assert still_claims(str(a), "digits")
    assert not still_claims(str(a), "iris")  # it is called something else
    assert not still_claims(str(tmp_path / "gone"), "digits")  # the folder is gone
    (a / "dockyard.yaml").write_text("name: [unclosed\n")
    assert still_claims(str(a), "digits")  # a broken dockyard.yaml keeps its claim: never guess


def test_a_version_records_the_folder_that_trained_it_and_reads_back(store: Store, tmp_path: Path) -> None:
    a = project(tmp_path / "a" / "digits")
    v = trained(store, a, tmp_path)
    assert v.project == str(a) and store.get("digits:1").project == str(a)
    assert model_owner(store, "digits") == str(a)
    assert model_owner(store, "never-trained") == ""


def test_a_record_written_before_projects_were_recorded_reads_as_unowned(store: Store, tmp_path: Path) -> None:
    v = trained(store, project(tmp_path / "a" / "digits"), tmp_path)
    data = v.to_dict()
    del data["project"]
    assert ModelVersion.from_dict(json.loads(json.dumps(data)), "old.json").project == ""


def test_training_a_name_another_folder_owns_is_refused_with_the_owner_and_the_fix(store: Store,
                                                                                    tmp_path: Path) -> None:
    a = project(tmp_path / "a" / "digits")
    b = project(tmp_path / "b" / "digits")
    trained(store, a, tmp_path)
    with pytest.raises(UsageError) as err:
        claim_model(store, "digits", b)
    assert str(a) in err.value.problem and str(b) in err.value.problem
    assert "its newest version digits:1" in err.value.problem  # which version makes a the owner
    assert "name:" in err.value.fix and "--replace" in err.value.fix
    claim_model(store, "digits", a)  # the owner itself trains on
    claim_model(store, "digits", b, replace=True)  # --replace takes it over


def test_the_newest_version_decides_who_owns_a_name(store: Store, tmp_path: Path) -> None:
    a = project(tmp_path / "a" / "digits")
    b = project(tmp_path / "b" / "digits")
    trained(store, a, tmp_path)
    trained(store, b, tmp_path)  # as after `train --replace` in b
    assert model_owner(store, "digits") == str(b)
    with pytest.raises(UsageError):
        claim_model(store, "digits", a)


def test_a_renamed_or_deleted_owner_gives_its_name_up(store: Store, tmp_path: Path) -> None:
    a = project(tmp_path / "a" / "digits")
    b = project(tmp_path / "b" / "digits")
    trained(store, a, tmp_path)
    project(a, "digits-a")  # the fix the error suggests, taken in the other folder
    claim_model(store, "digits", b)
    project(a, "digits")
    shutil.rmtree(a)
    claim_model(store, "digits", b)


def test_building_one_project_around_a_version_another_trained_is_refused(store: Store, tmp_path: Path) -> None:
    a = project(tmp_path / "a" / "digits")
    b = project(tmp_path / "b" / "digits")
    v = trained(store, a, tmp_path)
    with pytest.raises(UsageError) as err:
        claim_version(v, b)
    assert "digits:1" in err.value.problem and str(a) in err.value.problem
    assert f"--path {a}" in err.value.fix and "--replace" in err.value.fix
    claim_version(v, a)
    claim_version(v, b, replace=True)


def test_an_imported_version_belongs_to_no_folder(store: Store, tmp_path: Path) -> None:
    a = project(tmp_path / "a" / "digits")
    trained(store, a, tmp_path)
    exported = store.export("digits:1", tmp_path / "digits-1.tar.gz")
    other = Store(tmp_path / "other-store")
    imported = other.import_(exported)
    assert imported.project == ""
    claim_model(other, "digits", project(tmp_path / "b" / "digits"))


@pytest.mark.parametrize("verb", [["build"], ["run"], ["train"], ["serve"], ["notebook"], ["push"], ["pull"],
                                  ["deploy", "swarm"]])
def test_every_verb_that_tags_an_image_or_records_a_version_takes_replace(verb: list[str]) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "dockyard", *verb, "--help"], capture_output=True, text=True,
                          timeout=120, check=False, env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "--replace" in proc.stdout, proc.stdout
