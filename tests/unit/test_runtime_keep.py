"""runtime/keep.py: a training script run as `python SCRIPT` runs it, then the model it left in a
module-level variable saved in a format the runtime serves with no code (train.model_variable).
Each kind is saved by the real library and loaded back by the runtime's own loader."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.runtime.loaders import model_from_file
from dockyard.runtime.model import ArrayModel
from projectfiles import write


def served(path: Path) -> ArrayModel:
    """The file as the runtime serves it with no code."""
    model = model_from_file(str(path), None, "1", None)
    model.setup()
    return model


def answer(model: ArrayModel, rows: list[list[float]]) -> object:
    (out,) = model.run([model.from_json({"input": rows})])
    return out


def keep(proj: Path, variable: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKYARD_OUTPUTS": str(proj / "out"), "KERAS_BACKEND": "torch"}
    return subprocess.run([sys.executable, "-m", "dockyard.runtime.keep", variable, script, *args], cwd=proj,
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def test_a_torch_module_trained_in_place_is_kept_as_torchscript_with_its_trained_weights(tmp_path: Path) -> None:
    proj = write(tmp_path, {"main.py": (
        "import torch\nfc = torch.nn.Linear(2, 1)\n"
        "with torch.no_grad():\n    fc.weight.copy_(torch.tensor([[3.0, -2.0]])); fc.bias.fill_(0.5)\n"
        "loss = fc(torch.ones(1, 2)).sum(); loss.backward()\n")})
    done = keep(proj, "fc", "main.py")
    assert done.returncode == 0, done.stderr
    assert f"dockyard: kept fc (torch.nn.modules.linear.Linear, TorchScript) as {proj / 'out' / 'model.pt'}" in done.stderr
    model = served(proj / "out" / "model.pt")
    assert [s.shape for s in model.inputs] == [(-1, 2)]  # the runtime reads the input width from the Linear
    assert answer(model, [[1.0, 1.0]])["output"].tolist() == [[1.5]]  # type: ignore[index]


def test_estimators_and_boosters_are_kept_in_their_own_formats(tmp_path: Path) -> None:
    data = "import numpy as np\nX = np.arange(40, dtype=float).reshape(20, 2)\ny = (X[:, 0] > 20).astype(int)\n"
    cases = {
        "sk": ("from sklearn.linear_model import LogisticRegression\nclf = LogisticRegression().fit(X, y)\n",
               "clf", "model.joblib"),
        "xgb": ("import xgboost as xgb\nbst = xgb.train({'max_depth': 2}, xgb.DMatrix(X, label=y), 3)\n",
                "bst", "model.json"),
        "lgb": ("from lightgbm import LGBMClassifier\nm = LGBMClassifier(n_estimators=3, min_child_samples=2, "
                "verbose=-1)\nm.fit(X, y)\n", "m", "model.txt"),
        "keras": ("import keras\nmodel = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
                  "model.compile(loss='mse')\nmodel.fit(X, y, epochs=1, verbose=0)\n", "model", "model.keras"),
    }
    for folder, (code, variable, saved) in cases.items():
        proj = write(tmp_path / folder, {"fit.py": data + code})
        done = keep(proj, variable, "fit.py")
        assert done.returncode == 0, (folder, done.stderr[-2000:])
        assert len(answer(served(proj / "out" / saved), [[30.0, 31.0]])["output"]) == 1, folder  # type: ignore[index]


def test_the_script_runs_as_python_script_runs_it(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "src/helper.py": "VALUE = 41\n",
        "src/run.py": ("import sys, os\nfrom helper import VALUE\n"  # its own folder is first on sys.path
                       "from sklearn.dummy import DummyRegressor\n"
                       "model = DummyRegressor().fit([[0]], [VALUE + 1])\n"
                       "if __name__ == '__main__':\n"
                       "    print('argv', sys.argv, 'file', os.path.basename(__file__))\n"),
    })
    done = keep(proj, "model", "src/run.py", "--epochs", "3")
    assert done.returncode == 0, done.stderr
    assert "argv ['src/run.py', '--epochs', '3'] file run.py" in done.stdout
    assert (proj / "out" / "model.joblib").is_file()


@pytest.mark.parametrize(("source", "status", "says"), [
    ("import sys\nfrom sklearn.dummy import DummyRegressor\nm = DummyRegressor().fit([[0]], [1])\nsys.exit(3)\n",
     3, ""),
    ("raise RuntimeError('data missing')\n", 1, "RuntimeError: data missing"),
    ("x = 1\n", 1, "dockyard: error: fit.py ended without a module-level variable named m"),
    ("m = object()\n", 1, "m is a builtins.object, which dockyard cannot save on its own"),
    ("from sklearn.linear_model import Ridge\nm = Ridge()\n", 1, "m was never fitted"),
])
def test_a_failing_script_or_nothing_to_keep_fails_the_run_and_saves_nothing(
        tmp_path: Path, source: str, status: int, says: str) -> None:
    proj = write(tmp_path, {"fit.py": source})
    done = keep(proj, "m", "fit.py")
    assert done.returncode == status, done.stderr
    assert says in done.stderr
    assert not (proj / "out").exists() or not any((proj / "out").iterdir())


def test_a_model_file_the_script_wrote_itself_is_never_overwritten(tmp_path: Path) -> None:
    proj = write(tmp_path, {"fit.py": (
        "import os, joblib\nfrom sklearn.dummy import DummyRegressor\nm = DummyRegressor().fit([[0]], [1])\n"
        "os.makedirs(os.environ['DOCKYARD_OUTPUTS'], exist_ok=True)\n"
        "open(os.path.join(os.environ['DOCKYARD_OUTPUTS'], 'model.joblib'), 'w').write('mine')\n")})
    done = keep(proj, "m", "fit.py")
    assert done.returncode == 1
    assert "model.joblib exists already: the script saved a model there itself" in done.stderr
    assert (proj / "out" / "model.joblib").read_text() == "mine"


# -- train.model_variable in dockyard.yaml -------------------------------------------------------
def test_the_train_command_is_run_through_keep_and_other_shapes_are_refused() -> None:
    from dockyard.errors import ConfigError
    from dockyard.planning import kept_model_command

    assert kept_model_command("python main.py", None) == "python main.py"
    assert kept_model_command("python main.py --lr 0.1", "fc") == "python -m dockyard_runtime.keep fc main.py --lr 0.1"
    assert kept_model_command("python3 src/fit.py", "m") == "python -m dockyard_runtime.keep m src/fit.py"
    for command in ("uv run main.py", "python -m pkg.train", "make train", "python -c 'import x'"):
        with pytest.raises(ConfigError) as err:
            kept_model_command(command, "fc")
        assert "needs a train.command of the form `python SCRIPT.py [ARGS]`" in err.value.problem
        assert "remove train.model_variable" in err.value.fix


def test_model_variable_must_be_a_name_and_needs_a_command() -> None:
    from dockyard.config import parse_config
    from dockyard.errors import ConfigError

    assert parse_config("name: x\ntrain: {command: python a.py, model_variable: fc}\n").train.model_variable == "fc"
    for text, says in (("name: x\ntrain: {command: python a.py, model_variable: 1fc}\n", "not a Python variable name"),
                       ("name: x\ntrain: {model_variable: fc}\n", "needs train.command")):
        with pytest.raises(ConfigError) as err:
            parse_config(text)
        assert says in err.value.problem + err.value.fix


def test_the_train_image_runs_the_same_command_as_dockyard_train(tmp_path: Path) -> None:
    from dockyard.project import plan

    proj = write(tmp_path, {"requirements.txt": "scikit-learn\n", "fit.py": "print(1)\n",
                            "dockyard.yaml": "name: kept\ntrain: {command: python fit.py --n 3, model_variable: clf}\n"})
    _, dockerfile = plan(proj)
    assert 'CMD ["/bin/sh", "-c", "python -m dockyard_runtime.keep clf fit.py --n 3"]' in dockerfile


def test_a_torchscript_model_served_with_no_code_gets_numpy_which_torch_does_not_install(tmp_path: Path) -> None:
    from dockyard.project import plan

    def requirements(folder: str, reqs: str, model: str) -> tuple[str, ...]:
        proj = write(tmp_path / folder, {"requirements.txt": reqs, model: "x",
                                          "dockyard.yaml": f"name: {folder}\nserve: {{model: {model}}}\n"})
        return plan(proj)[0].requirements

    assert "numpy" in requirements("torch", "torch\n", "model.pt")
    assert [r for r in requirements("pinned", "torch\nnumpy<2\n", "model.pt") if r.startswith("numpy")] == ["numpy<2"]
    assert "numpy" not in requirements("sk", "scikit-learn\n", "model.joblib")  # scikit-learn installs it


def test_a_locked_project_serving_torch_with_no_code_is_warned_when_its_lock_lacks_numpy(tmp_path: Path) -> None:
    # A hash-pinned lock is installed as it is (nothing added), so plan says what will fail and the fix.
    from dockyard.project import plan

    def warnings(folder: str, lock: str) -> list[str]:
        proj = write(tmp_path / folder, {"requirements.txt": "torch\n", "model.pt": "x", "requirements.lock": lock,
                                          "dockyard.yaml": f"name: {folder}\nserve: {{model: model.pt}}\n"
                                                           "dependencies:\n  lock: requirements.lock\n"})
        made = plan(proj)[0]
        assert made.locked and "numpy" not in made.requirements
        return [w for w in made.warnings if "numpy" in w]

    (warning,) = warnings("bare", "torch==2.13.0 \\\n    --hash=sha256:00\n")
    assert "requirements.lock does not pin numpy" in warning and "run `dockyard lock` again" in warning
    assert warnings("with-numpy", "numpy==2.3.5 \\\n    --hash=sha256:11\ntorch==2.13.0 \\\n    --hash=sha256:00\n") == []


def test_plan_says_the_variable_is_kept(tmp_path: Path) -> None:
    from dockyard.project import plan

    proj = write(tmp_path, {"requirements.txt": "scikit-learn\n", "fit.py": "print(1)\n",
                            "dockyard.yaml": "name: kept\ntrain: {command: python fit.py, model_variable: clf}\n"})
    (train,) = [c for c in plan(proj)[0].choices if c.what == "train"]
    assert train.value == "python fit.py, then keep clf"
    assert "clf is saved when it ends" in train.why
