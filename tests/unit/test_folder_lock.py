"""fsio.folder_lock: one build of a project folder at a time, across processes (PROJECT/.dockyard's
build inputs and staged weights belong to the build that wrote them until it ends)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dockyard.fsio import folder_lock

HOLDER = """
import sys, time
from pathlib import Path
from dockyard.fsio import folder_lock
with folder_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_process_waits_and_is_told_and_nesting_in_one_process_passes(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "1.5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waited: list[float] = []
        start = time.monotonic()
        with folder_lock(tmp_path, on_wait=lambda: waited.append(time.monotonic() - start)):
            held_at = time.monotonic() - start
            assert held_at >= 1.0, "the lock was taken while the other process still held it (1.5 s)"
            with folder_lock(tmp_path, on_wait=lambda: waited.append(-1.0)):  # nested: no wait, no deadlock
                pass
        assert len(waited) == 1 and waited[0] < 0.5
    finally:
        holder.kill()
        holder.wait()
    assert list(tmp_path.iterdir()) == [], "no lock file is left in the project folder"
    with folder_lock(tmp_path, on_wait=lambda: waited.append(-2.0)):  # released: taken at once
        pass
    assert waited == [waited[0]]
