"""uv.lock: the runtime closure of the project, dev groups excluded."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.detect import DetectError
from dockyard.detect.uvlock import UvLock, read_uv_lock

LOCK = """\
version = 1
requires-python = ">=3.10"

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "requests", extra = ["socks"] },
    { name = "numpy", version = "2.0.0", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version >= '3.12'" },
    { name = "numpy", version = "1.26.4", source = { registry = "https://pypi.org/simple" }, marker = "python_full_version < '3.12'" },
    { name = "mylib" },
]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "mylib"
version = "0.2.0"
source = { directory = "libs/mylib" }

[[package]]
name = "numpy"
version = "1.26.4"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "numpy"
version = "2.0.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pysocks"
version = "1.7.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pytest"
version = "8.2.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "requests"
version = "2.32.3"
source = { registry = "https://pypi.org/simple" }

[package.optional-dependencies]
socks = [{ name = "pysocks" }]
"""


def read(tmp_path: Path, text: str, *, with_pyproject: bool = True) -> UvLock:
    (tmp_path / "uv.lock").write_text(text)
    if with_pyproject:
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0.1.0"\n')
    return read_uv_lock(tmp_path / "uv.lock", tmp_path)


def test_closure_follows_extras_and_forks_but_not_dev_groups_or_local_packages(tmp_path: Path) -> None:
    lock = read(tmp_path, LOCK)
    assert lock.requirements == ("numpy==1.26.4", "numpy==2.0.0", "pysocks==1.7.1", "requests==2.32.3")
    assert lock.requires_python == ">=3.10"
    assert lock.warnings == ()


def test_lock_without_project_entry_lists_every_package(tmp_path: Path) -> None:
    text = 'version = 1\n[[package]]\nname = "a"\nversion = "1"\nsource = { registry = "x" }\n'
    lock = read(tmp_path, text)
    assert lock.requirements == ("a==1",)
    assert "every locked package" in lock.reasons[0].why


def test_lock_without_pyproject_warns_that_uv_sync_needs_both(tmp_path: Path) -> None:
    lock = read(tmp_path, LOCK, with_pyproject=False)
    assert any("no pyproject.toml" in w for w in lock.warnings)


def test_malformed_lock_is_an_error_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(DetectError) as err:
        read(tmp_path, 'version = 1\npackage = "oops"\n')
    assert "uv lock" in err.value.fix
