"""`dockyard base bootstrap`: Python base images built from Debian packages.

For hosts that cannot reach an image registry (air-gapped sites, this project's CI):
``debootstrap --variant=minbase`` a Debian suite whose ``python3`` is the wanted version,
trim what a runtime never needs (apt lists and caches, docs, man pages, locales), then
``docker import`` the tree. The image is labelled so the resolver prefers it over
``python:X-slim``, which would need a pull.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

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


def _data() -> dict[str, object]:
    text = resources.files("dockyard.compat").joinpath("bases.json").read_text()
    return dict(json.loads(text))


def check_python(python: str) -> None:
    """Refuse a version no Debian suite ships as python3 (before any engine work)."""
    if python not in supported_pythons():
        raise UsageError(
            f"no Debian suite ships Python {python} as python3",
            f"choose one of: {', '.join(supported_pythons())} (e.g. --python 3.11)",
        )


def supported_pythons() -> list[str]:
    debian = _data()["debian"]
    assert isinstance(debian, dict)
    return sorted(debian)


def base_ref(python: str) -> str:
    return str(_data()["image"]).format(python=python)


def bootstrap(
    engine: Engine,
    python: str = "3.11",
    *,
    mirror: str | None = None,
    tag: str | None = None,
    on_line: Printer | None = None,
) -> BaseImage:
    """Build and import a slim Python base image from Debian packages."""
    check_python(python)
    data = _data()
    debian = data["debian"]
    assert isinstance(debian, dict)
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem("debootstrap is not installed", "apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise EnvironmentProblem("base bootstrap needs root (debootstrap creates device nodes and chroots)", "run it with sudo")
    suite = debian[python]["suite"]
    mirror = mirror or os.environ.get("DOCKYARD_DEBIAN_MIRROR") or debian[python]["mirror"]
    ref = tag or base_ref(python)
    packages = ",".join(data["packages"])  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="dockyard-base-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        build_only = ",".join(data["build_packages"])  # type: ignore[arg-type]
        argv = ["debootstrap", "--variant=minbase", f"--include={packages},{build_only}", suite, str(root), mirror]
        _run_streaming(argv, on_line)
        _slim(root, data["slim_remove"])  # type: ignore[arg-type]
        (root / "usr/bin/python").unlink(missing_ok=True)
        (root / "usr/bin/python").symlink_to("python3")
        created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        # One debootstrap, two images: the -build variant keeps binutils (to strip shared
        # libraries in builder stages); the slim runtime variant purges it.
        build_ref = ref.replace("-slim", "-build") if ref.endswith("-slim") else ref + "-build"
        uv = _ship_uv(root)
        engine.import_tar(["tar", "--numeric-owner", "-C", str(root), "-c", "."], build_ref,
                          _changes(python, suite, created, "build"))
        subprocess.run(["chroot", str(root), "dpkg", "--purge", *data["build_packages_purge"]],  # type: ignore[misc]
                       check=True, capture_output=True)
        if uv:
            uv.unlink()
        _slim(root, data["slim_remove"])  # type: ignore[arg-type]
        engine.import_tar(["tar", "--numeric-owner", "-C", str(root), "-c", "."], ref,
                          _changes(python, suite, created, "slim"))
    info = engine.inspect(ref)
    size = info.get("Size", 0)
    return BaseImage(ref, python, suite, str(info["Id"]), size if isinstance(size, int) else 0)


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


def _run_streaming(argv: list[str], on_line: Printer | None) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        if on_line:
            on_line(line.rstrip())
    if proc.wait() != 0:
        raise EnvironmentProblem(
            f"debootstrap failed (exit {proc.returncode}): {tail[-1] if tail else ''}",
            "check that the Debian mirror is reachable (set --mirror or DOCKYARD_DEBIAN_MIRROR)",
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
