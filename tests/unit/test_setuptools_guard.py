"""The install step's setuptools guard (render/dockerfile.py _setuptools_guard): on for every
install that is not hash-locked, off when the project itself asks for a setuptools without
pkg_resources (>= 81)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.planning import make_plan
from dockyard.render.dockerfile import render_dockerfile
from projectfiles import write


@pytest.mark.parametrize(("requirements", "guarded"), [
    ("fs==2.4.16\n", True),
    ("fs==2.4.16\nsetuptools\n", True),
    ("setuptools==80.9.0\n", True),
    ("setuptools<82\n", True),  # admits 80.x: the guard may pick it
    ("setuptools>=81\n", False),
    ("setuptools==84.2.1\n", False),
])
def test_the_project_can_ask_for_a_setuptools_without_pkg_resources(
        requirements: str, guarded: bool, tmp_path: Path) -> None:
    proj = write(tmp_path / "p", {"requirements.txt": requirements,
                                  "dockyard.yaml": "name: p\npython: '3.11'\n"
                                                   "dependencies: {file: requirements.txt, kind: requirements}\n"})
    plan = make_plan(proj)
    assert plan.setuptools_guard is guarded
    assert ("installing setuptools<81" in render_dockerfile(plan)) is guarded
