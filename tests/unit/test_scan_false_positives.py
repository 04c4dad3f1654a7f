"""No false alarms at CRITICAL: library source, test fixtures and docs are not keys; real keys are.

The library files are the real ones from the installed cryptography, google-auth and tornado
packages (test extras), placed where an image keeps them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from test_scan_image import CONFIG, LAYERS, legacy_archive

from dockyard.scan.image import audit_config, audit_image, read_image_tar
from dockyard.scan.secrets import classify_file, judge_assignment

SITE = "/opt/venv/lib/python3.11/site-packages"
# A syntactically complete key block (random bytes, not a key anyone uses).
KEY_BLOCK = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
             "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----\n")


def _package_file(package: str, relative: str) -> tuple[str, bytes]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed (a test extra)")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / relative
    top = package.split(".")[0]
    inside = path.relative_to(root.parents[len(package.split(".")) - 1])
    assert inside.parts[0] == top
    return f"{SITE}/{inside.as_posix()}", path.read_bytes()


@pytest.mark.parametrize(("package", "relative"), [
    ("cryptography", "hazmat/primitives/serialization/ssh.py"),
    ("google.auth", "crypt/_python_rsa.py"),
    ("google.auth", "transport/_mtls_helper.py"),
    ("google.oauth2", "gdch_credentials.py"),
])
def test_pem_marker_constants_in_library_source_are_not_keys(package: str, relative: str) -> None:
    image_path, content = _package_file(package, relative)
    assert b"PRIVATE KEY-----" in content  # the marker is really there
    assert classify_file(image_path, content) is None
    assert classify_file("/app/vendored.py", content) is None  # a marker is not a key anywhere


def test_key_fixture_of_an_installed_package_is_info_not_critical() -> None:
    image_path, content = _package_file("tornado", "test/test.key")
    verdict = classify_file(image_path, content)
    assert verdict is not None and verdict.severity == "info"
    assert "test fixture" in verdict.reason


@pytest.mark.parametrize("path", ["/usr/share/doc/openssl/HOWTO/keys.txt", "/app/docs/tls.md",
                                  f"{SITE}/paramiko/rsakey.py"])
def test_key_blocks_in_docs_and_library_source_are_info(path: str) -> None:
    verdict = classify_file(path, KEY_BLOCK.encode())
    assert verdict is not None and verdict.severity == "info"


@pytest.mark.parametrize("path", ["/app/id_rsa", "/app/certs/server.key", "/root/key.pem",
                                  f"{SITE}/evil/key.pem", "/app/tests/../deploy.key"])
def test_real_key_files_stay_critical(path: str) -> None:
    verdict = classify_file(path, KEY_BLOCK.encode())
    assert verdict is not None and verdict.severity == "critical"


def test_key_in_an_env_value_stays_critical() -> None:
    verdict = judge_assignment("TLS_KEY", KEY_BLOCK)
    assert verdict is not None and verdict.severity == "critical"


def test_library_files_in_an_image_layer_raise_nothing_but_a_planted_key_does(tmp_path: Path) -> None:
    _, crypto_src = _package_file("cryptography", "hazmat/primitives/serialization/ssh.py")
    _, fixture = _package_file("tornado", "test/test.key")
    layers = [*LAYERS, [(f"{SITE[1:]}/cryptography/hazmat/primitives/serialization/ssh.py", crypto_src[:4096], 0o644),
                        (f"{SITE[1:]}/tornado/test/test.key", fixture, 0o644),
                        ("app/deploy_key.pem", KEY_BLOCK.encode(), 0o600)]]
    import test_scan_image

    original = test_scan_image.LAYERS
    test_scan_image.LAYERS = layers
    try:
        fs = read_image_tar(legacy_archive(tmp_path / "image.tar"))
    finally:
        test_scan_image.LAYERS = original
    by_path = {f.location: f.severity for f in audit_image(fs, "demo").findings}
    assert by_path["/app/deploy_key.pem"] == "critical"
    assert by_path[f"{SITE}/tornado/test/test.key"] == "info"
    assert f"{SITE}/cryptography/hazmat/primitives/serialization/ssh.py" not in by_path


def _fs(tmp_path: Path, config: dict) -> object:  # type: ignore[type-arg]
    return read_image_tar(legacy_archive(tmp_path / "image.tar", config))


def test_train_image_with_deliberate_healthcheck_none_gets_no_finding(tmp_path: Path) -> None:
    config = json.loads(json.dumps(CONFIG))
    config["config"].update({"User": "10001:10001", "Env": [], "Healthcheck": {"Test": ["NONE"]},
                             "Labels": {"io.dockyard.role": "train"}})
    assert [f.rule_id for f in audit_config(_fs(tmp_path, config))] == []  # type: ignore[arg-type]


@pytest.mark.parametrize("healthcheck, labels", [
    ({"Test": ["NONE"]}, {"io.dockyard.role": "serve"}),  # a server must be probed
    ({}, {"io.dockyard.role": "train"}),  # no deliberate NONE: inherited nothing, said nothing
    ({"Test": ["NONE"]}, {}),
])
def test_missing_healthcheck_is_still_flagged_elsewhere(tmp_path: Path, healthcheck: dict, labels: dict) -> None:  # type: ignore[type-arg]
    config = json.loads(json.dumps(CONFIG))
    config["config"].update({"User": "10001:10001", "Env": [], "Healthcheck": healthcheck, "Labels": labels})
    assert [f.rule_id for f in audit_config(_fs(tmp_path, config))] == ["image/no-healthcheck"]  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "kind"), [
    ("lib/apk/db/installed", "Alpine apk"),
    ("var/lib/rpm/rpmdb.sqlite", "RPM"),
    ("opt/conda/conda-meta/numpy-1.26.4-py311.json", "conda"),
])
def test_package_databases_dockyard_cannot_read_fail_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             path: str, kind: str) -> None:
    import test_scan_image

    from dockyard.scan import scan_image_archive

    monkeypatch.setattr(test_scan_image, "LAYERS", [*LAYERS, [(path, b"x", 0o644)]])
    osv = Path(__file__).parent.parent / "fixtures" / "scan" / "osv"
    report = scan_image_archive(legacy_archive(tmp_path / "image.tar"), osv_db=osv, max_db_age_days=100000)
    assert [n for n in report.not_checked if n.startswith(f"vulnerabilities in {kind} packages")]
    assert report.gate("critical") in {"findings", "not-checked"}
    sarif = json.loads(report.to_sarif())
    invocation = sarif["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert any(kind in n["message"]["text"] and n["level"] == "error"
               for n in invocation["toolExecutionNotifications"])
    assert json.loads(report.to_json())["not_checked"] == list(report.not_checked)


def test_a_debian_image_has_nothing_left_unchecked(tmp_path: Path) -> None:
    from dockyard.scan import scan_image_archive

    osv = Path(__file__).parent.parent / "fixtures" / "scan" / "osv"
    report = scan_image_archive(legacy_archive(tmp_path / "image.tar"), osv_db=osv, max_db_age_days=100000)
    assert report.not_checked == ()
    assert any(c.startswith("vulnerabilities (OSV dump") for c in report.checks)
