"""repo2docker's ``apt.txt``: Debian packages the project needs, one per line (# comments).

They join ``system_packages`` and are installed in the runtime base's own apt layer, before any
Python dependency, so every stage built on it (training, serving, the bytecode warm-up) has them.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._files import Reason, read_text, rel

APT_FILE = "apt.txt"
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[\w.:~+-]+)?")


def read_apt(project_dir: Path) -> tuple[tuple[str, ...], tuple[str, ...], Reason | None]:
    """(packages, warnings, reason) from apt.txt; empty when there is none."""
    path = project_dir / APT_FILE
    if not path.is_file():
        return (), (), None
    packages, warnings = [], []
    for number, line in enumerate(read_text(path, project_dir).splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        for word in text.split():
            if _PACKAGE.fullmatch(word):
                packages.append(word)
            else:
                warnings.append(f"{APT_FILE}:{number}: {word!r} is not a Debian package name; left out")
    name = rel(path, project_dir)
    reason = Reason(f"system packages: {' '.join(packages)}", f"{name} (installed in their own apt layer)") if packages else None
    return tuple(dict.fromkeys(packages)), tuple(warnings), reason
