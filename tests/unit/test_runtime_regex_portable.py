"""The runtime ships in images for every Python dockyard builds (3.10-3.13), so its regular
expressions must compile on 3.10: no possessive quantifiers (`*+`) or atomic groups (`(?>`), which
arrived in 3.11. jsonfast's string pattern used `*+` and every 3.10 serving image failed to start
(found by the real-world corpus: iris-classification, runtime.txt python-3.10)."""

from __future__ import annotations

import ast
import random
import re
import sys
from pathlib import Path

import pytest

from dockyard.runtime import jsonfast

RUNTIME = Path(jsonfast.__file__).parent
_CLASS = re.compile(r"\[(?:\\.|[^\]\\])*\]")  # a character class, where `+` is a plain character
_ESCAPE = re.compile(r"\\.")


def _patterns() -> list[tuple[str, str]]:
    """(file:line, pattern) for every re.compile/search/match/... call with a literal pattern."""
    found = []
    for path in sorted(RUNTIME.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, (str, bytes))):
                value = node.args[0].value
                text = value.decode("latin-1") if isinstance(value, bytes) else value
                found.append((f"{path.name}:{node.lineno}", text))
    return found


def _py311_only(pattern: str) -> bool:
    bare = _CLASS.sub("x", _ESCAPE.sub("x", pattern))
    return "(?>" in bare or re.search(r"[*+?}]\+", bare) is not None


def test_the_scan_sees_the_runtime_patterns_and_would_catch_a_possessive_one() -> None:
    patterns = _patterns()
    assert len(patterns) >= 5 and any(where.startswith("jsonfast.py") for where, _ in patterns)
    assert _py311_only(r'"(?:[^"\\]|\\.?)*+(?:"|\Z)') and _py311_only(r"(?>ab)c")
    assert not _py311_only(r"[*+\-.^_`|~0-9A-Za-z]+") and not _py311_only(r"a\++b")


def test_no_runtime_regex_needs_python_3_11() -> None:
    offending = [where for where, pattern in _patterns() if _py311_only(pattern)]
    assert offending == [], f"possessive quantifier or atomic group (Python 3.11+) at {offending}"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the reference pattern is possessive (3.11+)")
def test_string_pattern_matches_what_the_possessive_one_did() -> None:
    reference = re.compile(rb'"(?:[^"\\]|\\.?)*+(?:"|\Z)', re.S)
    rnd = random.Random(11)
    alphabet = [b'"', b"\\", b"a", b"[", b"]", b"{", b"}", b"\n", b"\xff", b","]
    for _ in range(20_000):
        raw = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24)))
        assert jsonfast._STRING.sub(b"", raw) == reference.sub(b"", raw), raw


def test_depth_check_still_ignores_brackets_inside_strings() -> None:
    deep = b"[" * (jsonfast.MAX_DEPTH + 1) + b"]" * (jsonfast.MAX_DEPTH + 1)
    with pytest.raises(jsonfast.JsonError, match="nested more than"):
        jsonfast.check_depth(deep)
    quoted = b'["' + b"[" * (jsonfast.MAX_DEPTH * 2) + b'\\"", 1]'
    jsonfast.check_depth(quoted)  # brackets in a string (with an escaped quote) are not nesting
    unterminated = b"[" * (jsonfast.MAX_DEPTH + 1) + b'"' + b"\\" * 100_001
    jsonfast.check_depth(unterminated)  # an unterminated string of escapes: linear, left to the parser
