"""Image audit and SBOM against a real image built on the local base (never pulled)."""

from __future__ import annotations

import email.parser
import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator

import pytest

from dockyard.scan import image_sbom, scan_image

pytestmark = pytest.mark.docker

DOCKER = "/usr/bin/docker"
BASE = "dockyard/python:3.11-slim"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZQ==\n-----END OPENSSH PRIVATE KEY-----\n"
METADATA = "Metadata-Version: 2.1\nName: fakepkg\nVersion: 0.0.1\nLicense: MIT\n\n"
SITE = "/usr/local/lib/python3.11/site-packages/fakepkg-0.0.1.dist-info"
DOCKERFILE = f"""FROM {BASE}
COPY credentials /app/.aws/credentials
RUN rm /app/.aws/credentials
COPY id_rsa /home/app/.ssh/id_rsa
COPY METADATA {SITE}/METADATA
RUN cp /bin/true /usr/local/bin/suid-demo && chmod 4755 /usr/local/bin/suid-demo
"""


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, env=env, timeout=600)


@pytest.fixture(scope="module")
def engine() -> None:
    try:
        ok = _docker("info", check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail("no Docker Engine reachable under CI=true")
        pytest.skip("no Docker Engine")
    if _docker("image", "inspect", BASE, check=False).returncode != 0:
        pytest.skip(f"local base image {BASE} missing (dockyard base bootstrap creates it)")


@pytest.fixture(scope="module")
def test_image(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    context = tmp_path_factory.mktemp("ctx")
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "credentials").write_text("[default]\naws_secret_access_key = deleted\n")
    (context / "id_rsa").write_text(KEY)
    (context / "METADATA").write_text(METADATA)
    tag = f"dockyard-scan-test:{uuid.uuid4().hex[:12]}"
    build = _docker("build", "--label", "io.dockyard.test=1", "-t", tag, str(context), check=False)
    assert build.returncode == 0, build.stderr[-2000:]
    try:
        yield tag
    finally:
        _docker("image", "rm", "-f", tag, check=False)


def _dist_info_inventory(tag: str) -> set[tuple[str, str]]:
    """Independent inventory: export a created (never started) container's filesystem."""
    cid = _docker("create", "--label", "io.dockyard.test=1", tag).stdout.strip()
    try:
        exported = subprocess.run([DOCKER, "export", cid], capture_output=True, check=True, timeout=600).stdout
    finally:
        _docker("rm", "-f", cid, check=False)
    found = set()
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".dist-info/METADATA"):
                fh = tar.extractfile(member)
                assert fh is not None
                msg = email.parser.HeaderParser().parsestr(fh.read().decode("utf-8", "replace"))
                found.add((msg["Name"].lower().replace("_", "-"), msg["Version"]))
    return found


def test_audit_finds_planted_problems_but_not_the_deleted_secret(test_image: str) -> None:
    base = scan_image(BASE, offline=True)
    report = scan_image(test_image, offline=True)
    new = {(f.rule_id, f.location) for f in report.findings} - {(f.rule_id, f.location) for f in base.findings}
    assert new == {("image/setuid", "/usr/local/bin/suid-demo"), ("image/secret-file", "/home/app/.ssh/id_rsa")}
    fs = report.extra("filesystem")
    assert "/app/.aws/credentials" not in fs.files
    assert ("image/root-user", "image config") in {(f.rule_id, f.location) for f in report.findings}


def test_cyclonedx_sbom_equals_dist_info_inventory_and_validates(test_image: str) -> None:
    report = scan_image(test_image, offline=True)
    sbom = json.loads(image_sbom(report, "cyclonedx"))  # raises if the 1.6 schema rejects it
    pypi = {(c["name"].lower().replace("_", "-"), c["version"]) for c in sbom["components"]
            if c["purl"].startswith("pkg:pypi/")}
    assert ("fakepkg", "0.0.1") in pypi
    assert pypi == _dist_info_inventory(test_image)
