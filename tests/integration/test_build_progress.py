"""Build progress: BuildKit's live display on a terminal, plain lines otherwise (CI, --json)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from dockyard.engine import TEST_LABEL, Engine, TerminalProgress
from dockyard.errors import BuildError


def _context(tmp_path: Path, run: str) -> Path:
    (tmp_path / "Dockerfile").write_text(f"FROM dockyard/python:3.11-slim\nRUN {run}\n")
    return tmp_path


def test_a_terminal_gets_buildkits_live_display_and_plain_lines_stay_for_pipes(engine: Engine, tmp_path: Path,
                                                                               unique_tag: str) -> None:
    marker = uuid.uuid4().hex
    ctx = _context(tmp_path, f"echo {marker}")
    raw: list[bytes] = []
    lines: list[str] = []
    res = engine.build(ctx, ctx / "Dockerfile", unique_tag, labels={TEST_LABEL: "1"},
                       on_line=TerminalProgress(lines.append, raw.append, (120, 40)))
    shown = b"".join(raw).decode(errors="replace")
    assert res.image_id.startswith("sha256:") and engine.image_id(unique_tag) == res.image_id
    assert "[+] Building" in shown and "\x1b[" in shown, "the tty display, with cursor movement"
    assert lines == [], "nothing goes through the line printer on a terminal"

    plain: list[str] = []
    engine.build(ctx, ctx / "Dockerfile", unique_tag, labels={TEST_LABEL: "1"}, no_cache=True, on_line=plain.append)
    assert any(line.startswith("#1 ") for line in plain) and not any("\x1b[" in line for line in plain)
    assert any(marker in line for line in plain)


def test_a_failed_build_on_a_terminal_still_names_the_error(engine: Engine, tmp_path: Path, unique_tag: str) -> None:
    ctx = _context(tmp_path, "echo no-such-luck && exit 7")
    raw: list[bytes] = []
    with pytest.raises(BuildError) as info:
        engine.build(ctx, ctx / "Dockerfile", unique_tag, on_line=TerminalProgress(print, raw.append))
    assert "exit code: 7" in info.value.problem or "exit code: 7" in (info.value.log_tail or "")
    assert "\x1b[" not in info.value.problem
    assert "build failed at step [2/2] RUN echo no-such-luck && exit 7" in info.value.problem
