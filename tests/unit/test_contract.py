"""The image contract: memory/CPU amounts read exactly as docker reads them, one model-format registry."""

from __future__ import annotations

import pytest

from dockyard.runtime import contract
from dockyard.runtime.contract import AmountError, format_memory, parse_cpus, parse_memory


@pytest.mark.parametrize(("text", "expected"), [
    ("2G", 2 << 30), ("2g", 2 << 30), ("2GB", 2 << 30), ("2GiB", 2 << 30), ("2gib", 2 << 30),
    ("1.5g", 3 << 29), ("512m", 512 << 20), ("512M", 512 << 20), ("1073741824", 1 << 30),
    ("64k", 64 << 10), ("1t", 1 << 40), ("100b", 100), (4096, 4096), ("512Mi", 512 << 20), ("2Gi", 2 << 30),
])
def test_memory_amounts_read_as_docker_reads_them(text: str | int, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("bad", ["", "g", "2x", "-1g", "0", "0m", "1,5g", "ib", "5i", True, 0, -5, 1.5])
def test_bad_memory_amounts_name_the_value_and_the_fix(bad: object) -> None:
    with pytest.raises(AmountError) as info:
        parse_memory(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value) and "512m" in str(info.value)


def test_format_memory_round_trips() -> None:
    for amount in (1 << 30, 3 << 29, 512 << 20, 12345):
        assert parse_memory(format_memory(amount)) == amount
    assert format_memory(3 << 29) == "1536m"


@pytest.mark.parametrize(("value", "expected"), [(2, 2.0), ("0.5", 0.5), ("500m", 0.5), (1.25, 1.25)])
def test_cpus(value: object, expected: float) -> None:
    assert parse_cpus(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, "0", "abc", float("nan"), True, "-1"])
def test_bad_cpus(bad: object) -> None:
    with pytest.raises(AmountError):
        parse_cpus(bad)  # type: ignore[arg-type]


def test_every_suffix_names_one_format() -> None:
    seen = [s for f in contract.MODEL_FORMATS for s in f.suffixes]
    assert len(seen) == len(set(seen))
    assert contract.model_format("model.TXT").framework == "lightgbm"  # type: ignore[union-attr]
    assert contract.model_format("m.json").loader == "xgboost"  # type: ignore[union-attr]
    assert contract.model_format("README") is None
    assert ".txt" in contract.SERVABLE_SUFFIXES and ".pkl" in contract.PICKLE_SUFFIXES
    assert ".onnx" not in contract.PICKLE_SUFFIXES
