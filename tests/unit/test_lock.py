"""The lock file's header, the minimal dockyard.yaml edit, and stale-lock detection (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.config import load_config
from dockyard.errors import ConfigError
from dockyard.lock import (
    LockHeader,
    check_frozen,
    file_digest,
    input_files,
    lock_hash,
    locked_packages,
    parse_header,
    render_header,
    set_lock_in_config,
    unhashed_requirements,
)

CONFIG = """\
# my project: keep this comment
name: demo
python: '3.11'
dependencies:   # where deps come from
  file: requirements.txt
  kind: requirements

# serving
serve:
  predictor: predict.py:Predictor
"""


def test_lock_is_added_inside_the_dependencies_block_keeping_comments() -> None:
    out = set_lock_in_config(CONFIG)
    assert out == CONFIG.replace("  kind: requirements\n", "  kind: requirements\n  lock: requirements.lock\n")


def test_an_existing_lock_entry_is_replaced_in_place() -> None:
    text = CONFIG.replace("  kind: requirements\n", "  lock: old.lock  # pinned\n  kind: requirements\n")
    out = set_lock_in_config(text, "requirements.lock")
    assert "  lock: requirements.lock  # pinned\n  kind: requirements\n" in out
    assert out.count("lock:") == 1


def test_a_config_without_dependencies_gets_a_block() -> None:
    out = set_lock_in_config("name: demo\npython: '3.11'")
    assert out == "name: demo\npython: '3.11'\ndependencies:\n  lock: requirements.lock\n"


def test_an_inline_dependencies_mapping_is_refused_rather_than_mangled() -> None:
    with pytest.raises(ConfigError, match="inline"):
        set_lock_in_config("name: demo\ndependencies: {file: requirements.txt}\n")


def test_header_round_trips() -> None:
    header = LockHeader("3.11", (("requirements.txt", "sha256:ab"), ("sub dir/extra.txt", "sha256:cd")),
                        (("dockyard/python:3.11-slim", "sha256:ef"),))
    assert parse_header(render_header(header) + "joblib==1.4.2 \\\n    --hash=sha256:00\n") == header


def test_a_lock_not_written_by_dockyard_is_refused() -> None:
    with pytest.raises(ConfigError, match="not written by `dockyard lock`"):
        parse_header("joblib==1.4.2\n")


def test_requirements_without_hashes_are_found() -> None:
    text = ("--extra-index-url https://download.pytorch.org/whl/cpu\n"
            "joblib==1.4.2 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n"
            "-e ./local_pkg\n"
            "six==1.16.0 ; python_version >= '3' \\\n    --hash=sha256:cc\n")
    assert unhashed_requirements(text) == ["-e ./local_pkg"]
    assert locked_packages(text) == ("joblib==1.4.2", "six==1.16.0")


def _project(tmp_path: Path, requirements: str = "joblib>=1.3\n") -> Path:
    (tmp_path / "dockyard.yaml").write_text(set_lock_in_config(CONFIG))
    (tmp_path / "predict.py").write_text("class Predictor:\n    def predict(self, x: float) -> float:\n        return x\n")
    (tmp_path / "requirements.txt").write_text(requirements)
    return tmp_path


def _write_lock(project: Path, python: str = "3.11") -> None:
    inputs = tuple((f, file_digest(project / f)) for f in input_files(project, load_config(project)))
    header = LockHeader(python, inputs, ())
    (project / "requirements.lock").write_text(render_header(header) + "joblib==1.4.2 \\\n    --hash=sha256:00\n")


def test_input_files_follow_nested_requirement_includes(tmp_path: Path) -> None:
    project = _project(tmp_path, "-r base.txt\njoblib\n")
    (tmp_path / "base.txt").write_text("-c constraints/pins.txt\nsix\n")
    (tmp_path / "constraints").mkdir()
    (tmp_path / "constraints" / "pins.txt").write_text("six==1.16.0\n")
    assert input_files(project, load_config(project)) == ["requirements.txt", "base.txt", "constraints/pins.txt"]


def test_a_changed_requirements_file_is_named(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _write_lock(project)
    (project / "requirements.txt").write_text("joblib>=1.3\nsix\n")
    with pytest.raises(ConfigError) as info:
        check_frozen(project)
    assert info.value.problem == "requirements.txt changed since requirements.lock was written"
    assert info.value.fix == "run `dockyard lock`"


def test_a_changed_included_file_is_named(tmp_path: Path) -> None:
    project = _project(tmp_path, "-r base.txt\n")
    (tmp_path / "base.txt").write_text("six\n")
    _write_lock(project)
    (tmp_path / "base.txt").write_text("six==1.17.0\n")
    with pytest.raises(ConfigError, match="^base.txt changed since"):
        check_frozen(project)


def test_a_python_change_makes_the_lock_stale(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _write_lock(project, python="3.12")
    with pytest.raises(ConfigError, match="asks for Python 3.11 but requirements.lock was locked for 3.12"):
        check_frozen(project)


def test_a_missing_lock_file_says_to_run_lock(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        check_frozen(project)


def test_lock_hash_is_the_short_sha256_of_the_lock_file(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert lock_hash(project) is None
    _write_lock(project)
    assert lock_hash(project) == file_digest(project / "requirements.lock")[7:23]
