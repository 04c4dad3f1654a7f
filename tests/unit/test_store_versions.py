"""The model store's everyday behaviour: versions, failed runs, rm, materialize, export/import."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.errors import StoreError
from dockyard.store import (
    GitInfo,
    ImageInfo,
    Resources,
    RunRecord,
    Store,
    default_root,
    describe_failure,
    render_diff,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def make_run(name: str = "digits", run_id: str = "run-1", **overrides: object) -> RunRecord:
    fields: dict[str, object] = dict(
        name=name, run_id=run_id, command="python train.py",
        image=ImageInfo(id="sha256:" + "a" * 64, ref="digits:train"),
        started=T0, ended=T0 + timedelta(seconds=42), exit_status=0,
    )
    fields.update(overrides)
    return RunRecord(**fields)  # type: ignore[arg-type]


def write_outputs(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


def test_successful_run_becomes_version_1_with_sha256_of_every_artifact(store: Store,
                                                                          tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.joblib": b"\x00weights", "ckpt/epoch-1.pt": "c1"})
    version = store.record_success(make_run(), out)
    assert version.ref == "digits:1"
    by_path = {a.path: a for a in version.artifacts}
    assert set(by_path) == {"model.joblib", "ckpt/epoch-1.pt"}
    assert by_path["model.joblib"].sha256 == hashlib.sha256(b"\x00weights").hexdigest()
    assert by_path["model.joblib"].size == len(b"\x00weights")
    assert (store.blobs_dir / by_path["ckpt/epoch-1.pt"].sha256).read_bytes() == b"c1"


def test_each_run_gets_the_next_version_and_a_bare_name_means_latest(store: Store,
                                                                      tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.bin": "one"})
    store.record_success(make_run(run_id="a"), out)
    (out / "model.bin").write_text("two")
    store.record_success(make_run(run_id="b"), out)
    assert [v.version for v in store.list_versions("digits")] == [1, 2]
    assert store.get("digits").run_id == "b"
    assert store.get("digits:latest").version == 2
    assert store.get("digits:1").run_id == "a"
    assert [(m.name, m.versions, m.latest) for m in store.list_models()] == [("digits", (1, 2), 2)]


def test_record_keeps_the_full_lineage_across_store_instances(store: Store, tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.bin": "m"})
    run = make_run(
        params={"n_estimators": 200}, git=GitInfo(commit="abc123", dirty=True),
        code_hash="sha256:code", data_fingerprint="sha256:data",
        resources=Resources(cpus=2.0, memory="512m", gpus=None),
        image=ImageInfo(id="sha256:" + "b" * 64, ref="r/digits:train", digest="sha256:" + "c" * 64),
    )
    store.record_success(run, out, logs="epoch 1\nepoch 2\n")
    again = Store(store.root).get("digits:1")
    assert again.params == {"n_estimators": "200"}
    assert again.git == GitInfo(commit="abc123", dirty=True)
    assert (again.code_hash, again.data_fingerprint) == ("sha256:code", "sha256:data")
    assert again.resources == Resources(cpus=2.0, memory="512m", gpus=None)
    assert again.image.digest == "sha256:" + "c" * 64
    assert again.command == ("python", "train.py")
    assert (again.started, again.ended, again.duration_s) == (T0, T0 + timedelta(seconds=42), 42.0)
    assert again.exit_status == 0
    assert again.logs is not None
    assert (store.blobs_dir / again.logs.sha256).read_text() == "epoch 1\nepoch 2\n"
    raw = json.loads((store.models_dir / "digits" / "1.json").read_text())
    assert raw["started"] == "2024-05-01T12:00:00Z"


def test_metrics_json_is_recorded_and_run_params_override_logged_params(store: Store,
                                                                         tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.bin": "m"})
    from dockyard.store import log_metric, log_param

    log_metric("accuracy", 0.91, outputs_dir=out)
    log_metric("accuracy", 0.97, outputs_dir=out)
    log_param("lr", "0.1", outputs_dir=out)
    log_param("seed", 7, outputs_dir=out)
    version = store.record_success(make_run(params={"lr": "0.01"}), out)
    assert version.metrics == {"accuracy": 0.97}
    assert version.params == {"lr": "0.01", "seed": "7"}


def test_identical_files_are_stored_once(store: Store, tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"a.bin": "same", "b/a.bin": "same"})
    store.record_success(make_run(run_id="r1"), out)
    store.record_success(make_run(run_id="r2"), out)
    assert len(list(store.blobs_dir.iterdir())) == 1


def test_symlinks_in_outputs_are_not_followed_and_are_listed(store: Store, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("do not copy")
    out = write_outputs(tmp_path / "out", {"model.bin": "m"})
    (out / "leak").symlink_to(secret)
    (out / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    version = store.record_success(make_run(), out)
    assert [a.path for a in version.artifacts] == ["model.bin"]
    assert version.skipped == ("leak", "linkdir")


def test_outputs_without_files_are_an_error_naming_the_directory(store: Store,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "out" / "empty-subdir").mkdir(parents=True)
    with pytest.raises(StoreError) as err:
        store.record_success(make_run(), tmp_path / "out")
    assert str(tmp_path / "out") in err.value.problem
    assert "DOCKYARD_OUTPUTS" in err.value.fix


def test_missing_outputs_directory_is_an_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        store.record_success(make_run(), tmp_path / "nope")


def test_nonzero_exit_cannot_become_a_version(store: Store, tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.bin": "m"})
    with pytest.raises(StoreError) as err:
        store.record_success(make_run(exit_status=3), out)
    assert "record_failure" in err.value.fix
    assert store.list_models() == []


def test_failed_runs_keep_logs_and_reason_and_never_become_versions(store: Store) -> None:
    oom = describe_failure(exit_status=137, oom_killed=True, memory="512m")
    store.record_failure(make_run(run_id="r-exit", exit_status=3), logs="Traceback...\nboom\n")
    store.record_failure(make_run(run_id="r-oom", exit_status=137, reason=oom), logs="killed")
    timeout = describe_failure(exit_status=None, timeout_s=30)
    store.record_failure(make_run(run_id="r-timeout", exit_status=None, reason=timeout), logs="")
    runs = {r.run.run_id: r for r in store.failed_runs("digits")}
    assert runs["r-exit"].reason == "exit 3"
    assert runs["r-oom"].reason == "oom-killed (memory limit 512m)"
    assert runs["r-timeout"].reason == "timeout after 30s"
    assert runs["r-exit"].logs_path.read_text() == "Traceback...\nboom\n"
    assert store.failed_run("r-oom").run.exit_status == 137
    assert store.list_models() == []
    assert describe_failure(exit_status=None, interrupted=True) == "interrupted"


def test_a_failed_run_id_cannot_be_recorded_twice(store: Store) -> None:
    store.record_failure(make_run(exit_status=1), logs="first")
    with pytest.raises(StoreError, match="already recorded"):
        store.record_failure(make_run(exit_status=1), logs="second")
    assert store.failed_run("run-1").logs_path.read_text() == "first"


def test_unknown_model_lists_existing_models(store: Store, tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"m": "m"}))
    with pytest.raises(StoreError) as err:
        store.get("digitz:1")
    assert "digitz" in err.value.problem
    assert "existing models: digits" in err.value.fix


def test_unknown_version_lists_existing_versions(store: Store, tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"m": "m"})
    for run_id in ("a", "b"):
        store.record_success(make_run(run_id=run_id), out)
    with pytest.raises(StoreError) as err:
        store.get("digits:9")
    assert err.value.problem == "digits:9 does not exist"
    assert "existing versions of digits: 1, 2" in err.value.fix


def test_empty_store_says_how_to_create_a_version(store: Store) -> None:
    with pytest.raises(StoreError) as err:
        store.get("digits")
    assert "dockyard train" in err.value.fix


@pytest.mark.parametrize("bad", ["Digits", "-x", "a b", "a/b", "x" * 129, ""])
def test_invalid_model_names_are_rejected(store: Store, tmp_path: Path, bad: str) -> None:
    out = write_outputs(tmp_path / "out", {"m": "m"})
    with pytest.raises(StoreError) as err:
        store.record_success(make_run(name=bad), out)
    assert err.value.fix


def test_reading_a_store_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "absent")
    assert store.list_models() == []
    assert store.verify() == []
    assert store.failed_runs() == []
    assert not store.root.exists()


def test_default_root_follows_dockyard_home(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKYARD_HOME", str(tmp_path / "dy"))
    assert default_root() == tmp_path / "dy" / "store"
    assert Store().root == tmp_path / "dy" / "store"
    monkeypatch.delenv("DOCKYARD_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "dockyard" / "store"


def test_rm_removes_the_version_and_only_blobs_nobody_else_uses(store: Store,
                                                                tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"shared.bin": "shared", "own.bin": "v1"})
    v1 = store.record_success(make_run(run_id="a"), out)
    (out / "own.bin").write_text("v2")
    store.record_success(make_run(run_id="b"), out)
    removed = store.rm("digits:1")
    assert removed.ref == "digits:1"
    own_v1 = v1.artifact("own.bin")
    shared = v1.artifact("shared.bin")
    assert own_v1 is not None and shared is not None
    assert not (store.blobs_dir / own_v1.sha256).exists()
    assert (store.blobs_dir / shared.sha256).exists()
    assert [v.version for v in store.list_versions("digits")] == [2]
    assert store.verify() == []


def test_removed_version_numbers_are_never_reused(store: Store, tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"m": "m"})
    store.record_success(make_run(run_id="a"), out)
    store.rm("digits:1")
    assert store.list_models() == []
    assert store.record_success(make_run(run_id="b"), out).version == 2


def test_rm_needs_an_explicit_version(store: Store, tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"m": "m"}))
    with pytest.raises(StoreError) as err:
        store.rm("digits")
    assert "digits:N" in err.value.fix and "existing: 1" in err.value.fix
    assert store.get("digits:1")


def test_materialize_copies_artifacts_to_their_relative_paths(store: Store, tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.joblib": "w", "sub/vocab.txt": "a b"})
    store.record_success(make_run(), out)
    dest = store.materialize("digits:1", tmp_path / "served" / "model")
    assert (dest / "model.joblib").read_text() == "w"
    assert (dest / "sub" / "vocab.txt").read_text() == "a b"
    (dest / "model.joblib").write_text("edited")  # a copy: editing it must not touch the store
    assert store.verify() == []


def test_materialize_refuses_a_non_empty_destination(store: Store, tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"m": "m"}))
    dest = write_outputs(tmp_path / "dest", {"keep.txt": "mine"})
    with pytest.raises(StoreError, match="not an empty directory"):
        store.materialize("digits:1", dest)
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_artifact_path_points_at_the_verified_blob(store: Store, tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"model.bin": "w"}))
    assert store.artifact_path("digits:1", "model.bin").read_text() == "w"
    with pytest.raises(StoreError) as err:
        store.artifact_path("digits:1", "missing.bin")
    assert "model.bin" in err.value.fix


# --- diff ----------------------------------------------------------------------------------


def test_diff_shows_param_and_metric_changes_with_delta(store: Store, tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.bin": "one", "metrics.json": '{"acc": 0.9}'})
    store.record_success(make_run(run_id="a", params={"n": "100", "old": "x"}), out)
    write_outputs(out, {"model.bin": "two", "metrics.json": '{"acc": 0.95, "f1": 0.8}'})
    store.record_success(make_run(run_id="b", params={"n": "200", "new": "y"},
                                  data_fingerprint="sha256:other"), out)
    d = store.diff("1", "2")  # one model in the store: bare numbers are enough
    assert d.params_changed == {"n": ("100", "200")}
    assert d.params_added == {"new": "y"} and d.params_removed == {"old": "x"}
    assert d.metrics["acc"].delta == pytest.approx(0.05)
    assert d.metrics["f1"].old is None
    assert set(d.artifacts_changed) == {"model.bin", "metrics.json"}
    assert d.data == ("none", "sha256:other")
    assert d.image is None
    text = render_diff(d)
    assert "~ n: 100 -> 200" in text
    assert "~ acc: 0.9 -> 0.95 (+0.05)" in text
    assert "image: unchanged" in text


def test_diff_of_a_version_with_itself_is_identical(store: Store, tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"m": "m"}))
    d = store.diff("digits:1", "latest")
    assert d.identical
    assert "no differences" in render_diff(d)


def test_diff_with_bare_numbers_is_ambiguous_when_several_models_exist(store: Store,
                                                                       tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"m": "m"})
    store.record_success(make_run(name="a"), out)
    store.record_success(make_run(name="b", run_id="r2"), out)
    with pytest.raises(StoreError) as err:
        store.diff("1", "1")
    assert "models: a, b" in err.value.fix
    assert store.diff("a:1", "b:1").a == "a:1"


# --- export / import -----------------------------------------------------------------------


def test_export_then_import_gives_the_next_version_with_provenance(store: Store,
                                                                   tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.bin": "w", "sub/x.txt": "x"})
    store.record_success(make_run(params={"n": "1"}), out, logs="log line")
    archive = store.export("digits:1", tmp_path)
    assert archive.name == "digits-1.tar.gz"

    other = Store(tmp_path / "other")
    other.record_success(make_run(run_id="local"), write_outputs(tmp_path / "o2", {"a": "a"}))
    imported = other.import_(archive)
    assert imported.ref == "digits:2"
    assert imported.imported_from is not None and imported.imported_from.ref == "digits:1"
    assert imported.params == {"n": "1"}
    assert {a.path for a in imported.artifacts} == {"model.bin", "sub/x.txt"}
    dest = other.materialize("digits:2", tmp_path / "m")
    assert (dest / "sub" / "x.txt").read_text() == "x"
    assert other.verify() == []
    assert other.import_(archive, name="renamed").ref == "renamed:1"


def test_exporting_the_same_version_twice_gives_identical_bytes(store: Store,
                                                                tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"m": "m"}))
    first = store.export("digits:1", tmp_path / "one.tar.gz").read_bytes()
    second = store.export("digits", tmp_path / "two.tgz").read_bytes()
    assert first == second


def test_export_target_must_be_a_tar_gz_or_directory(store: Store, tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"m": "m"}))
    with pytest.raises(StoreError, match=r"\.tar\.gz"):
        store.export("digits:1", tmp_path / "model.zip")


def _rewrite_archive(src: Path, dst: Path, change: dict[str, bytes | None],
                     extra: dict[str, bytes] | None = None) -> Path:
    """Copy an export, replacing (bytes) or dropping (None) members, adding ``extra``."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dst, "w:gz") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read()  # type: ignore[union-attr]
            if m.name in change:
                if change[m.name] is None:
                    continue
                data = change[m.name]  # type: ignore[assignment]
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    return dst


