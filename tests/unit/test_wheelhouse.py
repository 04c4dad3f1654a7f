"""CPU torch from the host's own wheelhouse (dockyard.wheelhouse): the find-links folders pip is
configured with, read the way pip reads them; the newest matching `+cpu` wheel replaces
download.pytorch.org in the plan, staged into the build context and bound for the install only."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard import wheelhouse
from dockyard.planning import make_plan
from dockyard.render.dockerfile import render_dockerfile
from projectfiles import write

CP311 = "torch-{v}-cp311-cp311-manylinux_2_28_x86_64.whl"


def _house(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: the name is what counts
    return folder


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment whose pip configuration files are all under tmp_path."""
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
            "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"), **extra}


def test_sources_come_from_the_environment_and_pips_config_files_local_folders_only(tmp_path: Path) -> None:
    a, b, c = (_house(tmp_path / n) for n in ("a", "b", "c"))
    user_conf = tmp_path / "home" / ".config" / "pip" / "pip.conf"
    user_conf.parent.mkdir(parents=True)
    user_conf.write_text(f"[global]\nfind-links =\n    file://{b}\n    https://example.com/wheels/\n"
                         f"[install]\nfind-links = {c} {tmp_path / 'missing'}\n")
    env = _env(tmp_path, PIP_FIND_LINKS=f"{a} {a}")
    sources = wheelhouse.host_sources(env)
    assert [s.folder for s in sources] == [a, b, c]  # the URL and the missing folder are not local wheelhouses
    assert sources[0].setting == "PIP_FIND_LINKS"
    assert sources[1].setting == f"{user_conf} [global] find-links"
    assert wheelhouse.host_sources({**env, "DOCKYARD_HOST_WHEELS": "0"}) == ()
    broken = _env(tmp_path, PIP_CONFIG_FILE=str(tmp_path / "bad.conf"))
    (tmp_path / "bad.conf").write_text("find-links without a section\n")
    assert [s.folder for s in wheelhouse.host_sources(broken)] == [b, c]  # an unreadable file is skipped


def test_the_newest_cpu_build_the_requirements_admit_for_this_python_and_machine(tmp_path: Path) -> None:
    house = _house(tmp_path / "w", CP311.format(v="2.13.0+cpu"), CP311.format(v="2.14.1+cpu"),
                   CP311.format(v="2.15.0"),  # PyPI's (CUDA) build: no +cpu
                   "torch-2.16.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl",
                   "torch-2.16.0+cpu-cp311-cp311-manylinux_2_28_aarch64.whl",
                   "torch-2.16.0+cpu-cp311-cp311-win_amd64.whl", "torch-not-a-wheel.whl", "numpy-2.0.0-cp311-cp311-any.whl")
    sources = (wheelhouse.Source(house, "PIP_FIND_LINKS"),)
    pick = wheelhouse.cpu_torch(sources, ["numpy", "torch"], "3.11")
    assert pick is not None and str(pick.version) == "2.14.1+cpu" and pick.path == house / CP311.format(v="2.14.1+cpu")
    assert str(wheelhouse.cpu_torch(sources, ["torch<2.14"], "3.11").version) == "2.13.0+cpu"  # type: ignore[union-attr]
    assert wheelhouse.cpu_torch(sources, ["torch>=2.15"], "3.11") is None
    assert wheelhouse.cpu_torch(sources, ["torch"], "3.10") is None
    assert str(wheelhouse.cpu_torch(sources, ["torch"], "3.11", "aarch64").version) == "2.16.0+cpu"  # type: ignore[union-attr]


def test_stage_keeps_exactly_the_chosen_wheels(tmp_path: Path) -> None:
    house = _house(tmp_path / "w", CP311.format(v="2.13.0+cpu"), CP311.format(v="2.14.1+cpu"))
    build = tmp_path / "proj" / ".dockyard"
    build.mkdir(parents=True)
    first, second = sorted(house.iterdir())
    wheelhouse.stage(build, [first])
    assert [p.name for p in (build / "wheels").iterdir()] == [first.name]
    wheelhouse.stage(build, [second])
    assert [p.name for p in (build / "wheels").iterdir()] == [second.name]
    wheelhouse.stage(build, [])
    assert not (build / "wheels").exists()


@pytest.fixture
def torch_project(tmp_path: Path) -> Path:
    return write(tmp_path / "reg", {"requirements.txt": "torch\n", "main.py": "import torch\n",
                                    "dockyard.yaml": "name: reg\npython: '3.11'\nframework: torch\n"
                                                     "dependencies: {file: requirements.txt, kind: requirements}\n"})


def test_plan_takes_torch_from_the_host_wheelhouse_instead_of_download_pytorch_org(
        torch_project: Path, tmp_path: Path) -> None:
    house = _house(tmp_path / "w", CP311.format(v="2.13.0+cpu"))
    without = make_plan(torch_project)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in without.index_options and not without.local_wheels

    plan = make_plan(torch_project, host_wheels=(wheelhouse.Source(house, "PIP_FIND_LINKS"),))
    assert not any("download.pytorch.org" in o for o in plan.index_options)
    assert "--find-links /tmp/dockyard-wheels" in plan.index_options
    assert plan.requirements[-1] == "torch==2.13.0+cpu" and "torch" in plan.requirements
    assert plan.local_wheels == (str(house / CP311.format(v="2.13.0+cpu")),)
    shown = {c.what: c for c in plan.choices}
    assert shown["framework"].value == "torch 2.13.0+cpu"  # what is installed, not the newest release
    assert "PIP_FIND_LINKS names" in shown["wheels"].why and "DOCKYARD_HOST_WHEELS=0" in shown["wheels"].why
    text = render_dockerfile(plan)
    assert "--mount=type=bind,source=.dockyard/wheels,target=/tmp/dockyard-wheels" in text
    assert "COPY .dockyard/wheels" not in text  # bound for the install step, never a layer
    # A GPU target, or a pin the wheelhouse cannot meet, keeps the index.
    (torch_project / "requirements.txt").write_text("torch==2.15.0\n")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in make_plan(
        torch_project, host_wheels=(wheelhouse.Source(house, "PIP_FIND_LINKS"),)).index_options
