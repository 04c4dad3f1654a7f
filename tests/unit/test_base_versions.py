"""`base bootstrap` refuses what no Debian or Ubuntu release gives, before touching any engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard import base
from dockyard.errors import EnvironmentProblem, UsageError


def test_bootstrap_refuses_a_python_no_debian_suite_ships() -> None:
    with pytest.raises(UsageError) as caught:
        base.bootstrap(None, "3.9")  # type: ignore[arg-type]  # fails before touching the engine
    assert "3.9" in caught.value.problem and "3.11" in caught.value.fix
    cli = subprocess.run([sys.executable, "-m", "dockyard", "base", "bootstrap", "--python", "3.9"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
    assert cli.returncode == 1 and "ships Python 3.9" in cli.stderr and "3.10 (Ubuntu jammy)" in cli.stderr


def test_every_supported_python_has_a_release_and_3_10_3_12_come_from_ubuntu() -> None:
    assert base.supported_pythons() == ["3.10", "3.11", "3.12", "3.13"]
    jammy, noble = base.suite_for("3.10"), base.suite_for("3.12")
    assert jammy is not None and (jammy.distro, jammy.suite) == ("ubuntu", "jammy")
    assert noble is not None and (noble.distro, noble.suite) == ("ubuntu", "noble")
    assert "universe" in jammy.components, "python3-venv is in universe on Ubuntu"
    assert base.check_python("3.11").label == "Debian bookworm"
    assert base.suite_for("3.9") is None


def test_ubuntu_image_sources_keep_updates_and_security_on_the_same_mirror() -> None:
    jammy = base.suite_for("3.10")
    assert jammy is not None
    text = base.sources_list(jammy, "http://mirror.example/ubuntu")
    assert text.splitlines() == [
        "deb http://mirror.example/ubuntu jammy main universe",
        "deb http://mirror.example/ubuntu jammy-updates main universe",
        "deb http://mirror.example/ubuntu jammy-security main universe",
    ]



def test_debian_image_sources_get_updates_and_security_from_debian_security() -> None:
    """Debian's release pocket changes only at point releases: security fixes come from
    debian-security, a mirror of its own (overridable like the main one)."""
    bookworm = base.suite_for("3.11")
    assert bookworm is not None
    assert base.sources_list(bookworm, "http://mirror.example/debian", env={}).splitlines() == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
    ]
    local = base.sources_list(bookworm, "http://m/debian", env={"DOCKYARD_DEBIAN_SECURITY_MIRROR": "http://m/sec/"})
    assert local.splitlines()[-1] == "deb http://m/sec bookworm-security main"


def test_a_suite_debootstrap_does_not_know_uses_the_family_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "gutsy").write_text("# ubuntu\n")
    (scripts / "jammy").symlink_to("gutsy")
    monkeypatch.setenv("DEBOOTSTRAP_DIR", str(tmp_path))
    noble, jammy = base.suite_for("3.12"), base.suite_for("3.10")
    assert noble is not None and jammy is not None
    assert base._script_args(noble) == [str(scripts / "gutsy")]
    assert base._script_args(jammy) == []
    (scripts / "gutsy").unlink()
    with pytest.raises(EnvironmentProblem) as caught:
        base._script_args(noble)
    assert "noble" in caught.value.problem and "newer debootstrap" in (caught.value.fix or "")


def _key(home: Path, uid: str) -> str:
    subprocess.run(["gpg", "--batch", "--homedir", str(home), "--passphrase", "", "--quick-gen-key", uid,
                    "ed25519", "sign", "never"], check=True, capture_output=True)
    out = subprocess.run(["gpg", "--batch", "--homedir", str(home), "--with-colons", "--list-keys", uid],
                         check=True, capture_output=True, text=True).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def _keyring_deb(tmp_path: Path, home: Path) -> Path:
    """A keyring package shaped like ubuntu-keyring, holding every key in ``home``."""
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text("Package: test-keyring\nVersion: 1\nArchitecture: all\n"
                                        "Maintainer: t <t@example.invalid>\nDescription: test\n")
    keyrings = pkg / "usr/share/keyrings"
    keyrings.mkdir(parents=True)
    keys = subprocess.run(["gpg", "--batch", "--homedir", str(home), "--export"], check=True, capture_output=True).stdout
    (keyrings / "ubuntu-archive-keyring.gpg").write_bytes(keys)
    deb = tmp_path / "test-keyring.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(pkg), str(deb)], check=True, capture_output=True)
    return deb


@pytest.mark.skipif(shutil.which("gpg") is None or shutil.which("dpkg-deb") is None, reason="needs gpg and dpkg-deb")
def test_only_the_pinned_key_is_taken_from_a_keyring_package(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    archive, intruder = _key(home, "Archive <archive@example.invalid>"), _key(home, "Intruder <x@example.invalid>")
    deb = _keyring_deb(tmp_path, home)
    work = tmp_path / "work"
    work.mkdir()
    kept = base.pinned_keys(deb, "usr/share/keyrings/ubuntu-archive-keyring.gpg", (archive,), work)
    listed = subprocess.run(["gpg", "--batch", "--homedir", str(home), "--show-keys", "--with-colons", str(kept)],
                            check=True, capture_output=True, text=True).stdout
    fingerprints = [line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")]
    assert fingerprints == [archive] and intruder not in listed
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(EnvironmentProblem) as caught:
        base.pinned_keys(deb, "usr/share/keyrings/ubuntu-archive-keyring.gpg", ("0" * 40,), again)
    assert "pinned fingerprint" in caught.value.problem


def test_an_operator_keyring_wins_and_a_missing_one_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jammy = base.suite_for("3.10")
    assert jammy is not None
    mine = tmp_path / "mine.gpg"
    mine.write_bytes(b"x")
    monkeypatch.setenv("DOCKYARD_UBUNTU_KEYRING", str(mine))
    assert base.ubuntu_keyring(jammy, "http://unused.invalid/ubuntu", tmp_path) == mine
    monkeypatch.setenv("DOCKYARD_UBUNTU_KEYRING", str(tmp_path / "absent.gpg"))
    with pytest.raises(UsageError) as caught:
        base.ubuntu_keyring(jammy, "http://unused.invalid/ubuntu", tmp_path)
    assert "absent.gpg" in caught.value.problem
