"""The JSON Schema of dockyard.yaml: generated from the pydantic model, shipped, named by init."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from dockyard.config import json_schema, parse_config, shipped_schema
from dockyard.project import init

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(REPO.glob("examples/*/dockyard.yaml"))


def test_the_shipped_schema_is_the_one_the_model_generates() -> None:
    text = json.dumps(json_schema(), indent=2) + "\n"
    if os.environ.get("DOCKYARD_UPDATE_GOLDEN") == "1":
        shipped_schema().write_text(text, encoding="utf-8")
    assert shipped_schema().read_text(encoding="utf-8") == text, "stale: run `python -m dockyard.schema`"
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_every_example_config_is_valid_under_the_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), json_schema())


@pytest.mark.parametrize(("text", "why"), [
    ("name: a\nsurve: {}\n", "Additional properties"),
    ("name: a\npython: 3.10\n", "is not of type 'string'"),
    ("name: a\nresources:\n  memory: lots\n", "'lots' does not match"),
    ("name: a\nframework: sklearn\n", "is not one of"),
    ("name: A B\n", "does not match"),
])
def test_the_schema_rejects_what_the_loader_rejects(text: str, why: str) -> None:
    with pytest.raises(jsonschema.ValidationError, match=why):
        jsonschema.validate(yaml.safe_load(text), json_schema())
    with pytest.raises(Exception):  # noqa: B017 - the loader's ConfigError; here only agreement matters
        parse_config(text)


@pytest.mark.parametrize("memory", ["1.5g", "2G", "512Mi", 1073741824])
def test_the_schema_accepts_the_memory_amounts_docker_accepts(memory: object) -> None:
    jsonschema.validate({"name": "a", "resources": {"memory": memory}}, json_schema())
    parse_config(f"name: a\nresources:\n  memory: {memory}\n")


def test_init_names_the_schema_on_the_first_line_for_editors(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    res = init(tmp_path, name="demo")
    first = res.path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=.dockyard/dockyard.schema.json"
    schema = json.loads((tmp_path / ".dockyard" / "dockyard.schema.json").read_text())
    assert schema == json_schema()
    jsonschema.validate(yaml.safe_load(res.path.read_text()), schema)
    assert parse_config(res.path.read_text()).name == "demo"
