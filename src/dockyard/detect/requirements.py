"""pip requirements files: ``requirements.txt`` and friends, including ``-r`` includes.

The result keeps three things apart because the build needs each differently:

* ``requirements``: PEP 508 strings with normalised names (what will be installed);
* ``options``: index options (``--index-url``, ``--extra-index-url``, ``--find-links``, ...), kept
  because CPU-only torch wheels come from an extra index;
* ``hash_locked``: the file pins ``--hash=`` digests, so the build must install it as-is.

The same line parser reads the ``pip:`` list of a conda environment and the ``dependencies`` of an
MLflow ``python_env.yaml``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from dockyard.errors import DetectError

from ._files import Reason, read_text, rel

# Options that apply to the whole install; value-taking ones first.
_INDEX_OPTIONS_WITH_VALUE = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--no-binary": "--no-binary",
    "--only-binary": "--only-binary",
}
_FLAG_OPTIONS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}
_INCLUDE = {"-r", "--requirement"}
_CONSTRAINT = {"-c", "--constraint"}
_EDITABLE = {"-e", "--editable"}
# pip strips a comment that starts a line or follows whitespace.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")
# A development/test file is the last resort when choosing among several requirements files.
_DEV_WORDS = re.compile(r"(^|[-_.])(dev|devel|develop|test|tests|testing|lint|docs?|ci|extra|optional)([-_.]|$)")
_MAIN_STEMS = ("base", "main", "prod", "production", "requirements", "common", "core", "runtime")
_MAX_INCLUDE_DEPTH = 10


@dataclass(frozen=True)
class RequirementsResult:
    """What one requirements file (and everything it includes) asks for."""

    requirements: tuple[str, ...]
    options: tuple[str, ...]
    hash_locked: bool
    files: tuple[str, ...]  # project-relative, in the order they were read
    warnings: tuple[str, ...]
    reasons: tuple[Reason, ...]


def normalise_requirement(text: str) -> str:
    """``Scikit_Learn>=1.4`` -> ``scikit-learn>=1.4``; raises InvalidRequirement."""
    req = Requirement(text)
    req.name = canonicalize_name(req.name)
    return str(req)


def names_distribution(lines: Iterable[str], name: str) -> bool:
    """Whether a requirement line names distribution ``name``, with any extras, version or marker
    (``uvicorn[standard]>=0.30`` names uvicorn, ``uvicorn-worker`` does not)."""
    return any(re.match(rf"\s*{re.escape(name)}(?![\w.-])", line, re.IGNORECASE) for line in lines)


def specifier_for(requirements: Iterable[str], name: str) -> SpecifierSet | None:
    """What the PEP 508 strings ``requirements`` ask of distribution ``name``: the specifiers of the
    lines that name it, intersected; None when none does (unparseable lines are skipped)."""
    found: SpecifierSet | None = None
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == canonicalize_name(name):
            found = req.specifier if found is None else found & req.specifier
    return found


def find_requirements_files(project_dir: Path) -> list[Path]:
    """Requirements files in the project, best first.

    ``requirements.txt`` first; then files in ``requirements/`` and ``requirements-*.txt`` /
    ``requirements_*.txt`` with a "main" stem (base, prod, ...); then any other; files that look
    like dev/test/docs extras last, so ``requirements.txt`` beats ``requirements-dev.txt``.
    """
    found: list[Path] = []
    top = project_dir / "requirements.txt"
    if top.is_file():
        found.append(top)
    others = [p for p in project_dir.glob("requirements[-_]*.txt") if p.is_file()]
    sub = project_dir / "requirements"
    if sub.is_dir():
        others += [p for p in sub.glob("*.txt") if p.is_file()]
    return found + sorted(others, key=lambda p: (_rank(p), p.as_posix()))


def _rank(path: Path) -> int:
    stem = path.stem.lower()
    if stem.startswith("requirements") and stem != "requirements":
        stem = stem[len("requirements") + 1 :]
    if _DEV_WORDS.search(stem):
        return 2
    return 0 if stem in _MAIN_STEMS else 1


def is_dev_requirements(path: Path) -> bool:
    """True for files such as ``requirements-dev.txt`` or ``requirements/test.txt``."""
    return _rank(path) == 2


def parse_requirements_file(path: Path, project_dir: Path) -> RequirementsResult:
    """Parse a requirements file, following ``-r`` includes relative to the including file."""
    acc = _Accumulator(project_dir)
    acc.read_file(path, depth=0)
    return acc.result()


def parse_requirement_lines(
    lines: Iterable[tuple[int, str]], *, origin: str, base_dir: Path, project_dir: Path
) -> RequirementsResult:
    """Parse (line number, text) pairs that live inside another file (conda ``pip:``, python_env.yaml).

    ``origin`` names that file in messages; ``-r`` paths resolve against ``base_dir``.
    """
    acc = _Accumulator(project_dir)
    for number, line in lines:
        acc.parse_line(line, origin=origin, number=number, base_dir=base_dir, depth=0)
    return acc.result()


class _Accumulator:
    """Collects results across a file and its includes (mutable only while parsing)."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self.requirements: list[str] = []
        self.options: list[str] = []
        self.hash_locked = False
        self.files: list[str] = []
        self.warnings: list[str] = []
        self.reasons: list[Reason] = []
        self._seen: set[Path] = set()

    def result(self) -> RequirementsResult:
        return RequirementsResult(
            requirements=tuple(self.requirements),
            options=tuple(dict.fromkeys(self.options)),  # dedupe, keep order
            hash_locked=self.hash_locked,
            files=tuple(self.files),
            warnings=tuple(self.warnings),
            reasons=tuple(self.reasons),
        )

    def read_file(self, path: Path, depth: int) -> None:
        resolved = path.resolve()
        if resolved in self._seen:  # include cycles and diamonds: read each file once
            return
        name = rel(path, self.project_dir)
        if depth > _MAX_INCLUDE_DEPTH:
            raise DetectError(
                f"{name}: -r includes nest deeper than {_MAX_INCLUDE_DEPTH} files",
                "flatten the chain of -r includes",
            )
        self._seen.add(resolved)
        self.files.append(name)
        text = read_text(path, self.project_dir)
        for number, line in _logical_lines(text):
            self.parse_line(line, origin=name, number=number, base_dir=path.parent, depth=depth)

    def parse_line(self, raw: str, *, origin: str, number: int, base_dir: Path, depth: int) -> None:
        line = _COMMENT.sub("", raw).strip()
        if not line:
            return
        where = f"{origin}:{number}"
        if line.startswith("-"):
            self._option_line(line, where=where, base_dir=base_dir, depth=depth)
        else:
            self._requirement_line(line, where=where)

    def _option_line(self, line: str, *, where: str, base_dir: Path, depth: int) -> None:
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise DetectError(f"{where}: cannot split {line!r}: {exc}", "fix the quoting on that line") from None
        flag, value = _split_option(tokens)
        if flag in _INCLUDE or flag in _CONSTRAINT:
            if not value:
                raise DetectError(f"{where}: {flag} needs a file name", f"write '{flag} other.txt'")
            target = base_dir / value
            if not target.is_file():
                raise DetectError(
                    f"{where}: {flag} {value}: file not found ({rel(target, self.project_dir)})",
                    f"create {value} next to the including file, or remove the line",
                )
            if flag in _INCLUDE:
                self.read_file(target, depth + 1)
            else:
                # Constraints pin versions without adding packages: the build must pass them on.
                self.options.append(f"--constraint {rel(target, self.project_dir)}")
        elif flag in _EDITABLE:
            self._skip_local(value, where=where, editable=True)
        elif flag in _INDEX_OPTIONS_WITH_VALUE:
            if not value:
                raise DetectError(f"{where}: {flag} needs a value", f"write '{flag} VALUE' or remove the line")
            self.options.append(f"{_INDEX_OPTIONS_WITH_VALUE[flag]} {value}")
        elif flag in _FLAG_OPTIONS:
            if flag == "--require-hashes":
                self.hash_locked = True
            self.options.append(flag)
        else:
            raise DetectError(
                f"{where}: unsupported pip option {flag!r} in {line!r}",
                "remove the option; dockyard understands -r, -c, -e, --index-url, --extra-index-url, "
                "--find-links, --trusted-host, --pre, --no-binary, --only-binary, --require-hashes",
            )

    def _requirement_line(self, line: str, *, where: str) -> None:
        # Like pip: the requirement ends at the first token that starts with '-' (per-line options).
        tokens = line.split()
        cut = next((i for i, tok in enumerate(tokens) if tok.startswith("-")), len(tokens))
        text, per_line = " ".join(tokens[:cut]), tokens[cut:]
        if any(opt.startswith("--hash") for opt in per_line):
            self.hash_locked = True
        if _looks_local_or_url(text):
            self._url_or_path(text, where=where)
            return
        try:
            self.requirements.append(normalise_requirement(text))
        except InvalidRequirement as exc:
            raise DetectError(
                f"{where}: invalid requirement {text!r}: {exc}",
                "write it as a PEP 508 requirement such as 'numpy>=1.26', or remove the line",
            ) from None

    def _url_or_path(self, text: str, *, where: str) -> None:
        """Bare wheel URLs become ``name @ url``; local paths are the project's own code."""
        if "://" in text:
            filename = unquote(text.rsplit("/", 1)[-1].split("#", 1)[0])  # %2B is '+' in local versions
            try:
                name = parse_wheel_filename(filename)[0]
            except InvalidWheelFilename:
                egg = re.search(r"#egg=([A-Za-z0-9._-]+)", text)
                if egg is None:
                    raise DetectError(
                        f"{where}: cannot tell the package name of {text!r}",
                        "write it as 'NAME @ URL' (PEP 508)",
                    ) from None
                name = canonicalize_name(egg.group(1))
            self.requirements.append(f"{name} @ {text.split('#', 1)[0]}")
            return
        self._skip_local(text, where=where, editable=False)

    def _skip_local(self, value: str | None, *, where: str, editable: bool) -> None:
        value = value or "."
        what = f"-e {value}" if editable else value
        if "://" in value or value.startswith("git+"):
            self.warnings.append(
                f"{where}: editable VCS requirement {what!r} is not installed; pin it as 'NAME @ git+URL@REV' instead"
            )
            return
        if value.rstrip("/") not in (".", "./"):
            # A local wheel or folder: not expressible as a PEP 508 name, so say it is left out.
            self.warnings.append(
                f"{where}: local path requirement {what!r} is not in the requirement list; "
                "publish it to an index or write it as 'NAME @ file:///abs/path'"
            )
            return
        # '-e .' installs the project itself: dockyard copies the code into the image, and installs
        # it (editable, after the dependencies) when it is a package (setuptools.project_package).
        self.reasons.append(
            Reason(f"skipped {what!r}", f"{where}: the project itself; its code is copied into the image "
                   "(and installed there when it has a setup.py or a [build-system])")
        )


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Join backslash continuations; yield (first line number, joined line)."""
    buffer: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if line.endswith("\\") and not _COMMENT.search(line):
            buffer.append(line[:-1])
            continue
        buffer.append(line)
        yield start, " ".join(buffer)
        buffer = []
    if buffer:
        yield start, " ".join(buffer)


def _split_option(tokens: list[str]) -> tuple[str, str | None]:
    """``['--index-url=URL']``, ``['-i', 'URL']`` and ``['-rfile.txt']`` all become (flag, value)."""
    first = tokens[0]
    if first.startswith("--") and "=" in first:
        flag, value = first.split("=", 1)
        return flag, value
    if not first.startswith("--") and len(first) > 2:  # -rfile.txt
        return first[:2], first[2:]
    return first, (tokens[1] if len(tokens) > 1 else None)


def _looks_local_or_url(text: str) -> bool:
    if " @ " in text or "@" in text.split("://", 1)[0] and "://" in text:
        return False  # PEP 508 direct reference: 'name @ url'
    return "://" in text or text.startswith(("git+", ".", "/", "~")) or text.endswith(_ARCHIVE_SUFFIXES)
