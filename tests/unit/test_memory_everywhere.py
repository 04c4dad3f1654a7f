"""One memory parser: "1.5g" and "2G" mean what docker means in every place that takes an amount."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.config import parse_config
from dockyard.deploy import DeploySpec, swarm
from dockyard.deploy.kubernetes import memory_quantity
from dockyard.deploy import DeploySpecError
from dockyard.errors import ConfigError, UsageError
from dockyard.runtime.contract import parse_memory
from dockyard.train import train

GIB = 1 << 30
CASES = [("1.5g", 3 * GIB // 2), ("2G", 2 * GIB), ("2g", 2 * GIB), ("2Gi", 2 * GIB), ("512m", 512 << 20)]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_every_reader_agrees_with_docker(text: str, expected: int) -> None:
    assert parse_memory(text) == expected
    cfg = parse_config(f"name: x\nresources:\n  memory: {text}\n")
    assert parse_memory(cfg.resources.memory) == expected
    assert swarm.parse_memory(text) == expected
    assert DeploySpec(name="x", image="x:1", memory=text).memory_bytes == expected
    assert parse_memory(memory_quantity(text)) == expected  # Kubernetes gets the same bytes, as Mi/Gi


@pytest.mark.parametrize("text", ["lots", "2x", "0m", "-1g"])
def test_every_reader_refuses_the_same_bad_amounts(text: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="resources.memory"):
        parse_config(f"name: x\nresources:\n  memory: {text}\n")
    with pytest.raises(DeploySpecError):
        swarm.parse_memory(text)
    with pytest.raises(DeploySpecError, match="memory"):
        DeploySpec(name="x", image="x:1", memory=text)
    (tmp_path / "dockyard.yaml").write_text("name: x\ntrain:\n  command: python t.py\n")
    with pytest.raises(UsageError, match=f"bad --memory '{text}'"):
        train(tmp_path, None, memory=text)  # type: ignore[arg-type]  # refused before any engine call
