"""Heuristics for secret-looking names, values and files, shared by lint, image audit and path scan.

Kept deliberately conservative on names (``TOKENIZERS_PARALLELISM`` is not a token) and strict on
values (known token prefixes, PEM private keys, high-entropy strings under a secret-looking name).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

# Name segments (split on _ - .) that mark a variable as holding a secret.
_SECRET_SEGMENTS = {"PASSWORD", "PASSWD", "PASS", "SECRET", "SECRETS", "TOKEN", "TOKENS", "APIKEY",
                    "CREDENTIAL", "CREDENTIALS", "PRIVATEKEY"}
_SECRET_PAIRS = {("API", "KEY"), ("PRIVATE", "KEY"), ("ACCESS", "KEY"), ("SECRET", "KEY"),
                 ("AUTH", "KEY"), ("CLIENT", "SECRET"), ("SIGNING", "KEY")}
# Names that contain a secret word but are well known not to hold one.
_NOT_SECRET_NAMES = {"PASSWORD_FILE", "TOKEN_FILE", "SECRET_FILE", "SECRETS_DIR"}

_VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b")),
    ("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b")),
    ("private key", re.compile(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("OpenAI API key", re.compile(r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
)

PRIVATE_KEY_HEADER = re.compile(rb"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----")
# A key *block*: the BEGIN line on its own line, optional RFC 1421 headers, then base64. A marker
# constant in library source (b"-----BEGIN PRIVATE KEY-----" in cryptography, google-auth) or a
# sentence mentioning one has no body, so it is not a key.
PRIVATE_KEY_BLOCK = re.compile(
    rb"(?m)^[ \t]*-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----[ \t]*\r?\n"
    rb"(?:[A-Za-z-]+:[^\n]*\r?\n)*(?:\r?\n)?[ \t]*[A-Za-z0-9+/=]{4,}[ \t]*\r?(?:\n|$)")
_LIBRARY_DIRS = ("/site-packages/", "/dist-packages/")
_TEST_PARTS = {"test", "tests", "testing", "testdata", "test_data", "fixtures", "testcases"}
_DOC_DIRS = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/")
_DOC_SUFFIXES = (".md", ".rst", ".txt", ".html", ".htm", ".adoc", ".ipynb")
_SOURCE_SUFFIXES = (".py", ".pyi", ".pyc", ".pyx", ".c", ".h", ".js", ".ts", ".go", ".rs", ".java")


def not_a_credential(path: str) -> str | None:
    """Why a key-looking file is shipped material rather than a credential of this image
    (documentation, a test fixture or source of an installed package), or None."""
    p = PurePosixPath(path)
    lower = path.lower()
    if lower.endswith(_DOC_SUFFIXES) or any(d in path for d in _DOC_DIRS):
        return "documentation"
    if any(d in path for d in _LIBRARY_DIRS):
        if any(part.lower() in _TEST_PARTS for part in p.parts[:-1]):
            return "a test fixture of an installed Python package"
        if lower.endswith(_SOURCE_SUFFIXES):
            return "source code of an installed Python package"
    return None


def is_secret_name(name: str) -> bool:
    """True for variable / label names that usually carry a credential."""
    upper = name.upper()
    if upper in _NOT_SECRET_NAMES or upper.endswith(("_FILE", "_PATH", "_DIR")):
        return False  # points at a secret (a mounted file), does not contain one
    segments = [s for s in re.split(r"[_\-.]", upper) if s]
    if any(s in _SECRET_SEGMENTS for s in segments):
        return True
    return any(pair in _SECRET_PAIRS for pair in itertools.pairwise(segments))


def shannon_entropy(value: str) -> float:
    if not value:
        return 0.0
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_high_entropy(value: str) -> bool:
    """A 32+ character token-like string with enough randomness to be a key."""
    stripped = value.strip().strip("'\"")
    if len(stripped) < 32 or not re.fullmatch(r"[A-Za-z0-9+/=_\-.:]+", stripped):
        return False
    return shannon_entropy(stripped) >= 3.5


def secret_value_kind(value: str) -> str | None:
    """Name of the credential format ``value`` matches, or None."""
    for label, pattern in _VALUE_PATTERNS:
        if pattern.search(value):
            return label
    return None


@dataclass(frozen=True)
class SecretVerdict:
    severity: str
    reason: str


def judge_assignment(name: str, value: str | None) -> SecretVerdict | None:
    """Decide whether ``name=value`` (an ARG, ENV or label) leaks a secret.

    ``value`` None means "declared without a value" (``ARG TOKEN``): the build-arg still ends up
    in the image history, so a secret-looking name is enough.
    """
    kind = secret_value_kind(value or "")
    if kind:
        return SecretVerdict("critical", f"value looks like a {kind}")
    if not is_secret_name(name):
        return None
    if value is None:
        return SecretVerdict("high", f"{name} is a secret-looking name; its value is kept in the image history")
    stripped = value.strip().strip("'\"")
    if not stripped or stripped.startswith("$"):
        if stripped.startswith("$"):
            return SecretVerdict("high", f"{name} copies {stripped} into the image")
        return None
    if looks_high_entropy(stripped):
        return SecretVerdict("critical", f"{name} holds a high-entropy value")
    return SecretVerdict("high", f"{name} is a secret-looking name with a value baked into the image")


# -- files -----------------------------------------------------------------------------------

_KEY_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}
_ENV_ALLOWED_SUFFIXES = (".example", ".sample", ".template", ".dist")


@dataclass(frozen=True)
class SecretFile:
    severity: str
    reason: str


def classify_path(path: str) -> SecretFile | None:
    """Judge a file by its path alone (no content needed)."""
    p = PurePosixPath(path)
    name = p.name
    parts = p.parts
    if name in _KEY_NAMES:
        return SecretFile("critical", "SSH private key")
    if name == ".env" or (name.startswith(".env.") and not name.endswith(_ENV_ALLOWED_SUFFIXES)):
        return SecretFile("high", "dotenv file (usually holds credentials)")
    if len(parts) >= 2 and parts[-2] == ".aws" and name in {"credentials", "config"}:
        return SecretFile("critical" if name == "credentials" else "medium", "AWS CLI credentials")
    if len(parts) >= 2 and parts[-2] == ".docker" and name == "config.json":
        return SecretFile("high", "Docker client config (registry auth)")
    if name == ".git-credentials":
        return SecretFile("critical", "git credential store")
    if name in {".netrc", "_netrc"}:
        return SecretFile("high", "netrc (machine passwords)")
    if len(parts) >= 2 and parts[-2] == ".kube" and name == "config":
        return SecretFile("high", "Kubernetes client config")
    return None


def classify_content(path: str, head: bytes) -> SecretFile | None:
    """Judge a file by its first bytes (private keys, tokens in rc files, GCP keys)."""
    name = PurePosixPath(path).name
    if PRIVATE_KEY_BLOCK.search(head):
        shipped = not_a_credential(path)
        if shipped:
            return SecretFile("info", f"PEM private key block in {shipped}; not a credential of this image")
        return SecretFile("critical", "PEM private key")
    if name == ".npmrc" and re.search(rb"_auth(Token)?\s*=", head):
        return SecretFile("high", ".npmrc with an auth token")
    if name == ".pypirc" and re.search(rb"^\s*password\s*=", head, re.MULTILINE):
        return SecretFile("high", ".pypirc with a password")
    if name.endswith(".json") and b'"service_account"' in head and b'"private_key' in head:
        return SecretFile("critical", "Google Cloud service-account key")
    if name == "config" and b"[remote" in head and re.search(rb"https?://[^/\s:@]+:[^/\s@]+@", head):
        return SecretFile("critical", "git config with credentials in a remote URL")
    return None


def classify_file(path: str, head: bytes | None) -> SecretFile | None:
    by_content = classify_content(path, head) if head else None
    by_path = classify_path(path)
    if by_content and (by_path is None or by_content.severity == "critical"):
        return by_content
    return by_path
