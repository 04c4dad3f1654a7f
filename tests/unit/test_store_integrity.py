"""The store under damage, crashes and concurrent writers: detected, never silently rewritten."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.errors import StoreError
from dockyard.store import ImageInfo, RunRecord, Store

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SRC = Path(__file__).resolve().parents[2] / "src"


def make_run(name: str = "digits", run_id: str = "run-1", **overrides: object) -> RunRecord:
    fields: dict[str, object] = dict(
        name=name, run_id=run_id, command="python train.py",
        image=ImageInfo(id="sha256:" + "a" * 64), started=T0,
        ended=T0 + timedelta(seconds=1), exit_status=0,
    )
    fields.update(overrides)
    return RunRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.bin").write_bytes(b"weights-v1")
    (out / "metrics.json").write_text('{"acc": 0.9}')
    return out


def _writable(path: Path) -> Path:
    path.chmod(0o644)  # records and blobs are stored read-only on purpose
    return path


def test_a_healthy_store_verifies_clean(store: Store, outputs: Path) -> None:
    store.record_success(make_run(), outputs, logs="ok")
    store.record_failure(make_run(run_id="bad", exit_status=2), logs="nope")
    assert store.verify() == []


@pytest.mark.parametrize("damage", [
    b'{"schema": 1, "models": {"digits": {"next": 2, "versi',  # truncated
    b"",
    b'{"schema": 99, "models": {}}',
    b'{"schema": 1, "models": {"digits": {"next": 1, "versions": {"1": "' + b"0" * 64 + b'"}}}}',
    b'{"schema": 1, "models": {"Bad Name": {"next": 1, "versions": {}}}}',
    b"[1, 2]",
])
def test_corrupt_index_is_reported_with_file_and_fix_and_left_untouched(
        store: Store, outputs: Path, damage: bytes) -> None:
    store.record_success(make_run(), outputs)
    store.index_path.write_bytes(damage)
    for action in (store.list_models, lambda: store.get("digits:1"),
                   lambda: store.record_success(make_run(run_id="r2"), outputs),
                   lambda: store.rm("digits:1"), store.gc):
        with pytest.raises(StoreError) as err:
            action()
        assert str(store.index_path) in err.value.problem
        assert "dockyard models fsck" in err.value.fix
    assert store.index_path.read_bytes() == damage
    assert (store.models_dir / "digits" / "1.json").exists()
    problems = store.verify()
    assert [p.severity for p in problems] == ["error"]
    assert problems[0].path == str(store.index_path)


def test_missing_index_next_to_existing_records_is_reported(store: Store, outputs: Path) -> None:
    store.record_success(make_run(), outputs)
    store.index_path.unlink()
    with pytest.raises(StoreError, match="is missing but 1 version record"):
        store.list_models()
    assert not store.index_path.exists()


def test_a_record_edited_after_it_was_written_is_detected(store: Store, outputs: Path) -> None:
    store.record_success(make_run(), outputs)
    record = _writable(store.models_dir / "digits" / "1.json")
    doc = json.loads(record.read_text())
    doc["metrics"]["acc"] = 0.99
    record.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match="changed after it was written"):
        store.get("digits:1")
    assert any("changed after it was written" in p.problem for p in store.verify())


def test_a_missing_blob_is_detected_on_read_and_by_verify(store: Store, outputs: Path) -> None:
    version = store.record_success(make_run(), outputs)
    art = version.artifact("model.bin")
    assert art is not None
    (store.blobs_dir / art.sha256).unlink()
    with pytest.raises(StoreError) as err:
        store.get("digits:1")
    assert art.sha256 in err.value.problem and "model.bin" in err.value.problem
    problems = store.verify()
    assert any(p.severity == "error" and "model.bin" in p.problem and "missing" in p.problem
               for p in problems)


def test_a_blob_whose_content_changed_is_caught_before_it_is_served(store: Store, outputs: Path,
                                                                     tmp_path: Path) -> None:
    version = store.record_success(make_run(), outputs)
    art = version.artifact("model.bin")
    assert art is not None
    _writable(store.blobs_dir / art.sha256).write_bytes(b"weights-v2")  # same size, new content
    problems = store.verify()
    assert any("corrupt (sha256 mismatch)" in p.problem for p in problems)
    with pytest.raises(StoreError, match="sha256 no longer matches"):
        store.materialize("digits:1", tmp_path / "serve")
    assert not (tmp_path / "serve").exists()  # no half-copied model left behind
    with pytest.raises(StoreError, match="sha256"):
        store.export("digits:1", tmp_path)
    assert list(tmp_path.glob("*.tar.gz")) == []


def test_failed_index_write_leaves_the_store_unchanged_and_valid(
        store: Store, outputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.record_success(make_run(), outputs)
    before = store.index_path.read_bytes()
    real_replace = os.replace

    def failing_replace(src: object, dst: object) -> None:
        if str(dst).endswith("index.json"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing_replace)
    (outputs / "model.bin").write_bytes(b"weights-v2")
    with pytest.raises(OSError, match="No space left"):
        store.record_success(make_run(run_id="r2"), outputs)
    monkeypatch.undo()

    assert store.index_path.read_bytes() == before
    assert [v.version for v in store.list_versions("digits")] == [1]
    assert not (store.models_dir / "digits" / "2.json").exists()
    assert [p for p in store.verify() if p.severity == "error"] == []
    assert store.record_success(make_run(run_id="r3"), outputs).version == 2
    assert store.gc().blobs_removed == 0  # v2's blob is now referenced, nothing stray remains


def test_a_crash_between_record_and_index_leaves_an_ignored_orphan(store: Store,
                                                                   outputs: Path) -> None:
    """A real process dies (os._exit) right before the index rename."""
    store.record_success(make_run(), outputs)
    before = store.index_path.read_bytes()
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(SRC)!r})
        from datetime import datetime, timezone
        from pathlib import Path
        from dockyard.store import ImageInfo, RunRecord, Store
        real = os.replace
        def crash(src, dst):
            if str(dst).endswith("index.json"):
                os._exit(9)
            real(src, dst)
        os.replace = crash
        t = datetime(2024, 5, 1, tzinfo=timezone.utc)
        run = RunRecord(name="digits", run_id="crash", command="x", image=ImageInfo(id="i"),
                        started=t, ended=t)
        Path({str(outputs)!r}, "model.bin").write_bytes(b"crashed-run")
        Store(Path({str(store.root)!r})).record_success(run, Path({str(outputs)!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert store.index_path.read_bytes() == before
    assert (store.models_dir / "digits" / "2.json").exists()  # written, never indexed
    with pytest.raises(StoreError, match="digits:2 does not exist"):
        store.get("digits:2")
    problems = store.verify()
    assert {p.severity for p in problems} == {"warning"}
    assert any("not in the index" in p.problem for p in problems)
    assert store.record_success(make_run(run_id="next"), outputs).version == 2
    assert store.get("digits:2").run_id == "next"


def test_rebuild_index_repairs_a_corrupt_index_and_keeps_the_damaged_file(
        store: Store, outputs: Path) -> None:
    store.record_success(make_run(run_id="a"), outputs)
    store.record_success(make_run(run_id="b"), outputs)
    store.index_path.write_bytes(b"{garbage")
    assert store.rebuild_index() == []
    assert [v.run_id for v in store.list_versions("digits")] == ["a", "b"]
    kept = list(store.root.glob("index.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"{garbage"
    assert store.verify() == []
    assert store.record_success(make_run(run_id="c"), outputs).version == 3


def test_rebuild_index_leaves_out_records_with_missing_blobs(store: Store, outputs: Path) -> None:
    store.record_success(make_run(run_id="a"), outputs)
    (outputs / "model.bin").write_bytes(b"only-in-v2")
    v2 = store.record_success(make_run(run_id="b"), outputs)
    art = v2.artifact("model.bin")
    assert art is not None
    (store.blobs_dir / art.sha256).unlink()
    skipped = store.rebuild_index()
    assert len(skipped) == 1 and "left out of the index" in skipped[0].problem
    assert [m.versions for m in store.list_models()] == [(1,)]
    assert store.record_success(make_run(run_id="c"), outputs).version == 3  # 2 stays retired


def test_gc_removes_dead_staging_dirs_but_not_a_live_writers(store: Store, outputs: Path) -> None:
    store.record_success(make_run(), outputs)
    dead = store.tmp_dir / "stage-dead"
    dead.mkdir()
    (dead / ".lock").touch()
    (dead / "blob").write_bytes(b"half")
    with store._staging() as live:
        (live / "blob").write_bytes(b"in progress")
        result = store.gc()
        assert live.exists()
    assert not dead.exists()
    assert result.temp_removed == 1
    assert store.verify() == []


def _record_in_child(root: str, outputs: str, run_id: str, barrier: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    run = make_run(run_id=run_id, params={"worker": run_id})
    Store(Path(root)).record_success(run, Path(outputs))


def test_eight_processes_recording_at_once_get_versions_1_to_8(store: Store,
                                                               tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(8)
    procs = []
    for i in range(8):
        out = tmp_path / f"out-{i}"
        out.mkdir()
        (out / "model.bin").write_bytes(f"weights of worker {i}".encode())
        procs.append(ctx.Process(target=_record_in_child,
                                 args=(str(store.root), str(out), f"w{i}", barrier)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    versions = store.list_versions("digits")
    assert [v.version for v in versions] == list(range(1, 9))
    assert sorted(v.run_id for v in versions) == [f"w{i}" for i in range(8)]
    assert len({v.artifacts[0].sha256 for v in versions}) == 8
    json.loads(store.index_path.read_text())
    assert store.verify() == []
