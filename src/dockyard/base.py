"""`dockyard base bootstrap`: Python base images built from Debian or Ubuntu packages.

For hosts that cannot reach an image registry (air-gapped sites, this project's CI):
``debootstrap --variant=minbase`` a Debian or Ubuntu release whose ``python3`` is the wanted
version (compat/bases.json), trim what a runtime never needs (apt lists and caches, docs, man
pages, locales), then ``docker import`` the tree. The image is labelled so the resolver prefers
it over ``python:X-slim``, which would need a pull. Ubuntu releases are verified against the
archive key whose fingerprint bases.json pins (see :func:`ubuntu_keyring`, docs/bases.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .compat.bases import Suite, bases_data, releases_text, suite_for
from .compat.bases import supported_pythons as supported_pythons
from .engine import Engine, Printer
from .errors import EnvironmentProblem, UsageError
from .runtime import contract

BASE_LABEL = contract.LABEL_BASE
PYTHON_LABEL = contract.LABEL_BASE_PYTHON


@dataclass(frozen=True)
class BaseImage:
    ref: str
    python: str
    suite: str
    image_id: str
    size_bytes: int


def check_python(python: str) -> Suite:
    """The release that ships ``python`` as python3; refuse others (before any engine work)."""
    suite = suite_for(python)
    if suite is None:
        raise UsageError(
            f"no Debian or Ubuntu release dockyard knows ships Python {python} as python3",
            f"choose one of: {releases_text()} (e.g. --python 3.11)",
        )
    return suite


def base_ref(python: str) -> str:
    return str(bases_data()["image"]).format(python=python)


def bootstrap(
    engine: Engine,
    python: str = "3.11",
    *,
    mirror: str | None = None,
    tag: str | None = None,
    on_line: Printer | None = None,
) -> BaseImage:
    """Build and import a slim Python base image (and its -build variant) from the Debian or
    Ubuntu release whose python3 is ``python``."""
    release = check_python(python)
    data = bases_data()
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem("debootstrap is not installed", "apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise EnvironmentProblem("base bootstrap needs root (debootstrap creates device nodes and chroots)", "run it with sudo")
    suite = release.suite
    mirror = (mirror or os.environ.get(release.mirror_env) or release.mirror).rstrip("/")
    ref = tag or base_ref(python)
    packages = ",".join(data["packages"])
    with tempfile.TemporaryDirectory(prefix="dockyard-base-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        build_only = ",".join(data["build_packages"])
        argv = ["debootstrap", "--variant=minbase", f"--components={','.join(release.components)}",
                *_keyring_args(release, mirror, Path(tmp), on_line),
                f"--include={packages},{build_only}", suite, str(root), mirror, *_script_args(release)]
        _run_streaming(argv, on_line, release)
        if release.pockets:
            _upgrade_from_pockets(root, release, mirror, on_line)
        _slim(root, data["slim_remove"])
        (root / "usr/bin/python").unlink(missing_ok=True)
        (root / "usr/bin/python").symlink_to("python3")
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        # One debootstrap, two images: the -build variant keeps binutils (to strip shared
        # libraries in builder stages); the slim runtime variant purges it.
        build_ref = ref.replace("-slim", "-build") if ref.endswith("-slim") else ref + "-build"
        uv = _ship_uv(root)
        engine.import_tar(["tar", "--numeric-owner", "-C", str(root), "-c", "."], build_ref,
                          _changes(python, suite, created, "build"))
        # dpkg --purge skips (exit 0, a warning) the names a release does not have installed.
        subprocess.run(["chroot", str(root), "dpkg", "--purge", *data["build_packages_purge"]],
                       check=True, capture_output=True)
        if uv:
            uv.unlink()
        _slim(root, data["slim_remove"])
        engine.import_tar(["tar", "--numeric-owner", "-C", str(root), "-c", "."], ref,
                          _changes(python, suite, created, "slim"))
    info = engine.inspect(ref)
    size = info.get("Size", 0)
    return BaseImage(ref, python, suite, str(info["Id"]), size if isinstance(size, int) else 0)


def sources_list(release: Suite, mirror: str, env: Mapping[str, str] | None = None) -> str:
    """The image's apt sources: every pocket on the mirror the base was made from (Debian's
    -security on its own mirror), so a later `apt-get install` (apt.txt, a framework's system
    libraries) finds packages that match, security fixes included."""
    env = os.environ if env is None else env
    security = (env.get(release.security_mirror_env or "") or release.security_mirror or mirror).rstrip("/")
    return "".join(f"deb {security if pocket.endswith('-security') else mirror} {pocket} {' '.join(release.components)}\n"
                   for pocket in release.pockets)


def _upgrade_from_pockets(root: Path, release: Suite, mirror: str, on_line: Printer | None) -> None:
    """A release pocket does not carry security fixes (Ubuntu's never changes after release day,
    Debian's only at point releases): point apt at -updates and -security too, and upgrade once,
    so the base starts with today's security fixes."""
    (root / "etc/apt/sources.list").write_text(sources_list(release, mirror))
    if on_line:
        on_line(f"upgrading {release.label} from {', '.join(release.pockets)}")
    # The host's environment (a proxy, if any) plus what a non-interactive upgrade needs.
    env = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
    for step in (["apt-get", "update", "-q"],
                 ["apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", "dist-upgrade"],
                 ["apt-get", "clean"]):
        _run_streaming(["chroot", str(root), *step], on_line, release, env=env)


def _script_args(release: Suite) -> list[str]:
    """debootstrap's own script for the suite, else the family's (bookworm's debootstrap
    predates noble; every Ubuntu script there is a link to gutsy)."""
    scripts = Path(os.environ.get("DEBOOTSTRAP_DIR", "/usr/share/debootstrap")) / "scripts"
    if (scripts / release.suite).exists() or not release.script:
        return []
    if not (scripts / release.script).exists():
        raise EnvironmentProblem(f"this debootstrap knows neither {release.suite} nor {release.script} "
                                 f"({scripts})", "install a newer debootstrap")
    return [str(scripts / release.script)]


def _keyring_args(release: Suite, mirror: str, tmp: Path, on_line: Printer | None) -> list[str]:
    if release.keyring is None:
        return []  # Debian: debootstrap's default, debian-archive-keyring, which the host's apt verified
    return [f"--keyring={ubuntu_keyring(release, mirror, tmp, on_line)}"]


def ubuntu_keyring(release: Suite, mirror: str, tmp: Path, on_line: Printer | None = None) -> Path:
    """A keyring that verifies the release's Release file, never --no-check-gpg.

    In order: the file ``$DOCKYARD_UBUNTU_KEYRING`` names (the operator's choice); the host's
    ubuntu-archive-keyring.gpg (installed by the host's package manager); else the archive's own
    ubuntu-keyring package from the mirror, from which only the keys whose fingerprints
    bases.json pins are taken. The pinned fingerprint is the trust anchor, so neither the mirror
    nor the transport (HTTP, or HTTPS through an intercepting proxy) has to be trusted."""
    spec = release.keyring or {}
    named = os.environ.get(str(spec.get("env", "")))
    if named:
        if not Path(named).is_file():
            raise UsageError(f"{spec['env']}={named} is not a file", "point it at an Ubuntu archive keyring (.gpg)")
        return Path(named)
    if Path(spec["host"]).is_file():
        return Path(spec["host"])
    if shutil.which("gpg") is None or shutil.which("dpkg-deb") is None:
        raise EnvironmentProblem(
            f"verifying {release.label} needs the Ubuntu archive keyring, and gpg and dpkg-deb to check one",
            f"apt-get install -y gnupg dpkg (or set {spec['env']} to an ubuntu-archive-keyring.gpg you trust)")
    url = f"{mirror}/{spec['deb']}"
    deb = tmp / "ubuntu-keyring.deb"
    if on_line:
        on_line(f"fetching {url} (only the key with the pinned fingerprint is kept)")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - the mirror is http(s)
            deb.write_bytes(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        raise EnvironmentProblem(f"cannot fetch the Ubuntu archive keyring from {url}: {exc}",
                                 f"check the mirror (--mirror, {release.mirror_env}), or set {spec['env']} "
                                 "to an ubuntu-archive-keyring.gpg you trust") from None
    return pinned_keys(deb, spec["member"], tuple(spec["fingerprints"]), tmp)


def pinned_keys(deb: Path, member: str, fingerprints: tuple[str, ...], tmp: Path) -> Path:
    """Only the keys with these fingerprints, out of the keyring inside a keyring package.

    gpg --import checks every self-signature (a subkey added without the owner's binding
    signature is dropped); the export then carries the pinned keys and nothing else."""
    unpacked, home = tmp / "keyring-deb", tmp / "gnupg"
    unpacked.mkdir()
    home.mkdir(mode=0o700)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True, capture_output=True)
    source = unpacked / member
    if not source.is_file():
        raise EnvironmentProblem(f"{deb.name} has no {member}", "the mirror serves an unexpected ubuntu-keyring package")
    gpg = ["gpg", "--batch", "--quiet", "--homedir", str(home)]
    subprocess.run([*gpg, "--import", str(source)], check=True, capture_output=True)
    out = tmp / "ubuntu-archive-pinned.gpg"
    exported = subprocess.run([*gpg, "--export", *fingerprints], check=True, capture_output=True).stdout
    out.write_bytes(exported)
    listed = subprocess.run([*gpg, "--show-keys", "--with-colons", str(out)], capture_output=True, text=True).stdout
    found = {line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:")}
    if not exported or not set(fingerprints) <= found:
        raise EnvironmentProblem(
            f"the Ubuntu keyring package holds no key with the pinned fingerprint {', '.join(fingerprints)}",
            "the mirror may be compromised or out of date: use another mirror, or set DOCKYARD_UBUNTU_KEYRING")
    return out


def _changes(python: str, suite: str, created: str, variant: str) -> list[str]:
    return [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
            f"LABEL {BASE_LABEL}=true {PYTHON_LABEL}={python} io.dockyard.base.suite={suite} "
            f"org.opencontainers.image.created={created} "
            f"org.opencontainers.image.description=debootstrap-{suite}-minbase-python{python}-{variant}",
        ] if variant == "slim" else [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
            f"LABEL io.dockyard.base.variant=build {PYTHON_LABEL}={python} io.dockyard.base.suite={suite}",
        ]


def find_uv() -> str | None:
    """The uv binary dockyard installed with (the `uv` package), else one on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def _ship_uv(root: Path) -> Path | None:
    """Copy this host's uv into the build variant, so builder stages need no network to get it."""
    host_uv = find_uv()
    if host_uv is None:
        return None
    dest = root / "usr/local/bin/uv"
    shutil.copy2(host_uv, dest)
    dest.chmod(0o755)
    return dest


def _run_streaming(argv: list[str], on_line: Printer | None, release: Suite | None = None,
                   env: dict[str, str] | None = None) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        if on_line:
            on_line(line.rstrip())
    if proc.wait() != 0:
        what = "debootstrap" if argv[0] == "debootstrap" else " ".join(argv[2:4])
        env_name = release.mirror_env if release else "DOCKYARD_DEBIAN_MIRROR"
        distro = release.distro_name if release else "Debian"
        raise EnvironmentProblem(
            f"{what} failed (exit {proc.returncode}): {tail[-1] if tail else ''}",
            f"check that the {distro} mirror is reachable (set --mirror or {env_name})",
            details="\n".join(tail),
        )


def _slim(root: Path, patterns: list[str]) -> None:
    """Delete runtime-useless trees, keeping copyright files for licence compliance."""
    for pattern in patterns:
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                keep = path.name == "doc"
                for child in path.iterdir():
                    if keep and child.is_dir():
                        for f in child.iterdir():
                            if f.name != "copyright":
                                _remove(f)
                    else:
                        _remove(child)
            else:
                _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def local_base_refs(engine: Engine) -> dict[str, str]:
    """Every local image made by :func:`bootstrap` (slim and -build variants), ref -> Python
    version, in two docker calls: list the labelled ids, then inspect them all at once."""
    # By reference, not label: every image built FROM a base inherits its labels.
    repo = base_ref("X").split(":")[0]
    ids = engine.docker("images", "--quiet", "--no-trunc", "--filter", f"reference={repo}").stdout.split()
    if not ids:
        return {}
    found: dict[str, str] = {}
    for info in json.loads(engine.docker("image", "inspect", *sorted(set(ids))).stdout):
        python = (info.get("Config") or {}).get("Labels", {}).get(PYTHON_LABEL)
        for ref in info.get("RepoTags") or []:
            found[ref] = python
    return found


def local_bases(engine: Engine) -> dict[str, str]:
    """Python version -> the local slim runtime base for it."""
    return {py: ref for ref, py in sorted(local_base_refs(engine).items()) if ref == base_ref(py)}
