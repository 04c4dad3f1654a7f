"""OSV matching against the hand-made fixture database, with networking disabled."""

from __future__ import annotations

import json
import os
import socket
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dockyard.errors import ScanError
from dockyard.scan.sbom import Package
from dockyard.scan.vulns import (
    cvss3_base_score,
    load_osv_database,
    range_affects,
    scan_vulnerabilities,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scan"
OSV_DIR = FIXTURES / "osv"
NOW = datetime(2024, 2, 1, tzinfo=UTC)

EXPECTED = {
    # rule id -> (package, severity, fix hint)
    "CVE-2023-32681": ("requests", "medium", "upgrade requests to 2.31.0 or later"),
    "CVE-2024-0001": ("Jinja2", "critical", "upgrade Jinja2 to 2.11.3 or later"),
    "PYSEC-2021-108": ("urllib3", "medium", "upgrade urllib3 to 1.26.5 or later"),
    "GHSA-numpy-last": ("numpy", "low", "no fixed version published yet"),
    "OSV-2022-1": ("pillow", "high", "no fixed version published yet"),
    "DEBIAN-CVE-2023-5678": ("libssl3", "low", "upgrade libssl3 to 3.0.11-1~deb12u2 or later"),
}


def _inventory() -> list[Package]:
    items = json.loads((FIXTURES / "inventory.json").read_text())
    return [Package(i["name"], i["version"], i["ecosystem"], f"pkg:test/{i['name']}@{i['version']}",
                    source_name=i.get("source_name", ""), source_version=i.get("source_version", ""))
            for i in items]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the offline scan tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _by_id(report) -> dict[str, tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return {f.rule_id: (f.title.split(" ")[0], f.severity, f.fix) for f in report.findings}


def test_fixture_database_gives_exactly_the_expected_findings_offline(no_network: None) -> None:
    report = scan_vulnerabilities(_inventory(), osv_db=OSV_DIR, offline=True, now=NOW)
    assert _by_id(report) == EXPECTED
    assert report.warnings == ()


def test_zip_dump_gives_the_same_findings_as_the_directory(tmp_path: Path, no_network: None) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in OSV_DIR.rglob("*.json"):
            zf.write(file, file.name)  # osv.dev's all.zip is flat
    report = scan_vulnerabilities(_inventory(), osv_db=archive, offline=True, now=NOW)
    assert _by_id(report) == EXPECTED


def test_aliases_collapse_into_one_finding_that_lists_every_id() -> None:
    report = scan_vulnerabilities(_inventory(), osv_db=OSV_DIR, now=NOW)
    requests = [f for f in report.findings if f.title.startswith("requests")]
    assert len(requests) == 1
    for alias in ("CVE-2023-32681", "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"):
        assert alias in requests[0].detail


def test_withdrawn_limit_and_other_release_advisories_are_not_reported() -> None:
    ids = {f.rule_id for f in scan_vulnerabilities(_inventory(), osv_db=OSV_DIR, now=NOW).findings}
    for absent in ("GHSA-pillow-withdrawn", "GHSA-limit-requests", "PYSEC-2023-212", "GHSA-numpy-older",
                   "GHSA-safe-pkg", "DEBIAN-CVE-2022-37434", "GHSA-not-installed"):
        assert absent not in ids


def test_stale_database_is_not_checked_and_fails_the_gate() -> None:
    report = scan_vulnerabilities(_inventory(), osv_db=OSV_DIR, max_db_age_days=30,
                                  now=datetime(2024, 6, 1, tzinfo=UTC))
    assert any("138 days old" in n for n in report.not_checked), report.not_checked
    assert report.findings  # what the old data does know is still reported
    assert report.gate("critical") in {"findings", "not-checked"}
    fresh = scan_vulnerabilities(_inventory(), osv_db=OSV_DIR, max_db_age_days=3650,
                                 now=datetime(2024, 6, 1, tzinfo=UTC))
    assert fresh.not_checked == () and fresh.checks


def test_database_without_modified_dates_ages_by_file_mtime(tmp_path: Path) -> None:
    record = {"id": "X-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "numpy"}, "versions": ["1.21.0"]}]}
    path = tmp_path / "X-1.json"
    path.write_text(json.dumps(record))
    old = time.time() - 90 * 86400
    os.utime(path, (old, old))
    report = scan_vulnerabilities(_inventory(), osv_db=tmp_path, max_db_age_days=30)
    assert [f.rule_id for f in report.findings] == ["X-1"]
    assert any("days old" in n for n in report.not_checked)


def test_offline_without_database_is_an_explicit_opt_out_said_in_the_report(no_network: None) -> None:
    report = scan_vulnerabilities(_inventory(), offline=True)
    assert report.findings == () and report.not_checked == ()
    assert "not requested" in report.warnings[0] and "--osv-db" in report.warnings[0]
    assert report.gate("critical") is None


def test_unreachable_osv_api_fails_closed_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.scan import vulns

    monkeypatch.setattr(vulns, "OSV_API", "http://127.0.0.1:9/v1")  # discard port: refused
    report = vulns.scan_vulnerabilities(_inventory(), timeout=0.5)
    assert report.findings == ()
    assert "OSV API unreachable" in report.not_checked[0]
    assert report.fails("high") and report.gate("high") == "not-checked"
    assert "NOT CHECKED: vulnerabilities: OSV API unreachable" in report.to_table()


def test_missing_database_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScanError, match="does not exist"):
        load_osv_database(tmp_path / "nope")
    (tmp_path / "db.txt").write_text("x")
    with pytest.raises(ScanError, match="neither a directory nor a zip"):
        load_osv_database(tmp_path / "db.txt")


@pytest.mark.parametrize(
    ("version", "events", "affected"),
    [
        ("1.5", [{"introduced": "0"}, {"fixed": "2.0"}], True),
        ("2.0", [{"introduced": "0"}, {"fixed": "2.0"}], False),
        ("0.9", [{"introduced": "1.0"}, {"fixed": "2.0"}], False),
        ("1.0", [{"introduced": "1.0"}, {"fixed": "2.0"}], True),
        ("2.5", [{"introduced": "1.0"}, {"fixed": "2.0"}, {"introduced": "3.0"}, {"fixed": "3.1"}], False),
        ("3.0.5", [{"introduced": "3.0"}, {"fixed": "3.1"}, {"introduced": "1.0"}, {"fixed": "2.0"}], True),
        ("1.2", [{"introduced": "1.0"}, {"last_affected": "1.2"}], True),
        ("1.2.1", [{"introduced": "1.0"}, {"last_affected": "1.2"}], False),
        ("5.0", [{"introduced": "1.0"}], True),
        ("1.5", [{"introduced": "0"}, {"limit": "1.5"}], False),
        ("1.4", [{"introduced": "0"}, {"limit": "1.5"}], True),
        ("2.0rc1", [{"introduced": "0"}, {"fixed": "2.0"}], True),
    ],
)
def test_pypi_range_evaluation(version: str, events: list[dict[str, str]], affected: bool) -> None:
    assert range_affects("PyPI", version, {"type": "ECOSYSTEM", "events": events}) is affected


def test_debian_ranges_use_dpkg_ordering() -> None:
    rng = {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:2.0-1"}]}
    assert range_affects("Debian:12", "9.9-1", rng)  # epoch 0 < epoch 1
    assert not range_affects("Debian:12", "1:2.0-1", rng)
    assert range_affects("Debian:12", "1:2.0~rc1-1", rng)  # ~ sorts before the release


def test_cvss3_base_scores_match_nvd() -> None:
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N") == 6.1
    assert cvss3_base_score("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N") == 5.5
    assert cvss3_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P") is None
