"""`dockyard doctor`: check the host and say how to fix each problem."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

from .engine import Engine, detect_buildkit
from .errors import DockyardError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def run_checks(min_free_gb: float = 10.0) -> list[Check]:
    checks: list[Check] = []
    support = detect_buildkit()
    engine: Engine | None = None
    try:
        engine = Engine.connect()
        checks.append(Check("engine", True, f"Docker Engine {engine.server_version()} via {engine.binary}"))
    except DockyardError as exc:
        checks.append(Check("engine", False, exc.problem, exc.fix))
    checks.append(
        Check("buildkit", support.mode != "none", support.why,
              "" if support.mode != "none" else "install docker-buildx, or use Debian's docker.io client (/usr/bin/docker); set DOCKYARD_DOCKER")
    )
    from .project import host_ca_bundle

    ca = host_ca_bundle()
    proxies = [v for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy") if os.environ.get(v)]
    detail = f"CA bundle {ca} is passed to install steps as a BuildKit secret" if ca else "no custom CA bundle configured"
    if proxies:
        detail += f"; proxy variables set: {', '.join(proxies)}"
    checks.append(Check("ca/proxy", True, detail, "" if ca else "behind a TLS-intercepting proxy, set SSL_CERT_FILE", False))
    if engine:
        info = json.loads(engine.docker("info", "--format", "{{json .}}").stdout)
        root = info.get("DockerRootDir", "/var/lib/docker")
        free = shutil.disk_usage(root if os.path.exists(root) else "/").free / 1e9
        checks.append(Check("disk", free >= min_free_gb, f"{free:.1f} GB free under {root}",
                            f"free space: `docker system prune` (needs >= {min_free_gb:g} GB)"))
        runtimes = sorted((info.get("Runtimes") or {}).keys())
        has_gpu = "nvidia" in runtimes
        checks.append(Check("gpu", has_gpu, f"runtimes: {', '.join(runtimes)}" + ("" if has_gpu else " (no NVIDIA runtime: GPU targets cannot run here)"),
                            "" if has_gpu else "install nvidia-container-toolkit for GPU runs", required=False))
        from .base import local_bases

        bases = local_bases(engine)
        checks.append(Check("base images", bool(bases), ", ".join(sorted(bases.values())) or "no local base image",
                            "" if bases else "offline? run `dockyard base bootstrap --python 3.11`", required=False))
    return checks