def test_import_rejects_an_artifact_whose_sha256_does_not_match(store: Store,
                                                                tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"model.bin": "good"}))
    archive = store.export("digits:1", tmp_path)
    bad = _rewrite_archive(archive, tmp_path / "bad.tar.gz", {"artifacts/model.bin": b"evil"})
    other = Store(tmp_path / "other")
    with pytest.raises(StoreError) as err:
        other.import_(bad)
    assert "artifacts/model.bin does not match its recorded sha256" in err.value.problem
    assert other.list_models() == []
    assert list(other.blobs_dir.iterdir()) == []


def test_import_rejects_members_the_record_does_not_list(store: Store, tmp_path: Path) -> None:
    store.record_success(make_run(), write_outputs(tmp_path / "out", {"model.bin": "good"}))
    archive = store.export("digits:1", tmp_path)
    bad = _rewrite_archive(archive, tmp_path / "bad.tar.gz", {},
                           extra={"../../etc/evil": b"x"})
    with pytest.raises(StoreError, match="unrecorded members"):
        Store(tmp_path / "other").import_(bad)
    missing = _rewrite_archive(archive, tmp_path / "missing.tar.gz", {"artifacts/model.bin": None})
    with pytest.raises(StoreError, match="missing members"):
        Store(tmp_path / "other").import_(missing)
    assert not (tmp_path / "etc").exists()


def test_import_of_a_truncated_archive_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    out = write_outputs(tmp_path / "out", {"model.bin": os.urandom(4096)})
    store.record_success(make_run(), out)
    archive = store.export("digits:1", tmp_path)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(StoreError) as err:
        Store(tmp_path / "other").import_(cut)
    assert "not a readable dockyard export" in err.value.problem
    assert "export it again" in err.value.fix
    assert Store(tmp_path / "other").list_models() == []


def test_import_of_a_foreign_tarball_names_the_missing_manifest(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        info = tarfile.TarInfo("hello.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(StoreError, match="dockyard-model.json"):
        Store(tmp_path / "s").import_(foreign)
