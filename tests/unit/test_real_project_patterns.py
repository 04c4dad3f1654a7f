"""Patterns real ML projects have, seen to fail when tried unchanged (issue 11), without Docker:
ranges read as pins, suffix lists that disagreed, a nested serve.model, notebooks, imports with
no dependency file, brackets in error text, relative --model paths, 4xx answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from dockyard import serving
from dockyard.errors import UsageError
from dockyard.planning import make_plan
from dockyard.render import render_dockerfile
from dockyard.runtime import contract
from dockyard.runtime.loaders import framework_for
from projectfiles import write

LIGHTGBM_TEXT = "tree\nversion=v4\nnum_class=1\n"
XGBOOST_JSON = '{"learner": {"attributes": {}}, "version": [2, 1, 0]}'


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "dockyard", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120, check=False)


# -- one registry of model formats ----------------------------------------------------------


@pytest.mark.parametrize(("name", "text", "loader"), [("model.txt", LIGHTGBM_TEXT, "lightgbm"),
                                                       ("model.json", XGBOOST_JSON, "xgboost"),
                                                       ("model.ubj", "x", "xgboost"),
                                                       ("model.joblib", "x", "sklearn")])
def test_every_layer_agrees_on_lightgbm_text_and_xgboost_json(tmp_path: Path, name: str, text: str, loader: str) -> None:
    write(tmp_path, {f"model/{name}": text, "dockyard.yaml": f"name: m\nserve:\n  model: model/{name}\n"})

    assert contract.looks_like_model(str(tmp_path / "model" / name))
    assert framework_for(tmp_path / "model" / name) == loader
    # serve --model stages the file into a folder; planning must find it there.
    plan = make_plan(tmp_path, model_file="model")
    assert plan.serve_model == name


def test_requirements_txt_and_plain_json_are_never_models(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "numpy\n", "config.json": '{"lr": 0.1}'})

    assert not contract.looks_like_model(str(tmp_path / "requirements.txt"))
    assert not contract.looks_like_model(str(tmp_path / "config.json"))


def test_no_module_restates_the_model_suffixes() -> None:
    src = Path(__file__).resolve().parents[2] / "src" / "dockyard"
    for path in src.rglob("*.py"):
        if path.name == "contract.py" or path.parent.name == "scan":  # scan/models.py: the scanner's own list
            continue
        text = path.read_text()
        assert '".joblib", ".pkl"' not in text and '".pkl", ".pickle"' not in text, path


# -- serve.model inside a code folder, notebooks ---------------------------------------------


def test_nested_serve_model_keeps_its_folder_and_only_serving_drops_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"model/train.py": "print(1)\n", "model/model.pkl": "x", "requirements.txt": "scikit-learn\n",
                     "dockyard.yaml": "name: m\ntrain:\n  command: python model/train.py\nserve:\n  model: model/model.pkl\n"})

    plan = make_plan(tmp_path)
    text = render_dockerfile(plan)

    assert "model" in plan.code_dirs
    assert plan.serve_drop == ("model/model.pkl",)
    train = text[text.index("AS train"):]
    assert "COPY model /app/model" in train.split("FROM")[0]
    assert "rm -rf -- /app/model/model.pkl" in text
    assert "COPY --from=serve-code --chown=0:0 /app /app" in text[text.index("AS serve\n"):]


def test_notebooks_stay_in_the_train_image_but_not_in_the_serving_image(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "", "notebooks/explore.ipynb": "{}", "model.joblib": "x",
                     "requirements.txt": "scikit-learn\n", "dockyard.yaml": "name: m\nserve:\n  model: model.joblib\n"})

    plan = make_plan(tmp_path)
    text = render_dockerfile(plan)

    assert plan.serve_drop == ("*.ipynb",)
    assert "find /app -type f \\( -name '*.ipynb' \\) -delete" in text
    serve = text[text.index("AS serve\n"):]
    assert "COPY notebooks" not in serve and "COPY --from=serve-code --chown=0:0 /app /app" in serve


def test_projects_without_notebooks_or_nested_models_render_as_before(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "", "requirements.txt": "scikit-learn\n", "dockyard.yaml": "name: m\n"})

    assert make_plan(tmp_path).serve_drop == ()
    assert "serve-code" not in render_dockerfile(make_plan(tmp_path))


# -- system libraries in every stage that imports the framework ------------------------------


def test_lightgbm_bytecode_stage_has_libgomp(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "lightgbm\n", "model.txt": LIGHTGBM_TEXT,
                     "dockyard.yaml": "name: m\nframework: lightgbm\nserve:\n  model: model.txt\n"})

    text = render_dockerfile(make_plan(tmp_path))

    assert "libgomp1" in text
    assert "FROM runtime-base AS bytecode" in text
    assert text.index("AS runtime-base") < text.index("AS bytecode")


# -- specifiers and inferred requirements in the plan ----------------------------------------


def test_a_lower_bound_in_conda_yaml_plans_the_release_that_gets_installed(tmp_path: Path) -> None:
    write(tmp_path, {"conda.yaml": "dependencies:\n  - python=3.11\n  - pip:\n    - scikit-learn>0.19.1\n",
                     "train.py": "import sklearn\n", "dockyard.yaml": "name: m\nframework: scikit-learn\n"})

    plan = make_plan(tmp_path)

    framework = next(c for c in plan.choices if c.what == "framework")
    assert framework.value == "scikit-learn 1.9.1"
    assert ">0.19.1" in framework.why


def test_framework_only_in_imports_is_installed_and_the_plan_shows_the_version(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "from sklearn.linear_model import LogisticRegression\n",
                     "dockyard.yaml": "name: m\nframework: scikit-learn\n"})

    plan = make_plan(tmp_path)

    assert plan.requirements == ("scikit-learn==1.9.1",)
    inferred = next(c for c in plan.choices if c.what == "inferred requirement")
    assert (inferred.value, inferred.why) == ("scikit-learn==1.9.1", "imported in train.py")


def test_init_does_not_copy_a_range_into_framework_version(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "scikit-learn>=1.0\n", "train.py": "import sklearn\n"})

    proc = cli("init", str(tmp_path))

    assert proc.returncode == 0, proc.stderr
    assert "framework_version" not in (tmp_path / "dockyard.yaml").read_text()
    planned = cli("plan", "--offline", str(tmp_path))
    assert planned.returncode == 0, planned.stderr
    assert "scikit-learn 1.9.1" in planned.stdout


# -- the CLI prints data, never markup --------------------------------------------------------


def test_error_text_with_brackets_is_printed_not_parsed_as_markup(tmp_path: Path) -> None:
    # A dependency file the user named, whose name looks like a closing markup tag.
    (tmp_path / "dockyard.yaml").write_text("name: m\ndependencies:\n  file: '[/bin/sh -c x].txt'\n")

    proc = cli("plan", "--offline", str(tmp_path))

    assert proc.returncode == 1, proc.stderr
    assert "[/bin/sh -c x].txt" in proc.stderr
    assert "MarkupError" not in proc.stderr and "Traceback" not in proc.stderr
    assert any(line.startswith("fix:") for line in proc.stderr.splitlines())


# -- --model is relative to the current directory ---------------------------------------------


def test_relative_model_path_is_resolved_against_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path, {"elsewhere/model.joblib": "x", "project/model.joblib": "y"})

    got = serving.model_argument("model.joblib", cwd=tmp_path / "elsewhere")

    assert got == str((tmp_path / "elsewhere" / "model.joblib").resolve())
    assert serving.model_argument("iris:3", cwd=tmp_path) == "iris:3"  # a stored version
    with pytest.raises(UsageError) as info:
        serving.model_argument("missing/model.joblib", cwd=tmp_path)
    assert str(tmp_path) in info.value.problem


# -- predict: a refused request is the user's error -------------------------------------------


@pytest.fixture
def answers_422() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.dumps({"error": "input 'x' is missing"}).encode()
            self.send_response(422)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_predict_exits_1_on_a_422(answers_422: str) -> None:
    proc = cli("predict", answers_422, "--input", '{"y": 1}')

    assert proc.returncode == 1, proc.stderr
    assert "422" in proc.stderr and "input 'x' is missing" in proc.stderr


# -- train commands where real projects keep them ---------------------------------------------


@pytest.mark.parametrize(("files", "command"), [
    ({"model/train.py": ""}, "python model/train.py"),
    ({"src/train.py": ""}, "python src/train.py"),
    ({"scripts/train_model.py": ""}, "python scripts/train_model.py"),
    ({"model/train.py": "", "README.md": "Train it:\n\n```\nuv run model/train.py --epochs 3\n```\n"},
     "python model/train.py --epochs 3"),
    ({"fit/train_net.py": "", "README.md": "Run `python3 fit/train_net.py` to train.\n"}, "python fit/train_net.py"),
    ({"pkg/train.py": "", "README.md": "python -m pkg.train\n"}, "python -m pkg.train"),
    ({"Makefile": "all: train\n\ntrain:\n\t@uv run python jobs/fit.py --seed 1\n", "jobs/fit.py": ""},
     "python jobs/fit.py --seed 1"),
    ({"pyproject.toml": '[project]\nname = "x"\n[project.scripts]\nx-train = "x.cli:train"\n', "src/x/cli.py": ""},
     "PYTHONPATH=/app/src:$PYTHONPATH python -c 'import sys; from x.cli import train as f; sys.exit(f())'"),
])
def test_train_commands_are_found_where_real_projects_keep_them(tmp_path: Path, files: dict[str, str], command: str) -> None:
    from dockyard.detect import detect

    write(tmp_path, files)

    assert detect(tmp_path).train_command == command


def test_a_readme_line_naming_a_missing_script_is_not_trusted(tmp_path: Path) -> None:
    from dockyard.detect import detect

    write(tmp_path, {"README.md": "python train_big.py\n", "scripts/train.py": ""})

    assert detect(tmp_path).train_command == "python scripts/train.py"


def test_init_says_when_no_train_command_was_found_and_how_to_set_one(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "scikit-learn\n", "model.joblib": "x"})

    proc = cli("init", str(tmp_path))

    assert proc.returncode == 0, proc.stderr
    assert "train: none found" in proc.stderr
    assert "train: {command: python path/to/train.py}" in proc.stderr


def test_init_translates_one_other_tools_file_and_names_the_rest(tmp_path: Path) -> None:
    write(tmp_path, {"cog.yaml": "build:\n  python_version: '3.11'\n", "bentofile.yaml": "service: svc:Svc\n",
                     "train.py": "", "requirements.txt": "scikit-learn\n"})

    proc = cli("init", str(tmp_path))

    assert proc.returncode == 0, proc.stderr
    assert "cog.yaml: mapped" in proc.stderr
    assert "cog.yaml (Cog's build file) was seen but not read" not in proc.stderr
    assert "bentofile.yaml (BentoML's build file) was seen but not read (dockyard translated cog.yaml only)" \
        in proc.stderr
    plan = cli("plan", str(tmp_path))
    assert "was seen but not read" not in plan.stdout + plan.stderr  # init's note, not a standing warning


def test_init_does_not_call_a_translated_bentofile_unread(tmp_path: Path) -> None:
    write(tmp_path, {"bentofile.yaml": "service: svc:Svc\npython:\n  packages: [scikit-learn]\n",
                     "svc.py": "", "train.py": ""})

    proc = cli("init", str(tmp_path))

    assert proc.returncode == 0, proc.stderr
    assert "bentofile.yaml: mapped python packages" in proc.stderr, proc.stderr
    assert "was seen but not read" not in proc.stderr


def test_mlproject_train_image_cmd_runs_the_defaults(tmp_path: Path) -> None:
    write(tmp_path, {"MLproject": "entry_points:\n  main:\n    parameters:\n      alpha: {type: float, default: 0.5}\n"
                                  "    command: python train.py {alpha}\n",
                     "train.py": "", "requirements.txt": "scikit-learn\n"})
    assert cli("init", str(tmp_path)).returncode == 0
    assert "python train.py {alpha}" in (tmp_path / "dockyard.yaml").read_text()

    plan = make_plan(tmp_path)

    assert plan.train_command == "python train.py 0.5"


# -- repo2docker's conventions ----------------------------------------------------------------


def test_apt_txt_packages_join_the_system_layer_with_a_reason(tmp_path: Path) -> None:
    from dockyard.detect import detect

    write(tmp_path, {"apt.txt": "# codecs\nffmpeg\nlibsndfile1 libgomp1\n", "train.py": "", "requirements.txt": "numpy\n",
                     "dockyard.yaml": "name: m\n"})

    found = detect(tmp_path)
    plan = make_plan(tmp_path)

    assert found.system_packages == ("ffmpeg", "libsndfile1", "libgomp1")
    assert any(r.what.startswith("system packages: ffmpeg") and "apt.txt" in r.why for r in found.reasons)
    text = render_dockerfile(plan)
    assert "apt-get install -y --no-install-recommends ffmpeg libgomp1 libsndfile1" in text


def test_post_build_runs_as_the_image_user_over_the_code(tmp_path: Path) -> None:
    write(tmp_path, {"postBuild": "#!/bin/sh\npython -c 'open(\"prepared.txt\", \"w\").write(\"ok\")'\n", "train.py": "",
                     "requirements.txt": "numpy\n", "dockyard.yaml": "name: m\n"})

    text = render_dockerfile(make_plan(tmp_path))

    stage = text[text.index("AS post-build"):]
    stage = stage[: stage.index("\n\n")]
    assert "COPY --chown=10001:10001" in stage and "USER 10001:10001" in stage
    assert "RUN if [ -x ./postBuild ]; then ./postBuild; else sh ./postBuild; fi" in stage
    assert "COPY --from=post-build --chown=0:0 /app /app" in text[text.index("AS train"):]


def test_post_build_that_needs_root_is_refused_unless_allowed(tmp_path: Path) -> None:
    from dockyard.errors import ConfigError

    write(tmp_path, {"postBuild": "#!/bin/bash\nset -e\napt-get install -y ffmpeg\n", "train.py": "",
                     "requirements.txt": "numpy\n", "dockyard.yaml": "name: m\n"})
    with pytest.raises(ConfigError) as info:
        make_plan(tmp_path)
    assert "postBuild:3: apt-get install -y ffmpeg" in info.value.problem
    assert "apt.txt" in info.value.fix and "post_build_as_root: true" in info.value.fix

    (tmp_path / "dockyard.yaml").write_text("name: m\npost_build_as_root: true\n")
    assert "USER 0:0" in render_dockerfile(make_plan(tmp_path))


@pytest.mark.parametrize(("files", "requirements", "python"), [
    ({"setup.py": "from setuptools import setup\nDEPS = ['numpy>=1.26', 'Scikit_Learn']\n"
                  "setup(name='x', install_requires=DEPS, python_requires='>=3.11')\n"},
     ("numpy>=1.26", "scikit-learn"), "3.11"),  # a range: dockyard's default (3.11) when it admits it
    ({"setup.cfg": "[options]\ninstall_requires =\n    pandas>=2\n    lightgbm\npython_requires = >=3.12\n"},
     ("pandas>=2", "lightgbm"), "3.12"),  # else the admitted Python nearest to the default
    ({"Pipfile": '[packages]\nrequests = "*"\nxgboost = ">=2.0"\n[dev-packages]\npytest = "*"\n'
                 '[requires]\npython_version = "3.12"\n'},
     ("requests", "xgboost>=2.0"), "3.12"),
    ({"Pipfile": '[packages]\nnumpy = "*"\n', "Pipfile.lock": json.dumps(
        {"_meta": {"requires": {"python_version": "3.11"}},
         "default": {"numpy": {"version": "==2.1.3"}, "joblib": {"version": "==1.4.2", "markers": "python_version >= '3.9'"}},
         "develop": {"pytest": {"version": "==8.0.0"}}})},
     ("joblib==1.4.2; python_version >= \"3.9\"", "numpy==2.1.3"), "3.11"),
    ({"pyproject.toml": '[tool.poetry]\nname = "x"\n[tool.poetry.dependencies]\npython = "^3.11"\n'
                        'torch = {version = "^2.3", extras = []}\nrich = {version = "*", optional = true}\n'},
     ("torch<3.0,>=2.3",), "3.11"),
    ({"pyproject.toml": '[tool.poetry.dependencies]\npython = ">=3.10,<3.13"\nnumpy = "^1.26"\n',
      "poetry.lock": '[[package]]\nname = "numpy"\nversion = "1.26.4"\ngroups = ["main"]\n\n'
                     '[[package]]\nname = "pytest"\nversion = "8.0.0"\ngroups = ["dev"]\n'},
     ("numpy==1.26.4",), "3.11"),
])
def test_other_dependency_formats_are_read(tmp_path: Path, files: dict[str, str], requirements: tuple[str, ...],
                                            python: str) -> None:
    from dockyard.detect import detect

    write(tmp_path, {**files, "train.py": ""})

    found = detect(tmp_path)

    assert found.requirements == requirements
    assert found.python_version == python
    assert found.reasons[0].what.startswith("dependencies: ")


def test_poetry_carets_and_tildes_become_pep440() -> None:
    from dockyard.detect.poetry import to_pep440

    assert to_pep440("^1.2.3") == ">=1.2.3,<2.0.0"
    assert to_pep440("^0.2.3") == ">=0.2.3,<0.3.0"
    assert to_pep440("~1.2.3") == ">=1.2.3,<1.3.0"
    assert to_pep440("~=1.2") == "~=1.2"
    assert to_pep440("1.4.2") == "==1.4.2"
    assert to_pep440(">=1.0,<2") == ">=1.0,<2"
    assert to_pep440("*") == ""


def test_framework_version_beside_a_requirements_range_is_warned_about(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "scikit-learn>=1.5\n", "train.py": "import sklearn\n",
                     "dockyard.yaml": "name: m\nframework: scikit-learn\nframework_version: '1.5'\n"})

    plan = make_plan(tmp_path)

    assert any("framework_version 1.5" in w and "scikit-learn>=1.5" in w for w in plan.warnings)


def test_plan_shows_what_each_detector_read_and_why(tmp_path: Path) -> None:
    write(tmp_path, {"Pipfile": '[packages]\nnumpy = "*"\n', "apt.txt": "jq\n", "postBuild": "echo hi\n",
                     "model/train.py": "", "dockyard.yaml": "name: m\ntrain:\n  command: python model/train.py\n"})

    shown = {c.what: (c.value, c.why) for c in make_plan(tmp_path).choices}

    assert shown["dependencies"][0] == "Pipfile (requirements)"
    assert shown["system packages"] == ("jq", "apt.txt (installed in their own apt layer)")
    assert shown["post-build"][0] == "postBuild" and "as the image user" in shown["post-build"][1]
    assert shown["train"] == ("python model/train.py", "model/train.py exists")
