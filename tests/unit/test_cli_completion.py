"""Shell completion is on: `dockyard --install-completion` exists and the completer answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The console script itself: completion is keyed on the program's name (_DOCKYARD_COMPLETE).
DOCKYARD = [str(Path(sys.executable).parent / "dockyard")]


def complete(words: str) -> list[str]:
    env = {**os.environ, "_DOCKYARD_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    env.pop("CI", None)
    proc = subprocess.run([*DOCKYARD], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_completion_is_installable_and_names_verbs_and_subverbs() -> None:
    helptext = subprocess.run([*DOCKYARD, "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--install-completion" in helptext and "--show-completion" in helptext
    assert {"ps", "plan", "predict", "push"} <= set(complete("dockyard p"))
    assert complete("dockyard models pl") == ["plot"]
    assert "--replace" in complete("dockyard serve --re")
