"""dockyard.yaml validation: every error names the key path and the line, and says how to fix it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.config import ProjectConfig, load_config, parse_config
from dockyard.errors import ConfigError

MINIMAL = "name: demo\n"


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="dockyard.yaml")
    return info.value


def test_minimal_config_gets_documented_defaults() -> None:
    config = parse_config(MINIMAL, source="dockyard.yaml")

    assert isinstance(config, ProjectConfig)
    assert config.name == "demo"
    assert config.python == "3.11"
    assert config.framework is None
    assert config.gpu.enabled is False
    assert config.serve.port == 8080
    assert config.resources.cpus == 2.0
    assert config.resources.memory == "2g"


def test_full_config_round_trips_every_section() -> None:
    text = """\
name: shop-ranker
python: "3.12"
framework: torch
framework_version: "2.5.1"
dependencies:
  file: requirements.txt
  kind: requirements
system_packages: [libgomp1, "curl=7.88.1-10"]
gpu:
  enabled: true
  cuda: "12.4"
serve:
  predictor: src/predict.py:Predictor
  port: 9000
resources:
  cpus: 0.5
  memory: 512m
env:
  HF_HOME: /tmp/hf
build_secrets:
  - id: hf_token
    env: HF_TOKEN
"""
    config = parse_config(text)

    assert config.python == "3.12"
    assert config.system_packages == ("libgomp1", "curl=7.88.1-10")
    assert config.gpu.cuda == "12.4"
    assert config.serve.predictor == "src/predict.py:Predictor"
    assert config.resources.cpus == 0.5
    assert config.env == {"HF_HOME": "/tmp/hf"}
    assert config.build_secrets[0].env == "HF_TOKEN"


# (case, yaml text, expected "file:line: key.path" prefix, words the message must contain)
BAD_CONFIGS = [
    ("unknown nested key", "name: a\nresources:\n  cpu: 2\n", "dockyard.yaml:3: resources.cpu:", ["unknown key", "cpus", "memory", "pids"]),
    ("unknown top-level key", "name: a\nframwork: torch\n", "dockyard.yaml:2: framwork:", ["unknown key", "framework", "serve"]),
    ("unknown key in a list item", "name: a\nbuild_secrets:\n  - id: x\n    file: f\n", "dockyard.yaml:4: build_secrets.0.file:", ["unknown key", "src", "env"]),
    ("wrong type", "name: a\nresources:\n  cpus: lots\n", "dockyard.yaml:3: resources.cpus:", ["number"]),
    ("zero cpus", "name: a\nresources:\n  cpus: 0\n", "dockyard.yaml:3: resources.cpus:", ["greater than 0"]),
    ("negative cpus", "name: a\nresources:\n  cpus: -1\n", "dockyard.yaml:3: resources.cpus:", ["greater than 0"]),
    ("bad memory string", "name: a\nresources:\n  memory: 2 gigs\n", "dockyard.yaml:3: resources.memory:", ["512m", "1.5g", "2G"]),
    ("port out of range", "name: a\nserve:\n  port: 70000\n", "dockyard.yaml:3: serve.port:", ["65535"]),
    ("predictor without file:Class", "name: a\nserve:\n  predictor: predict.Predictor\n", "dockyard.yaml:3: serve.predictor:", ["predict.py:Predictor"]),
    ("predictor and model", "name: a\nserve:\n  predictor: predict.py:P\n  model: m.joblib\n", "dockyard.yaml:4: serve.model:", ["not both"]),
    ("secret with src and env", "name: a\nbuild_secrets:\n  - id: x\n    src: f\n    env: E\n", "dockyard.yaml:5: build_secrets.0.env:", ["src", "env", "not both"]),
    ("secret with neither", "name: a\nbuild_secrets:\n  - id: x\n", "dockyard.yaml:3: build_secrets.0:", ["exactly one of src", "env"]),
    ("bad env var name", "name: a\nenv:\n  OK: x\n  1BAD: y\n", "dockyard.yaml:4: env.1BAD:", ["'1BAD'", "environment variable name"]),
    ("bad system package", "name: a\nsystem_packages:\n  - libgomp1\n  - Bad_Pkg\n", "dockyard.yaml:4: system_packages.1:", ["'Bad_Pkg'", "Debian package"]),
    ("unknown framework", "name: a\nframework: pytorch\n", "dockyard.yaml:2: framework:", ["'pytorch'", "torch", "scikit-learn"]),
    ("bad project name", "name: My Project\n", "dockyard.yaml:1: name:", ["pattern"]),
    ("python 3.10 read as a float", "name: a\npython: 3.10\n", "dockyard.yaml:2: python:", ["3.1", "quote", 'python: "3.10"']),
    ("python as an integer", "name: a\npython: 3\n", "dockyard.yaml:2: python:", ["number", "quote"]),
]


@pytest.mark.parametrize(("case", "text", "where", "words"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_invalid_config_names_key_path_and_line(case: str, text: str, where: str, words: list[str]) -> None:
    error = _error(text)

    assert error.problem.startswith(where), error.problem
    for word in words:
        assert word in error.problem, (word, error.problem)
    assert error.fix, "every config error carries a fix"
    assert error.exit_code == 1


def test_unknown_key_lists_every_allowed_key_of_its_section() -> None:
    error = _error("name: a\ngpu:\n  cuda_version: '12.4'\n")

    allowed = re.search(r"allowed: (.*)\)", error.problem)
    assert allowed is not None, error.problem
    assert allowed.group(1).split(", ") == ["cuda", "devel", "enabled"]


def test_several_errors_report_the_first_and_count_the_rest() -> None:
    error = _error("name: a\nresources:\n  cpus: 0\n  pids: 1\n")

    assert error.problem.startswith("dockyard.yaml:3: resources.cpus:")
    assert "(+1 more)" in error.problem


def test_missing_required_name_is_named() -> None:
    error = _error("python: '3.11'\n")

    assert "name" in error.problem
    assert "required" in error.problem.lower()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("name: a\nserve:\n  port: [1\n", 4),  # unclosed flow sequence: reported where the parser gave up
        ("name: a\n  bad: indent\n", 2),
        ("name: a\nenv: {A: 1\nb: 2\n", 3),
    ],
)
def test_invalid_yaml_syntax_names_the_line(text: str, line: int) -> None:
    error = _error(text)

    assert error.problem.startswith(f"dockyard.yaml:{line}: not valid YAML"), error.problem
    assert "YAML" in error.fix


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_top_level_must_be_a_mapping(text: str) -> None:
    error = _error(text)

    assert "mapping" in error.problem


def test_error_uses_the_given_source_name() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("name: a\nbogus: 1\n", source="/srv/proj/dockyard.yaml")

    assert info.value.problem.startswith("/srv/proj/dockyard.yaml:2: bogus:")


def test_load_config_without_file_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)

    assert "no dockyard.yaml" in info.value.problem
    assert "dockyard init" in info.value.fix


def test_load_config_reports_errors_against_the_file_path(tmp_path: Path) -> None:
    (tmp_path / "dockyard.yaml").write_text("name: a\nserve:\n  port: 0\n")

    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)

    assert info.value.problem.startswith(f"{tmp_path / 'dockyard.yaml'}:3: serve.port:")


def test_config_hash_is_stable_across_key_order() -> None:
    a = parse_config("name: a\npython: '3.12'\nresources:\n  cpus: 1\n  memory: 1g\nenv:\n  X: '1'\n  Y: '2'\n")
    b = parse_config("env:\n  Y: '2'\n  X: '1'\nresources:\n  memory: 1g\n  cpus: 1\npython: '3.12'\nname: a\n")

    assert a.config_hash() == b.config_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", a.config_hash())


def test_config_hash_changes_with_the_config() -> None:
    a = parse_config("name: a\n")
    b = parse_config("name: a\nresources:\n  cpus: 3\n")

    assert a.config_hash() != b.config_hash()


def test_explicit_defaults_hash_like_omitted_defaults() -> None:
    # The hash is of the effective config, so spelling out a default changes nothing.
    assert parse_config("name: a\n").config_hash() == parse_config("name: a\npython: '3.11'\n").config_hash()
