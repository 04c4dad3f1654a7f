"""Content-based train entry points for example collections (issue 11, bug 10)."""

from __future__ import annotations

from pathlib import Path

from dockyard.detect import detect
from dockyard.detect.entrypoints import find_train_command
from dockyard.detect.trainscripts import training_candidates, training_scripts
from dockyard.project import init
from projectfiles import write


LGB_SIMPLE = "import lightgbm as lgb\nfrom sklearn.metrics import r2_score\nbst = lgb.train({}, None)\nbst.save_model('model.txt')\n"
XGB_JSON = "import xgboost as xgb\nbst = xgb.train({}, None)\nbst.save_model('model-0.json')\nbst.dump_model('dump.raw.txt')\n"
SK_PICKLE = ("import pickle\nfrom sklearn.linear_model import Ridge\nm = Ridge().fit([[0]], [0])\n"
             "pickle.dump(m, open('best.pkl', 'wb'))\n")


def test_a_script_that_imports_trains_and_saves_is_a_candidate(tmp_path: Path) -> None:
    write(tmp_path, {
        "guide/simple_example.py": LGB_SIMPLE,
        "guide/plot_example.py": "import lightgbm as lgb\nimport json\nbst = lgb.train({}, None)\njson.dump({}, open('x.json', 'w'))\n",
        "guide/no_framework.py": "import numpy as np\nx = np.zeros(3)\nx.fit()\nnp.save('m.npy', x)\n",
        "guide/only_saves.py": "import lightgbm as lgb\nlgb.Booster(model_file='m.txt').save_model('m2.txt')\n",
    })
    found = training_candidates(tmp_path)
    assert [c.script for c in found] == ["guide/simple_example.py"]
    assert (found[0].framework, found[0].saved, found[0].servable) == ("lightgbm", "model.txt", True)


def test_ranking_prefers_a_safe_servable_format_then_names_then_fewest_lines(tmp_path: Path) -> None:
    write(tmp_path, {
        "demo/sklearn_examples.py": SK_PICKLE,  # servable, but a pickle
        "demo/basic_walkthrough.py": XGB_JSON + "\n" * 40,
        "demo/continuation.py": XGB_JSON,  # shorter, but no preferred name
        "demo/zz_example.py": XGB_JSON + "\n" * 80,
        "demo/torch_state.py": "import torch\nloss.backward()\ntorch.save(m.state_dict(), path)\n",  # no literal name
    })
    ranked = [c.script for c in training_candidates(tmp_path)]
    assert ranked == ["demo/basic_walkthrough.py", "demo/zz_example.py", "demo/continuation.py",
                      "demo/sklearn_examples.py", "demo/torch_state.py"]


def test_find_train_command_names_the_choice_the_others_and_how_to_set_one(tmp_path: Path) -> None:
    write(tmp_path, {"guide/simple_example.py": LGB_SIMPLE, "guide/advanced_example.py": LGB_SIMPLE + "\n" * 100})
    found = find_train_command(tmp_path)
    assert found.value == "python guide/simple_example.py"
    assert found.reason is not None
    why = found.reason.why
    assert "guide/simple_example.py (lightgbm, saves model.txt, 5 lines) is the best of 2" in why
    assert "the others: guide/advanced_example.py" in why
    assert "train: {command: python path/to/script.py}" in why


def test_a_train_named_script_still_wins_over_contents(tmp_path: Path) -> None:
    write(tmp_path, {"train.py": "print('hi')\n", "simple_example.py": LGB_SIMPLE})
    assert find_train_command(tmp_path).value == "python train.py"


def test_tests_and_setup_files_are_never_candidates(tmp_path: Path) -> None:
    write(tmp_path, {"tests/test_model.py": LGB_SIMPLE, "test_x.py": LGB_SIMPLE, "setup.py": LGB_SIMPLE})
    assert training_candidates(tmp_path) == []
    assert find_train_command(tmp_path).value is None


def test_init_writes_the_chosen_script_and_says_why(tmp_path: Path) -> None:
    write(tmp_path, {"examples/simple_example.py": LGB_SIMPLE})
    result = init(tmp_path)
    assert result.config.train.command == "python examples/simple_example.py"
    assert any(n.startswith("train: python examples/simple_example.py: no train-named script") for n in result.notes)
    assert detect(tmp_path).train_command == "python examples/simple_example.py"


