"""Every distribution import_names.json installs exists on the package index, with a release for
dockyard's Python on Linux: an inferred requirement must never break a build because the table
names something the index does not have. Resolved with the real `uv` against the real index
(through the host's proxy, as builds do); no engine needed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dockyard.base import find_uv
from dockyard.detect.thirdparty import import_table


@pytest.mark.parametrize("python", ["3.11", "3.13"])
def test_every_distribution_in_the_import_table_resolves_on_the_index(tmp_path: Path, python: str) -> None:
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed on this host")
    table = import_table()
    names = sorted({*table["distributions"].values(), *table["keras_backends"].values()})
    (tmp_path / "all.in").write_text("\n".join(names) + "\n")
    proc = subprocess.run([uv, "pip", "compile", "--no-deps", "--no-header", "--python-version", python,
                           "--python-platform", "x86_64-unknown-linux-gnu", str(tmp_path / "all.in")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = {line.split("==", 1)[0].lower() for line in proc.stdout.splitlines() if "==" in line}
    assert resolved == set(names)
