"""`dockyard scan` as CI meets it: what it scans, what it says it checked, and distinct exit codes.

0 clean, 1 usage error, 2 environment problem, 4 findings at or above --fail-on, 5 --fail-on
with a requested check that could not run.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import model_corpus
import pytest
from test_cli_errors import assert_user_error, dockyard_cli

joblib = pytest.importorskip("joblib")
linear_model = pytest.importorskip("sklearn.linear_model")
DEAD_OSV = {"DOCKYARD_OSV_API": "http://127.0.0.1:9/v1"}  # the discard port: connection refused


@pytest.fixture(scope="module")
def benign_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y, _ = model_corpus._data()
    path = tmp_path_factory.mktemp("models") / "model.joblib"
    joblib.dump(linear_model.LogisticRegression().fit(x, y), path)
    return path


@pytest.mark.parametrize("name", ["uuid_get_command_stdout", "pkgutil_resolve_name", "operator_methodcaller"])
def test_scan_of_a_single_model_file_flags_each_published_bypass(tmp_path: Path, name: str) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(model_corpus.MALICIOUS[name])
    proc = dockyard_cli("scan", str(path), "--fail-on", "high", "--format", "json")
    assert proc.returncode == 4, proc.stderr
    report = json.loads(proc.stdout)
    assert report["worst_severity"] == "critical"
    assert any(f["rule_id"] == "model/dangerous-import" for f in report["findings"])
    assert dockyard_cli("scan", str(path)).returncode == 0  # no --fail-on: report only


def test_scan_of_a_benign_model_file_is_clean_and_says_what_ran(benign_model: Path) -> None:
    proc = dockyard_cli("scan", str(benign_model), "--fail-on", "high", "--format", "json")
    assert proc.returncode == 0, proc.stdout
    report = json.loads(proc.stdout)
    assert report["not_checked"] == []
    assert "model files: 1 (pickle allow-list)" in report["checks"]
    assert any("picklescan" in c for c in report["checks"]) and any("fickling" in c for c in report["checks"])
    assert [f["rule_id"] for f in report["findings"]] == ["model/safer-format"]


def test_scan_of_a_folder_of_models_judges_each_file(tmp_path: Path, benign_model: Path) -> None:
    (tmp_path / "good.joblib").write_bytes(benign_model.read_bytes())
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "bad.pt").write_bytes(model_corpus._torch_zip(model_corpus.MALICIOUS["memo_stack_global"]))
    (tmp_path / "notes.txt").write_text("not a model\n")
    proc = dockyard_cli("scan", str(tmp_path), "--fail-on", "critical", "--format", "json")
    assert proc.returncode == 4
    locations = {f["location"] for f in json.loads(proc.stdout)["findings"] if f["severity"] == "critical"}
    assert locations == {str(tmp_path / "nested" / "bad.pt")}


def test_unscannable_model_is_not_checked_and_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "opaque.joblib"
    path.write_bytes(b"\x80\x05" + bytes(range(256)) * 4)
    proc = dockyard_cli("scan", str(path), "--fail-on", "critical")
    assert proc.returncode == 5, proc.stdout
    assert "NOT CHECKED: model file" in proc.stdout


def test_osv_unreachable_fails_closed_with_the_reason(tmp_path: Path) -> None:
    # The case: a requirement with known advisories, OSV unreachable, --fail-on high.
    (tmp_path / "requirements.txt").write_text("requests==2.5.0\n")
    proc = dockyard_cli("scan", str(tmp_path), "--vulns", "--fail-on", "high", env=DEAD_OSV)
    assert proc.returncode == 5, (proc.stdout, proc.stderr)
    assert "NOT CHECKED: vulnerabilities: OSV API unreachable" in proc.stdout
    assert "could not run" in proc.stderr
    # --offline without a dump is the user opting out: said, not failed (the demo scans this way)
    offline = dockyard_cli("scan", str(tmp_path), "--vulns", "--offline", "--fail-on", "high")
    assert offline.returncode == 0 and "vulnerabilities not requested" in offline.stdout


def test_offline_dump_older_than_the_limit_fails_closed(tmp_path: Path) -> None:
    osv = Path(__file__).parents[1] / "fixtures" / "scan" / "osv"
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    proc = dockyard_cli("scan", str(tmp_path), "--vulns", "--osv-db", str(osv), "--max-db-age-days", "1",
                        "--fail-on", "critical")
    assert proc.returncode == 5
    assert "days old" in proc.stdout


def test_usage_errors_exit_1_not_like_findings(tmp_path: Path) -> None:
    assert_user_error(dockyard_cli("scan", str(tmp_path / "missing.pkl")))
    assert_user_error(dockyard_cli("scan", str(tmp_path), "--fail-on", "severe"))
    assert_user_error(dockyard_cli("scan", str(tmp_path), "--sbom", "xml"))


def test_help_documents_the_exit_codes() -> None:
    proc = dockyard_cli("scan", "--help")
    text = " ".join(proc.stdout.split())
    assert "4 findings at or above --fail-on" in text and "5 --fail-on given but a requested check" in text


def test_a_pickled_full_torch_module_is_refused_with_the_class_named(tmp_path: Path) -> None:
    class Net:  # a user's class: loading the file imports it from the user's code
        pass

    Net.__module__ = "train_script"
    Net.__qualname__ = "Net"
    import sys
    import types

    module = types.ModuleType("train_script")
    module.Net = Net  # type: ignore[attr-defined]
    sys.modules["train_script"] = module
    try:
        (tmp_path / "model.pkl").write_bytes(pickle.dumps(Net()))
    finally:
        del sys.modules["train_script"]
    proc = dockyard_cli("scan", str(tmp_path / "model.pkl"), "--fail-on", "high")
    assert proc.returncode == 4
    assert "train_script.Net, which is not on the allow-list" in proc.stdout


def test_unpinned_requirements_cannot_be_matched_so_they_are_not_checked(tmp_path: Path) -> None:
    osv = Path(__file__).parents[1] / "fixtures" / "scan" / "osv"
    (tmp_path / "requirements.txt").write_text("numpy==1.21.0\nrequests>=2\n# a comment\n--extra-index-url x\n")
    proc = dockyard_cli("scan", str(tmp_path), "--vulns", "--osv-db", str(osv), "--max-db-age-days", "100000",
                        "--fail-on", "critical", "--format", "json")
    report = json.loads(proc.stdout)
    assert [n for n in report["not_checked"] if "1 unpinned requirement(s) (requests>=2)" in n]
    assert proc.returncode in (4, 5)
