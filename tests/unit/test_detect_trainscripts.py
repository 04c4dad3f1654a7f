"""Content-based train entry points for example collections (issue 11, bug 10)."""

from __future__ import annotations

from pathlib import Path

from dockyard.detect import detect
from dockyard.detect.entrypoints import find_train_command
from dockyard.detect.trainscripts import training_candidates
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
