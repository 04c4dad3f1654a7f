"""`dockyard models ...` against a real store on disk (versions written with the store API, no
Docker): list, show, diff, rm, export/import, fsck on a corrupt index, failed runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.cli import main
from dockyard.store import ImageInfo, Resources, RunRecord, Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


def add_version(store: Store, tmp_path: Path, n: int, c: str, accuracy: float) -> None:
    outputs = tmp_path / f"out{n}"
    outputs.mkdir()
    (outputs / "model.joblib").write_bytes(b"model-" + c.encode())
    (outputs / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    run = RunRecord(name="digits", run_id=f"run-{n}", command=("python", "train.py"), image=ImageInfo("sha256:" + "a" * 64),
                    started=T0, ended=T0 + timedelta(seconds=3), params={"C": c}, resources=Resources(2.0, "2g"))
    store.record_success(run, outputs, logs="trained\n")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    add_version(s, tmp_path, 1, "1.0", 0.95)
    add_version(s, tmp_path, 2, "0.1", 0.90)
    return s


def test_list_show_and_diff_describe_the_versions(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(store.root)
    code, out, _ = run_cli(capsys, "models", "list", "--store", root)
    assert code == 0 and "MODEL" in out and "LATEST" in out
    (row,) = [line for line in out.splitlines() if line.startswith("digits")]
    assert row.split()[:4] == ["digits", "1,2", "(2)", "digits:2"] and "accuracy=0.9" in row
    code, out, _ = run_cli(capsys, "models", "show", "digits:1", "--store", root, "--json")
    shown = json.loads(out)
    assert shown["ref"] == "digits:1" and shown["params"] == {"C": "1.0"} and shown["metrics"] == {"accuracy": 0.95}
    assert {a["path"] for a in shown["artifacts"]} == {"model.joblib", "metrics.json"}
    code, out, _ = run_cli(capsys, "models", "diff", "digits:1", "digits:2", "--store", root)
    assert code == 0
    assert "~ C: 1.0 -> 0.1" in out and "~ accuracy: 0.95 -> 0.9" in out and "~ model.joblib" in out


def test_unknown_version_names_the_existing_ones(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "models", "show", "digits:7", "--store", str(store.root))
    assert code == 1
    assert "digits:7 does not exist" in err and "1, 2" in err


def test_export_then_import_makes_a_new_version_with_the_same_artifacts(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "models", "export", "digits:1", "-o", str(tmp_path), "--store", str(store.root))
    assert code == 0, err
    archive = tmp_path / "digits-1.tar.gz"
    assert archive.is_file()
    other = Store(tmp_path / "other")
    code, out, err = run_cli(capsys, "models", "import", str(archive), "--name", "digits-copy", "--store", str(other.root))
    assert code == 0, err
    assert "digits-copy:1" in out
    assert {a.sha256 for a in other.get("digits-copy:1").artifacts} == {a.sha256 for a in store.get("digits:1").artifacts}


def test_rm_removes_one_version_and_its_number_is_not_reused(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "models", "rm", "digits:2", "--store", str(store.root))
    assert code == 0 and "removed digits:2" in out
    assert [m.versions for m in store.list_models()] == [(1,)]


def test_fsck_reports_a_corrupt_index_and_repair_rebuilds_it(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    store.index_path.write_text("{not json")
    code, out, _ = run_cli(capsys, "models", "fsck", "--store", str(store.root))
    assert code == 1 and "index" in out and "not valid JSON" in out
    assert store.index_path.read_text() == "{not json"  # reported, never silently rewritten
    code, out, _ = run_cli(capsys, "models", "fsck", "--repair", "--store", str(store.root))
    assert code == 0 and "0 error(s)" in out
    assert [m.versions for m in store.list_models()] == [(1, 2)]


def test_runs_lists_failed_runs_with_reason_and_logs(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    failed = RunRecord(name="digits", run_id="run-failed", command=("python", "train.py"), image=ImageInfo("sha256:" + "b" * 64),
                       started=T0, ended=T0 + timedelta(seconds=1), exit_status=7)
    store.record_failure(failed, "Traceback: boom\n")
    code, out, _ = run_cli(capsys, "models", "runs", "digits", "--store", str(store.root))
    assert code == 0 and "run-failed" in out and "exit 7" in out
    code, out, _ = run_cli(capsys, "models", "runs", "--logs", "run-failed", "--store", str(store.root))
    assert "Traceback: boom" in out
