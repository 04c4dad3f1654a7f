"""CPU torch from the host's own wheelhouse (dockyard.wheelhouse): the find-links folders pip is
configured with, read the way pip reads them; the newest matching `+cpu` wheel replaces
download.pytorch.org in the plan, staged into the build context and bound for the install only."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_sources_are_local_folders_and_say_which_setting_named_them(tmp_path: Path) -> None:
    b, c = _house(tmp_path / "b"), _house(tmp_path / "c")
    user_conf = tmp_path / "home" / ".config" / "pip" / "pip.conf"
    user_conf.parent.mkdir(parents=True)
    user_conf.write_text(f"[global]\nfind-links =\n    file://{b}\n    https://example.com/wheels/\n"
                         f"    {c} {tmp_path / 'missing'} {b}\n")
    env = _env(tmp_path)
    sources = wheelhouse.host_sources(env)
    assert [s.folder for s in sources] == [b, c]  # the URL and the missing folder are not local wheelhouses
    assert sources[0].setting == f"{user_conf} [global] find-links"
    assert wheelhouse.host_sources({**env, "DOCKYARD_HOST_WHEELS": "0"}) == ()
    broken = _env(tmp_path, PIP_CONFIG_FILE=str(tmp_path / "bad.conf"))
    (tmp_path / "bad.conf").write_text("find-links without a section\n")
    assert wheelhouse.host_sources(broken) == ()  # unreadable: skipped (and it replaces the user's files)


def _pip_links(env: dict[str, str]) -> list[Path]:
    """The reference: the folders pip itself says it looks in ("Looking in links: ...") when asked
    to install, with no index, a distribution that exists nowhere."""
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
                          "--disable-pip-version-check", "dockyard-no-such-distribution"],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "dockyard-no-such-distribution" in run.stderr, run.stderr  # it got as far as looking
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("Looking in links: ")), "")
    links = [x.strip() for x in line.removeprefix("Looking in links: ").split(",") if x.strip()]
    return [Path(x.removeprefix("file://")).resolve() for x in links]


def test_the_folders_are_the_ones_pip_itself_looks_in(tmp_path: Path) -> None:
    """Differential: pip's precedence (a later file over an earlier one, [install] over [global],
    PIP_FIND_LINKS over every file, PIP_CONFIG_FILE replacing the user's files, /dev/null meaning
    none), checked against pip on the same environment."""
    a, b, c, d = (_house(tmp_path / n) for n in "abcd")
    site = tmp_path / "xdg" / "pip" / "pip.conf"
    user = tmp_path / "home" / ".config" / "pip" / "pip.conf"
    legacy = tmp_path / "home" / ".pip" / "pip.conf"
    own = tmp_path / "own.conf"
    cases: list[tuple[dict[Path, str], dict[str, str], list[Path]]] = [
        ({user: f"[global]\nfind-links = {b}\n"}, {}, [b]),
        ({user: f"[global]\nfind-links = {b}\n[install]\nfind-links = {c} {d}\n"}, {}, [c, d]),
        ({site: f"[global]\nfind-links = {a}\n", user: f"[global]\nfind-links = {b}\n"}, {}, [b]),
        ({site: f"[install]\nfind-links = {a}\n", user: f"[global]\nfind-links = {b}\n"}, {}, [a]),
        ({legacy: f"[global]\nfind-links = {a}\n", user: f"[global]\nfind_links = {d}\n"}, {}, [d]),
        ({user: f"[install]\nfind-links = {c}\n"}, {"PIP_FIND_LINKS": f"{a} {b}"}, [a, b]),
        ({user: f"[global]\nfind-links = {b}\n", own: f"[global]\nfind-links = {d}\n"},
         {"PIP_CONFIG_FILE": str(own)}, [d]),
        ({user: f"[global]\nfind-links = {b}\n", own: "[global]\ntimeout = 5\n"},
         {"PIP_CONFIG_FILE": str(own)}, []),  # an existing PIP_CONFIG_FILE replaces the user's files
        ({user: f"[global]\nfind-links = {b}\n"}, {"PIP_CONFIG_FILE": os.devnull}, []),
        ({site: f"[global]\nfind-links = {a}\n"}, {"PIP_CONFIG_FILE": str(tmp_path / "absent.conf")}, [a]),
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "DOCKYARD_", "XDG_"))}
    for files, extra, expected in cases:
        for f in (site, user, legacy, own):
            f.unlink(missing_ok=True)
        for f, text in files.items():
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        env = {**base, **_env(tmp_path, **extra)}
        ours = [s.folder for s in wheelhouse.host_sources(env)]
        assert ours == _pip_links(env), (files, extra)
        assert ours == expected, (files, extra)


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
