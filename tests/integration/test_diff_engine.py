"""`dockyard diff A B` on real builds: packages read from the layers, layer sizes, config, metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import project
from dockyard.engine import TEST_LABEL, Engine
from dockyard.errors import UsageError
from dockyard.imagediff import Change, diff, render_text

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry" / "tiny"


@pytest.fixture(scope="module")
def two_builds(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The tiny project built twice, the second with joblib 1.5.1 instead of 1.4.2."""
    tags = []
    for joblib in ("1.4.2", "1.5.1"):
        dest = tmp_path_factory.mktemp(f"joblib-{joblib}") / "tiny"
        shutil.copytree(FIXTURE, dest)
        (dest / "requirements.txt").write_text(f"joblib=={joblib}\nnumpy==2.2.6\n")
        tag = f"dockyard-test-diff-{uuid.uuid4().hex[:8]}:{joblib}"
        project.build(dest, engine, tag=tag, target="serve")
        tags.append(tag)
    yield tags[0], tags[1]
    for tag in tags:
        engine.remove_image(tag, force=True)


def test_builds_differing_in_one_package_show_exactly_that_package(engine: Engine, two_builds: tuple[str, str]) -> None:
    a, b = two_builds
    d = diff(engine, a, b)
    assert d.packages == (Change("joblib", "1.4.2", "1.5.1"),)
    assert d.config == () and d.metrics == ()
    grown = [layer for layer in d.layers if layer.before and layer.after]
    assert len(grown) == 1 and "/opt/venv" in grown[0].step  # only the dependency layer changed
    text = render_text(d)
    assert "~ joblib 1.4.2 -> 1.5.1" in text

    out = subprocess.run([sys.executable, "-m", "dockyard", "diff", a, b, "--json"], check=False, capture_output=True, text=True,
                         timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["packages"] == [{"key": "joblib", "before": "1.4.2", "after": "1.5.1"}]


def test_config_and_metric_changes_are_reported(engine: Engine, two_builds: tuple[str, str], tmp_path: Path, unique_tag: str) -> None:
    a, _ = two_builds
    (tmp_path / "Dockerfile").write_text(f"FROM {a}\nENV DOCKYARD_WORKERS=4\nUSER 10002:10002\n")
    engine.build(tmp_path, tmp_path / "Dockerfile", unique_tag,
                 labels={TEST_LABEL: "1", "io.dockyard.metrics.accuracy": "0.93"})
    d = diff(engine, a, unique_tag)
    assert d.packages == ()
    assert Change("Env.DOCKYARD_WORKERS", "1", "4") in d.config
    assert Change("User", "10001:10001", "10002:10002") in d.config
    assert d.metrics == (Change("accuracy", None, "0.93"),)
    assert any(c.key == TEST_LABEL for c in d.labels)


def test_same_image_diff_says_nothing_differs(engine: Engine, two_builds: tuple[str, str]) -> None:
    a, _ = two_builds
    d = diff(engine, a, engine.image_id(a))
    assert d.identical and d.packages == () and d.layers == ()
    assert "nothing differs" in render_text(d)


def test_unknown_image_is_a_clear_user_error(engine: Engine, two_builds: tuple[str, str]) -> None:
    with pytest.raises(UsageError, match="no local image 'dockyard-test-absent:0'"):
        diff(engine, two_builds[0], "dockyard-test-absent:0")
