"""A project that is a package is installed itself (repo2docker runs `pip install .`; issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import detect
from dockyard.detect.setuptools import project_package
from dockyard.planning import make_plan
from dockyard.render import render_dockerfile
from projectfiles import write


SETUP_PY = "from setuptools import setup, find_packages\nsetup(name='mypackage', packages=find_packages())\n"


@pytest.mark.parametrize(("files", "package"), [
    ({"setup.py": SETUP_PY}, "setup.py"),
    ({"pyproject.toml": "[project]\nname='x'\nversion='1'\n[build-system]\nrequires=['hatchling']\n"
                        "build-backend='hatchling.build'\n"}, "pyproject.toml"),
    ({"pyproject.toml": "[tool.poetry]\nname='x'\n[build-system]\nrequires=['poetry-core']\n"
                        "build-backend='poetry.core.masonry.api'\n"}, "pyproject.toml"),
    # only a list of dependencies: uv's "virtual project", nothing to install
    ({"pyproject.toml": "[project]\nname='x'\nversion='1'\ndependencies=['numpy']\n"}, None),
    ({"pyproject.toml": "[tool.poetry]\nname='x'\npackage-mode=false\n[build-system]\nrequires=['poetry-core']\n"},
     None),
    ({"pyproject.toml": "[tool.uv]\npackage=false\n", "setup.py": SETUP_PY}, None),
    ({"requirements.txt": "numpy\n"}, None),
])
def test_which_projects_are_packages(tmp_path: Path, files: dict[str, str], package: str | None) -> None:
    write(tmp_path, files)
    assert detect(tmp_path).package_file == package
    assert (project_package(tmp_path) is not None) == (package is not None)


def test_a_package_is_installed_editable_after_the_dependencies_and_copied_after_the_code(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": SETUP_PY, "mypackage/__init__.py": "", "notebooks/use.ipynb": "{}",
                     "dockyard.yaml": "name: pkg\npython: '3.11'\n"})
    plan = make_plan(tmp_path)
    assert plan.install_project == "setup.py"
    choice = next(c for c in plan.choices if c.what == "project")
    assert choice.value == "uv pip install --no-deps -e /app (from setup.py)" and "editable" in choice.why
    text = render_dockerfile(plan, dev=True)
    stage = text[text.index("FROM builder AS project-install"):]
    stage = stage[:stage.index("\n\n")]
    assert "VIRTUAL_ENV=/opt/venv uv pip install --no-deps -e /app" in stage
    assert "COPY mypackage /app/mypackage" in stage  # the code comes into this stage, never into the builder's venv step
    builder = text[text.index("AS builder"):text.index("FROM builder AS project-install")]
    assert "COPY mypackage" not in builder
    copy = "COPY --from=project-install /opt/dockyard/project-install/ /"
    for target in ("train", "serve", "dev"):
        body = text[text.index(f"AS {target}\n"):]
        body = body[:body.index("\n\n")] if "\n\n" in body else body
        assert copy in body, target
    train = text[text.index("AS train\n"):]
    assert train.index("COPY mypackage /app/mypackage") < train.index(copy)  # after the code layer


def test_install_project_false_leaves_it_out(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": SETUP_PY, "dockyard.yaml": "name: pkg\ndependencies:\n  install_project: false\n"})
    plan = make_plan(tmp_path)
    assert plan.install_project is None
    assert "project-install" not in render_dockerfile(plan)
    assert any(c.what == "project" and c.value == "not installed" for c in plan.choices)


def test_a_plain_project_renders_no_install_stage(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "print(1)\n", "dockyard.yaml": "name: plain\n"})
    assert "project-install" not in render_dockerfile(make_plan(tmp_path))
