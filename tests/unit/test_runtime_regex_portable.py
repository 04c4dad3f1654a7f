"""The runtime ships in images for every Python dockyard builds (3.10-3.13), so its regular
expressions must compile on 3.10: no possessive quantifiers (`*+`) or atomic groups (`(?>`), which
arrived in 3.11. jsonfast's string pattern used `*+` and every 3.10 serving image failed to start
(found by the real-world corpus: iris-classification, runtime.txt python-3.10). The pattern's
own behaviour is tested in tests/unit/runtime/test_jsonfast_strings.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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
