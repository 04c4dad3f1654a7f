"""repo2docker's ``postBuild``: a script run once at build time, after the dependencies.

dockyard runs it as the image user (uid 10001) in the project folder, in a stage of its own;
what it writes inside the project folder is kept in the images. A script that needs root
(package managers, sudo, writing system paths) is refused unless dockyard.yaml says
``post_build_as_root: true``: system packages belong in apt.txt, which needs no script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ._files import Reason, read_text, rel

POST_BUILD_FILE = "postBuild"
# What a script cannot do as an unprivileged user.
_NEEDS_ROOT = re.compile(
    r"(^|[\s;&|(`])(sudo|su|apt-get|apt|aptitude|dpkg|yum|dnf|apk|useradd|groupadd|chown|systemctl)\s"
    r"|>>?\s*/(etc|usr|opt|var|root|bin|sbin|lib)/"
)


@dataclass(frozen=True)
class PostBuild:
    file: str
    needs_root: str | None  # the first line that needs root ("postBuild:3: apt-get install -y ffmpeg")
    reason: Reason


def read_post_build(project_dir: Path) -> PostBuild | None:
    path = project_dir / POST_BUILD_FILE
    if not path.is_file():
        return None
    name = rel(path, project_dir)
    needs_root = None
    for number, line in enumerate(read_text(path, project_dir).splitlines(), start=1):
        code = line.split("#", 1)[0] if not line.startswith("#!") else ""
        if _NEEDS_ROOT.search(code):
            needs_root = f"{name}:{number}: {line.strip()}"
            break
    return PostBuild(name, needs_root, Reason(f"post-build: {name}", "repo2docker's postBuild, run once at build time "
                                                                        "in the project folder as the image user"))
