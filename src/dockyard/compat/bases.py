"""Which Debian or Ubuntu release gives which Python as python3 (bases.json), for `base bootstrap`,
the resolver's offline notes and the build's auto-bootstrap (pure: reads packaged data only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Suite:
    python: str
    distro: str  # "debian" | "ubuntu"
    distro_name: str  # "Debian" | "Ubuntu"
    suite: str  # "bookworm", "jammy", ...
    mirror: str  # the default mirror (an environment variable or --mirror overrides it)
    mirror_env: str
    components: tuple[str, ...]
    pockets: tuple[str, ...]  # apt sources the image keeps, upgraded from once; empty: the one debootstrap wrote
    script: str | None  # debootstrap script to use when debootstrap has none for the suite
    keyring: dict[str, Any] | None  # how to verify the release when the host has no keyring
    security_mirror: str | None = None  # where the -security pocket lives when not on the mirror (Debian)
    security_mirror_env: str | None = None

    @property
    def label(self) -> str:
        """``Ubuntu jammy``: for messages."""
        return f"{self.distro_name} {self.suite}"


@lru_cache(maxsize=1)
def bases_data() -> dict[str, Any]:
    return dict(json.loads(resources.files("dockyard.compat").joinpath("bases.json").read_text()))


def supported_pythons() -> list[str]:
    """Pythons `base bootstrap` can make, oldest first."""
    return sorted(bases_data()["suites"], key=lambda v: tuple(int(p) for p in v.split(".")))


def suite_for(python: str) -> Suite | None:
    data = bases_data()
    entry = data["suites"].get(python)
    if entry is None:
        return None
    distro = data["distros"][entry["distro"]]
    return Suite(
        python=python,
        distro=entry["distro"],
        distro_name=distro["name"],
        suite=entry["suite"],
        mirror=distro["mirror"],
        mirror_env=distro["mirror_env"],
        components=tuple(distro["components"]),
        pockets=tuple(p.format(suite=entry["suite"]) for p in distro["pockets"]),
        script=distro.get("script"),
        keyring=distro.get("keyring"),
        security_mirror=distro.get("security_mirror"),
        security_mirror_env=distro.get("security_mirror_env"),
    )


def releases_text() -> str:
    """``3.10 (Ubuntu jammy), 3.11 (Debian bookworm), ...``: what bootstrap can make, for messages."""
    return ", ".join(f"{py} ({suite.label})" for py in supported_pythons() if (suite := suite_for(py)))
