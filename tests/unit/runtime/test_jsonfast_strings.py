"""jsonfast's string pattern runs on every Python an image can have (3.10 has no possessive `*+`),
matches exactly what the possessive pattern it replaced matched, and stays linear on hostile input."""

from __future__ import annotations

import random
import re
import sys

import pytest

from dockyard.runtime import jsonfast
from dockyard.runtime.jsonfast import JsonError, check_depth

POSSESSIVE = rb'"(?:[^"\\]|\\.?)*+(?:"|\Z)'  # the 3.11+ original: the reference


def _cases() -> list[bytes]:
    rng = random.Random(11)
    alphabet = b'"\\ab[{]}\n'
    out = [b"", b'"', b'"\\', b'"\\"', b'"a\\\\"b"', b'x"\\\n"', b'"unterminated \\', b'["a\\"]",{"b":"]"}]']
    out += [bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))) for _ in range(3000)]
    return out


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the reference pattern needs Python 3.11's possessive repeat")
def test_string_pattern_matches_what_the_possessive_one_matched() -> None:
    reference = re.compile(POSSESSIVE, re.S)
    for raw in _cases():
        assert [m.span() for m in jsonfast._STRING.finditer(raw)] == [m.span() for m in reference.finditer(raw)], raw
        assert jsonfast._STRING.sub(b"", raw) == reference.sub(b"", raw)


def test_string_pattern_uses_nothing_python_3_10_lacks() -> None:
    assert "*+" not in jsonfast._STRING.pattern.decode() and "(?>" not in jsonfast._STRING.pattern.decode()


def test_brackets_inside_strings_do_not_count_towards_depth_and_hostile_strings_stay_cheap() -> None:
    check_depth(b'{"a": "' + b"[" * 10_000 + b'"}')  # brackets in a string: not nesting
    check_depth(b'["' + b"\\" * 200_001 + b'"]')  # a long run of backslashes: one linear pass
    with pytest.raises(JsonError):
        check_depth(b"[" * 10_000 + b"]" * 10_000)
