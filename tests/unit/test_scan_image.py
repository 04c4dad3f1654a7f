"""Image audit over hand-built ``docker save`` archives (legacy and OCI layouts), no engine."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from dockyard.errors import ScanError
from dockyard.scan import image_sbom, scan_image_archive
from dockyard.scan.image import audit_image, read_image_tar
from dockyard.scan.sbom import inventory, spdx_json

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
METADATA = b"Metadata-Version: 2.1\nName: tiny_pkg\nVersion: 1.2.3\nLicense: MIT\n\n"
DPKG = (b"Package: libssl3\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n"
        b"Architecture: amd64\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1\n")

File = tuple[str, bytes | None, int]  # path, content (None = dir), mode


def _layer(files: list[File]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


LAYERS: list[list[File]] = [
    [("etc", None, 0o755), ("etc/os-release", b'ID=debian\nVERSION_ID="12"\n', 0o644),
     ("usr/bin/su", b"\x7fELF", 0o4755), ("usr/bin/wall", b"\x7fELF", 0o2755),
     ("var/lib/dpkg/status", DPKG, 0o644), ("root/.aws/credentials", b"[default]\n", 0o600),
     ("opt/cache/old.txt", b"x", 0o644)],
    [("app/id_rsa", KEY, 0o600), ("app/.env", b"A=1\n", 0o644), ("app/cert.pem", KEY, 0o644),
     ("usr/lib/python3/site-packages/tiny_pkg-1.2.3.dist-info/METADATA", METADATA, 0o644),
     ("app/gcp.json", b'{"type": "service_account", "private_key": "x"}', 0o644)],
    # Deletions: a whiteout for the AWS file and an opaque /opt/cache.
    [("root/.aws/.wh.credentials", b"", 0o644), ("opt/cache/.wh..wh..opq", b"", 0o644),
     ("opt/cache/new.txt", b"y", 0o644)],
]
CONFIG = {"architecture": "amd64", "os": "linux",
          "config": {"User": "", "Env": ["PATH=/usr/bin", "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789"],
                     "Labels": {"org.opencontainers.image.title": "demo"}},
          "rootfs": {"type": "layers", "diff_ids": []}}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def legacy_archive(path: Path, config: dict = CONFIG) -> Path:  # type: ignore[type-arg]
    with tarfile.open(path, "w") as tar:
        names = []
        for i, files in enumerate(LAYERS):
            names.append(f"layer{i}/layer.tar")
            _add(tar, names[-1], _layer(files))
        _add(tar, "cfg.json", json.dumps(config).encode())
        _add(tar, "manifest.json", json.dumps([{"Config": "cfg.json", "RepoTags": ["demo:1"], "Layers": names}]).encode())
    return path


def oci_archive(path: Path) -> Path:
    def blob(tar: tarfile.TarFile, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        _add(tar, f"blobs/sha256/{digest}", data)
        return f"sha256:{digest}"

    with tarfile.open(path, "w") as tar:
        layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(tar, gzip.compress(_layer(f)))}
                  for f in LAYERS]
        config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(tar, json.dumps(CONFIG).encode())}
        manifest = blob(tar, json.dumps({"schemaVersion": 2, "config": config, "layers": layers}).encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest,
             "annotations": {"io.containerd.image.name": "demo:oci"}}]}).encode())
    return path


EXPECTED = {
    ("image/root-user", "image config"), ("image/no-healthcheck", "image config"), ("image/secret-env", "image config"),
    ("image/setuid", "/usr/bin/su"), ("image/setuid", "/usr/bin/wall"),
    ("image/secret-file", "/app/id_rsa"), ("image/secret-file", "/app/.env"),
    ("image/secret-file", "/app/cert.pem"), ("image/secret-file", "/app/gcp.json"),
}


@pytest.mark.parametrize("build", [legacy_archive, oci_archive])
def test_audit_finds_exactly_the_planted_problems(tmp_path: Path, build) -> None:  # type: ignore[no-untyped-def]
    fs = read_image_tar(build(tmp_path / "image.tar"))
    findings = audit_image(fs, "demo").findings
    assert {(f.rule_id, f.location) for f in findings} == EXPECTED


def test_whiteouts_hide_deleted_files_and_opaque_dirs(tmp_path: Path) -> None:
    fs = read_image_tar(legacy_archive(tmp_path / "image.tar"))
    assert "/root/.aws/credentials" not in fs.files
    assert "/opt/cache/old.txt" not in fs.files
    assert "/opt/cache/new.txt" in fs.files
    assert fs.tags == ("demo:1",) and fs.layer_count == 3


def test_non_root_user_with_healthcheck_has_no_config_findings(tmp_path: Path) -> None:
    config = {**CONFIG, "config": {"User": "10001:10001", "Env": ["TOKENIZERS_PARALLELISM=false"],
                                   "Healthcheck": {"Test": ["CMD", "true"]}}}
    fs = read_image_tar(legacy_archive(tmp_path / "image.tar", config))
    assert [f for f in audit_image(fs, "demo").findings if f.location == "image config"] == []


def test_sbom_lists_dist_info_and_installed_debian_packages(tmp_path: Path) -> None:
    fs = read_image_tar(legacy_archive(tmp_path / "image.tar"))
    purls = {p.purl for p in inventory(fs)}
    assert purls == {"pkg:pypi/tiny-pkg@1.2.3",
                     "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12"}
    report = scan_image_archive(tmp_path / "image.tar", offline=True)
    cyclonedx = json.loads(image_sbom(report, "cyclonedx"))  # validated against the 1.6 schema inside
    assert cyclonedx["specVersion"] == "1.6"
    assert {c["purl"] for c in cyclonedx["components"]} == purls
    spdx = json.loads(spdx_json(inventory(fs), "demo"))
    assert spdx["spdxVersion"] == "SPDX-2.3"
    assert {p["externalRefs"][0]["referenceLocator"] for p in spdx["packages"]} == purls


def test_image_vulnerabilities_match_debian_source_packages(tmp_path: Path) -> None:
    osv = Path(__file__).parent.parent / "fixtures" / "scan" / "osv"
    report = scan_image_archive(legacy_archive(tmp_path / "image.tar"), osv_db=osv, max_db_age_days=100000)
    assert "DEBIAN-CVE-2023-5678" in {f.rule_id for f in report.findings}


def test_not_an_image_archive_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.tar"
    with tarfile.open(bogus, "w") as tar:
        _add(tar, "hello.txt", b"hi")
    with pytest.raises(ScanError, match="neither manifest.json nor index.json"):
        read_image_tar(bogus)
    (tmp_path / "y.tar").write_bytes(b"not a tar")
    with pytest.raises(ScanError, match="not a readable image archive"):
        read_image_tar(tmp_path / "y.tar")
