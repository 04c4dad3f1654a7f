from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from dockyard.errors import ScanError
from dockyard.scan import scan_path
from dockyard.scan.dockerignore import DockerIgnore

FIXTURES = Path(__file__).parent.parent / "fixtures" / "scan"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"


class Payload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "models").mkdir(parents=True)
    (root / "secrets").mkdir()
    shutil.copy(FIXTURES / "Dockerfile.good", root / "Dockerfile")
    (root / ".dockerignore").write_text(".env\nsecrets/\n*.log\n!keep.log\n")
    (root / ".env").write_text("TOKEN=x\n")  # ignored: never reaches the image
    (root / "secrets" / "id_rsa").write_text(KEY)  # ignored through its directory
    (root / "deploy_key.pem").write_text(KEY)  # NOT ignored: a finding
    (root / "models" / "evil.pkl").write_bytes(pickle.dumps(Payload()))
    (root / "models" / "ok.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    (root / "app.py").write_text("print('hi')\n")
    return root


def test_project_scan_reports_unignored_secrets_and_malicious_models_only(tmp_path: Path) -> None:
    report = scan_path(_project(tmp_path), hadolint=False)
    assert {(f.rule_id, f.location.rsplit("/proj/", 1)[-1]) for f in report.findings} == {
        ("context/secret-file", "deploy_key.pem"),
        ("model/dangerous-import", "models/evil.pkl"),
    }
    assert report.fails("high")


def test_git_config_with_credentials_in_context_is_critical(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text('[remote "origin"]\n\turl = https://bob:ghs_secret@example.com/x.git\n')
    found = {(f.rule_id, f.severity) for f in scan_path(root).findings}
    assert found == {("context/secret-file", "critical")}
    (root / ".dockerignore").write_text(".git\n")
    assert scan_path(root).findings == ()


def test_scan_path_of_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ScanError, match="not a directory"):
        scan_path(tmp_path / "f")


@pytest.mark.parametrize(
    ("rules", "path", "excluded"),
    [
        ("*.log", "a.log", True),
        ("*.log", "sub/a.log", False),  # Docker's * does not cross directories
        ("**/*.log", "sub/deep/a.log", True),
        ("secrets", "secrets/id_rsa", True),  # a matching directory excludes its contents
        ("*.log\n!keep.log", "keep.log", False),
        ("/build", "build/x", True),
        ("docs/\n!docs/README.md", "docs/README.md", False),
        ("", "anything", False),
    ],
)
def test_dockerignore_matching(rules: str, path: str, excluded: bool) -> None:
    assert DockerIgnore.parse(rules).excluded(path) is excluded
