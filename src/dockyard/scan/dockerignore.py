"""``.dockerignore`` matching with Docker's semantics (later rules win, ``!`` re-includes,
``**`` spans directories, a matching directory excludes everything below it)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool


def _translate(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.find("]", i)
            if end == -1:
                out += re.escape(ch)
            else:
                body = pattern[i + 1:end].replace("\\", "\\\\")
                out += "[" + ("^" + body[1:] if body.startswith("!") else body) + "]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + r"\Z")


@dataclass(frozen=True)
class DockerIgnore:
    rules: tuple[_Rule, ...]

    @staticmethod
    def parse(text: str) -> DockerIgnore:
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line[1:].strip() if negate else line
            line = posixpath.normpath(line.lstrip("/")) if line.strip("/") else ""
            if line:
                rules.append(_Rule(_translate(line), negate))
        return DockerIgnore(tuple(rules))

    @staticmethod
    def for_context(context: Path) -> DockerIgnore:
        path = context / ".dockerignore"
        return DockerIgnore.parse(path.read_text("utf-8", "replace")) if path.is_file() else DockerIgnore(())

    def excluded(self, relpath: str) -> bool:
        """Would ``relpath`` (relative, with /) be left out of the build context?"""
        parts = relpath.strip("/").split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for rule in self.rules:
            if any(rule.regex.match(p) for p in prefixes):
                result = not rule.negate
        return result