def test_scripts_that_train_but_save_nothing_are_named_when_no_train_command_is_found(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": "import torch\nloss = torch.zeros(1)\nloss.backward()\nprint('done')\n"})
    found = find_train_command(tmp_path)
    assert found.value is None and found.reason is not None
    assert "main.py trains but saves no model" in found.reason.why
    assert "dockyard run PROJECT -- python SCRIPT" in found.reason.why


def test_a_custom_jax_training_loop_is_named_as_training_without_saving(tmp_path: Path) -> None:
    """Keras's custom-JAX-workflow demo: no .fit(), a jitted step over jax.value_and_grad."""
    write(tmp_path, {"demo_custom_jax_workflow.py": (
        "import os\nos.environ['KERAS_BACKEND'] = 'jax'\nimport jax\nimport keras\n"
        "def loss(w):\n    return (w ** 2).sum()\n"
        "grad_fn = jax.value_and_grad(loss)\n"
        "@jax.jit\ndef train_step(w):\n    value, g = grad_fn(w)\n    return w - 0.1 * g\n")})
    found = find_train_command(tmp_path)
    assert found.value is None and found.reason is not None
    assert "demo_custom_jax_workflow.py trains but saves no model" in found.reason.why


# -- a model trained in place and never saved: train.model_variable --------------------------------
TORCH_IN_PLACE = """\
import torch
import torch.nn.functional as F
fc = torch.nn.Linear(4, 1)
for i in range(10):
    fc.zero_grad()
    out = F.smooth_l1_loss(fc(torch.zeros(2, 4)), torch.zeros(2, 1))
    out.backward()
    for p in fc.parameters():
        p.data.add_(-0.1 * p.grad)
print(fc.weight)
"""


def _variable(tmp_path: Path, source: str) -> str | None:
    write(tmp_path, {"main.py": source})
    (script,) = [c for c in training_scripts(tmp_path) if c.script == "main.py"]
    assert not script.saves
    return script.model_variable


def test_the_global_a_torch_script_trains_in_place_is_its_model_variable(tmp_path: Path) -> None:
    assert _variable(tmp_path, TORCH_IN_PLACE) == "fc"


def test_model_variables_of_each_kind(tmp_path: Path) -> None:
    cases = {
        "net": "from torch import nn\nclass Net(nn.Module):\n    pass\nnet = Net()\nloss.backward()\n",
        "clf": "from sklearn.ensemble import RandomForestClassifier as RF\nclf = RF(n_estimators=5)\nclf.fit(X, y)\n",
        "bst": "import xgboost as xgb\nbst = xgb.train({}, dtrain)\n",
        "gbm": "import lightgbm\nif True:\n    gbm = lightgbm.train({}, data)\n",
        "model": "import keras\nmodel = keras.Sequential([])\nmodel.fit(x, y)\n",
        "pipe": "from sklearn.pipeline import make_pipeline, Pipeline\npipe = Pipeline([])\npipe.fit(X, y)\n",
    }
    for i, (expected, source) in enumerate(cases.items()):
        assert _variable(tmp_path / str(i), source) == expected, source


def test_no_model_variable_when_the_model_is_not_trained_in_place_or_not_global(tmp_path: Path) -> None:
    cases = [
        # keras driven by a stateless jax loop: the model object keeps its initial weights
        "import jax, keras\nmodel = keras.Sequential([])\ngrad_fn = jax.value_and_grad(loss_fn)\n",
        # an estimator built but never fitted (another object is)
        "from sklearn.linear_model import Ridge\nm = Ridge()\nother.fit(X, y)\n",
        # the model lives inside main(): nothing global is left when the script ends
        "import torch\ndef main():\n    fc = torch.nn.Linear(1, 1)\n    loss.backward()\nmain()\n",
        # two trained models: which one to keep is the user's call
        "import torch\na = torch.nn.Linear(1, 1)\nb = torch.nn.Linear(1, 1)\nloss.backward()\n",
        # torch.nn.functional is not a module constructor
        "import torch\nact = torch.nn.functional.relu(x)\nloss.backward()\n",
    ]
    for i, source in enumerate(cases):
        assert _variable(tmp_path / str(i), source) is None, source


def test_init_writes_the_model_variable_and_says_why(tmp_path: Path) -> None:
    write(tmp_path, {"main.py": TORCH_IN_PLACE, "plot.py": "import torch\nloss.backward()\n"})
    found = find_train_command(tmp_path)
    assert (found.value, found.model_variable) == ("python main.py", "fc")
    result = init(tmp_path)
    assert (result.config.train.command, result.config.train.model_variable) == ("python main.py", "fc")
    assert any("main.py (torch) trains fc in place and saves nothing, so train.model_variable: fc keeps it" in n
               and "the others: plot.py" in n for n in result.notes), result.notes
    assert "model_variable: fc" in (tmp_path / "dockyard.yaml").read_text()
